#!/usr/bin/env bash
# The music-following run this folder's README asks for, for a lent GPU (one script, about 10 minutes on an
# H100): v1's recipe with music-led tempo splices from the first step, from scratch, many more steps than a CPU
# gives, checkpoints kept every 500 steps so `bench music`'s pace ratio can choose among them afterwards (on
# the CPU machine, with eval as in the README). Untested on a GPU so far.
#   bash experiments/2026-12-07-music-following/gpu_run.sh DATA OUT [STEPS]
set -euo pipefail
DATA=${1:?feature folder (transflower features)}; OUT=${2:?run folder}; STEPS=${3:-12000}
transflower train experiments/2026-12-07-music-following/music_leads_finetune.yaml --data "$DATA" --out "$OUT" \
  -o training.init_weights=null training.accelerator=gpu training.torch_threads=0 training.batch_size=96 \
     training.lr=0.0003 training.warmup_steps=300 training.max_steps="$STEPS" training.num_workers=4 \
     training.val_every_steps=500 training.checkpoint_every_steps=250 training.keep_every_steps=500 \
     training_terms.scheduled_sampling.passes=3 training_terms.style_contrast.windows=8
