"""Baselines of issue 3, trained on the same data with the same code path (transflower.train).

name -> (config dataclass, model class); transflower.models.registry() merges this into its table.
- transformer_mse: TransflowerLive's causal backbone with a Linear head and MSE (the seed's `transformer`).
- moglow: MoGlow-style LSTM-conditioned flow (Henter et al. 2020).
- transflower_paper: the paper's bidirectional window layout, full-window recompute per frame.
"""
from __future__ import annotations

from transflower.models.moglow import MoGlow, MoGlowConfig
from transflower.models.transflower_paper import TransflowerPaper, TransflowerPaperConfig
from transflower.models.transformer_mse import TransformerMSE, TransformerMSEConfig

REGISTRY = {
    "transformer_mse": (TransformerMSEConfig, TransformerMSE),
    "moglow": (MoGlowConfig, MoGlow),
    "transflower_paper": (TransflowerPaperConfig, TransflowerPaper),
}
