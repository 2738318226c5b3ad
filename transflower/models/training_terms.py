"""Training terms: what training adds to the model's likelihood, as plug-ins the YAML lists.

The model (transflower/models/transflower.py) describes the architecture and scores poses; what only
training does lives here, one small class per term, each owning its parameters and their checks. The
hparams YAML lists the terms a run uses under `training_terms` (a term left out, or set to null, is off;
a parameter left out takes its default):

    training_terms:
      pose_noise: {std: 0.1, dropout: 0.0}
      style_dropout: {p: 0.3}
      music_swap: {p: 0.3}
      scheduled_sampling: {p: 0.8, passes: 3, temperature: 0.6, features: all, styles: []}
      style_contrast: {weight: 1.0, windows: 8}

`--override training_terms.scheduled_sampling.p=0.5` changes one parameter. Every term is inert in eval
mode: validation and inference score the model alone (`model.loss`, `model.sample`, `model.step`).

Why each exists:
- Robustness to its own outputs (exposure bias): in training the poses the encoder sees are noised
  (`pose_noise.std`) and whole previous poses dropped (`pose_noise.dropout`, MoGlow's autoregressive
  dropout); the residual's base stays the clean previous pose. `scheduled_sampling` goes further: some past
  poses the encoder sees are the model's own samples (parallel scheduled sampling), so a rollout's drift is
  something training has shown it, with the data's next pose as the target.
- The style label: training drops it (-> "auto") for a whole window with probability `style_dropout.p`,
  so "auto" lets the music decide. `music_swap` trains some labelled windows on another style's music (the
  label, not the music, must carry the style); `style_contrast` adds the cross-entropy of the model's own
  label posterior on self-fed windows, so the label must also say how a drifted dance goes on.

`TrainingTerms.loss` composes them in a fixed order of stages, whatever order the YAML lists them in (so
the random draws, and a seed's losses, do not depend on it): the window's labels (style_dropout) -> its
music (music_swap) -> the past poses (scheduled_sampling) -> what the encoder sees of them (pose_noise) ->
the NLL -> the added losses (style_contrast, weighted). A new term is a subclass of `TrainingTerm` with its
`name`, `defaults` (and which are `probabilities`), `check` and the hooks it needs, added to `TERMS`.

Configs written before this section existed held these as flat model_config keys (`pose_noise`,
`scheduled_sampling_passes`, ...; the shipped checkpoint's config is one): `migrate_config` moves them
here, and `transflower.models.build_model` leaves them out of the model (`split_legacy_keys`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from transflower.errors import UserError


@dataclass
class Window:
    """A training batch as the terms see it: the data's past poses (the residual's base), the music (after
    music_swap), the target poses, the style indices after style_dropout ((B, T) long; None for a model
    without styles) and the style weights the model is given."""
    motion: torch.Tensor
    audio: torch.Tensor
    target: torch.Tensor
    idx: torch.Tensor | None = None
    style: torch.Tensor | None = None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class TrainingTerm:
    """One plug-in: its YAML name, its parameters (name -> default) and their checks; the hooks it does not
    override leave the batch as it is. Every hook is inert unless the model is in training mode."""
    name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}
    probabilities: ClassVar[tuple] = ()  # parameters that are probabilities, in [0, 1)
    style_params: ClassVar[tuple] = ()  # parameters naming styles: `transflower train` resolves them against the data
    weight = 1.0  # what `added_loss` is multiplied by in the total

    def __init__(self, **params):
        unknown = sorted(map(str, set(params) - set(self.defaults)))
        if unknown:
            raise UserError(f"training_terms.{self.name}: unknown parameters {unknown}; expected some of {list(self.defaults)}")
        for key, default in self.defaults.items():
            setattr(self, key, copy.deepcopy(params.get(key, default)))
        for key in self.probabilities:
            self._probability(key)
        self.check()

    def field(self, key: str) -> str:
        return f"training_terms.{self.name}.{key}"

    def params(self) -> dict:
        return {k: getattr(self, k) for k in self.defaults}

    def check(self) -> None:
        """Refuse parameters out of range (besides the probabilities): a UserError naming the YAML field."""

    def check_model(self, model) -> None:
        """Refuse a model this term cannot train (too few style labels, an unknown style)."""

    def _probability(self, key: str) -> None:
        v = getattr(self, key)
        if not (_number(v) and 0.0 <= v < 1.0):
            raise UserError(f"{self.field(key)}: expected a value in [0, 1), got {v!r}")

    def _at_least(self, key: str, lo, what: str = "a value", strict: bool = False, integer: bool = False) -> None:
        v = getattr(self, key)
        ok = (isinstance(v, int) and not isinstance(v, bool)) if integer else _number(v)
        if not (ok and (v > lo if strict else v >= lo)):
            raise UserError(f"{self.field(key)}: expected {what} {'>' if strict else '>='} {lo}, got {v!r}")

    # hooks, in the order TrainingTerms.loss calls them
    def drop_labels(self, model, idx):
        """(B, T) style indices -> the ones the model is trained with."""
        return idx

    def hear(self, model, audio, idx, labels):
        """The window's music (B, T, D_a) -> what the model hears; labels: the indices before drop_labels."""
        return audio

    def feed(self, model, window: Window, past, see):
        """The past poses (B, T, D_m) -> the ones the encoder is given; see(x): what the encoder sees of x."""
        return past

    def see(self, model, x):
        """The past poses the encoder is given -> what it sees of them."""
        return x

    def added_loss(self, model, window: Window, seen):
        """A loss added to the NLL (times `weight`), or None; seen: what the encoder saw."""
        return None


class PoseNoise(TrainingTerm):
    """What the encoder sees of the past poses, in training: noised (`std`, standardised units) and whole
    poses zeroed with probability `dropout` (exposure bias: the live model is fed its own samples)."""
    name = "pose_noise"
    defaults = {"std": 0.0, "dropout": 0.0}
    probabilities = ("dropout",)

    def check(self):
        self._at_least("std", 0.0)

    def see(self, model, x):
        if not model.training:
            return x
        if self.std > 0:
            x = x + self.std * torch.randn_like(x)
        if self.dropout > 0:
            keep = torch.rand(x.shape[:-1] + (1,), device=x.device) >= self.dropout
            x = x * keep
        return x


class StyleDropout(TrainingTerm):
    """A whole window is trained as "auto" (index 0) with probability `p`, so "auto" lets the music decide."""
    name = "style_dropout"
    defaults = {"p": 0.3}
    probabilities = ("p",)

    def drop_labels(self, model, idx):
        if model.training and self.p > 0:
            drop = torch.rand(idx.shape[0], 1, device=idx.device) < self.p
            idx = torch.where(drop, torch.zeros_like(idx), idx)
        return idx


class MusicSwap(TrainingTerm):
    """A labelled window hears another style's music with probability `p` (`hear`: why)."""
    name = "music_swap"
    defaults = {"p": 0.0}
    probabilities = ("p",)

    def hear(self, model, audio, idx, labels=None, swap=None):
        """In training, a labelled window hears another style's music with probability p.

        In the data each style comes with its own music, so the music alone predicts the style and the
        label is redundant: the model learns to ignore it, and asking for a cha-cha on a waltz does little.
        Windows whose motion keeps its label but whose music is another's teach that the label, not the
        music, sets the style. Windows trained as "auto" keep their own music (auto = follow the music).
        The partner is drawn among the batch's windows of another style (labels: (B, T) before dropout,
        default idx); only where the batch has none is it the previous window. (Up to 2026-11-27 it was
        always the previous window: under balanced styles a third of the "swaps" kept music of the
        window's own style, so the shipped model's swap 0.3 was about 0.2 in effect.)
        swap (B,) bool fixes which windows swap (tests); auto windows never do."""
        B = audio.shape[0]
        if not (model.training and self.p > 0) or B < 2:
            return audio
        own = (idx if labels is None else labels)[:, 0]
        other = own[None, :] != own[:, None]  # (B, B): window c's music is of another style than window b's
        pick = torch.rand(B, B, device=audio.device).masked_fill(~other, -1.0).argmax(1)
        previous = torch.arange(B, device=audio.device).roll(1)
        partner = torch.where(other.any(1), pick, previous)
        if swap is None:
            swap = torch.rand(B, device=audio.device) < self.p
        swap = swap & (idx[:, 0] != 0)
        return torch.where(swap[:, None, None], audio[partner], audio)


class ScheduledSampling(TrainingTerm):
    """Some past poses the encoder is given are the model's own samples (`self_fed`: how and why)."""
    name = "scheduled_sampling"
    defaults = {"p": 0.0, "passes": 1, "temperature": 0.6, "features": "all", "styles": []}
    probabilities = ("p",)
    style_params = ("styles",)

    def check(self):
        self._at_least("passes", 1, "an integer", integer=True)
        self._at_least("temperature", 0.0, strict=True)
        if self.features not in ("all", "root_velocity"):
            raise UserError(f"{self.field('features')}: expected 'all' or 'root_velocity', got {self.features!r}")
        if not isinstance(self.styles, (list, tuple)) or not all(isinstance(s, (str, int)) for s in self.styles):
            raise UserError(f"{self.field('styles')}: expected a list of style names of the data, got {self.styles!r}")

    def check_model(self, model):
        n = max(model.cfg.styles, 1)
        if any(not isinstance(i, int) or isinstance(i, bool) or not 1 <= i < n for i in self.styles):
            raise UserError(f"{self.field('styles')}: expected style names of the data (indices 1..styles-1 once resolved), "
                            f"got {self.styles!r}")

    def feed(self, model, window, past, see):
        windows = None
        if self.styles and window.idx is not None:  # only the windows labelled (after dropout) with those styles
            windows = torch.isin(window.idx[:, 0], torch.tensor(list(self.styles), device=window.idx.device))
        return self.self_fed(model, past, window.audio, window.style, see, windows=windows)

    @torch.no_grad()
    def self_fed(self, model, motion_in, audio_in, style=None, see=None, noise=None, choose=None, windows=None):
        """Scheduled sampling, in parallel (Bengio et al. 2015; Duckworth et al. 2019, arXiv 1906.04331).

        A free rollout hears its own samples, never the data, and in some styles it drifts into a regime
        no clip has (the shipped rumba travelled at 2x the real pace while its one-step samples were right:
        benchmarks/README.md). Here each past pose (after the window's first) is, with probability `p`,
        replaced by the model's own sample of it given the teacher-forced past, drawn at `temperature`
        (0.6 by default, about the live one); with several `passes` a pass samples from the previous pass's
        mix, so errors compound as in a rollout. With `features: root_velocity` only the root's velocity and turn rate are fed back (the
        travel), and the body's poses stay the data's. With `styles` only the windows labelled with those
        styles are self-fed, and "auto" and the other styles stay teacher-forced; `windows` (B,) bool says
        which (`feed` computes it from the labels). Each pass's encoder sees its input as training's other
        terms make it (`see`: pose noise). The targets stay the data's poses, so the model learns to come
        back from its own drift. No gradient flows through the samples. noise (passes, B, T, D) / choose
        (passes, B, T, 1) bool fix the draws (tests). motion_in (B, T, D) -> (B, T, D)."""
        if not (model.training and self.p > 0):
            return motion_in
        see = see or (lambda x: x)
        B, T, D = motion_in.shape
        x = motion_in
        for k in range(self.passes):
            pred = model.sample(x, audio_in, self.temperature, None if noise is None else noise[k], style, seen=see(x))
            # pred[t] is a sample of x_t, the encoder's input at t + 1; a far-tail draw must not poison the batch
            fed = torch.nan_to_num(pred[:, :-1], nan=0.0, posinf=0.0, neginf=0.0).clamp(-25.0, 25.0)
            if self.features == "root_velocity":
                V = model.cfg.velocity_dims
                fed = torch.cat([fed[..., :V], motion_in[:, 1:, V:]], dim=-1)
            use = (torch.rand(B, T - 1, 1, device=x.device) < self.p) if choose is None else choose[k][:, 1:]
            if windows is not None:
                use = use & windows[:, None, None]
            x = torch.cat([motion_in[:, :1], torch.where(use, fed, motion_in[:, 1:])], dim=1)
        return x


class StyleContrast(TrainingTerm):
    """Adds `weight` x the cross-entropy of the model's own style posterior (`contrast`: why)."""
    name = "style_contrast"
    defaults = {"weight": 0.0, "windows": 8}

    def check(self):
        self._at_least("weight", 0.0, "a weight")
        self._at_least("windows", 1, "an integer", integer=True)

    def check_model(self, model):
        if self.weight > 0 and model.cfg.styles < 3:
            raise UserError(f"training_terms.style_contrast: needs a model with at least two style labels (styles >= 3), "
                            f"got styles={model.cfg.styles!r}")

    def added_loss(self, model, window, seen):
        if not (model.training and self.weight > 0) or window.idx is None:
            return None
        return self.contrast(model, window.motion, seen, window.audio, window.target, window.idx[:, 0])

    def contrast(self, model, motion_in, seen, audio_in, target, label):
        """The style-discriminative term: the label must say how the dance goes on, even from a drifted past.

        Read as a classifier, the model is Bayes' rule over its labels: p(style | window) is the softmax of the
        window's log-likelihood under each label. On real dance it already picks the right label; but from a
        past it fed itself (scheduled sampling) the real continuation of a rumba was likelier under the cha-cha
        label than under rumba's, and a waltz's under any label but waltz (0% and 1% of test windows: a probe
        in experiments/2026-11-to-12-model-history.md, 2026-11-27), so in a rollout the label does not pull a drifting dance back to
        its style. This is the cross-entropy of that classifier, on up to `windows` labelled windows
        (label (B,), 0 = auto, skipped): logits are each label's mean log-likelihood per frame (nats),
        so it saturates once the right label wins by a few nats a frame, and it is divided by the pose's
        dimensions as the NLL is. One backbone pass per style label: the cost."""
        rows = (label > 0).nonzero().flatten()[: self.windows]
        if rows.numel() == 0:
            return target.new_zeros(())
        S, T, D = model.cfg.styles, target.shape[1], target.shape[-1]
        logits = []
        for k in range(1, S):
            style = model.style_one_hot(torch.full((rows.numel(), T), k, dtype=torch.long, device=target.device))
            logits.append(model.frame_log_prob(motion_in[rows], seen[rows], audio_in[rows], target[rows], style).mean(1))
        return F.cross_entropy(torch.stack(logits, 1), label[rows] - 1) / D


# name -> plug-in, in the order configs list them (the stages they act in are TrainingTerms.loss's)
TERMS = {t.name: t for t in (PoseNoise, StyleDropout, MusicSwap, ScheduledSampling, StyleContrast)}


class TrainingTerms:
    """The terms a run trains with, composed around the model's likelihood (the module's docstring)."""

    def __init__(self, terms=()):
        order = list(TERMS)
        self.terms = sorted(terms, key=lambda t: order.index(t.name))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def to_dict(self) -> dict:
        return {t.name: t.params() for t in self.terms}

    def check_model(self, model) -> None:
        if self.terms and not all(hasattr(model, a) for a in ("frame_log_prob", "style_one_hot", "sample")):
            raise UserError(f"training_terms {[t.name for t in self.terms]}: model {type(model).__name__} takes none "
                            f"(they act on transflower_live's likelihood); leave the section out")
        for t in self.terms:
            t.check_model(model)

    def see(self, model, x):
        for t in self.terms:
            x = t.see(model, x)
        return x

    def window(self, model, inputs, outputs) -> Window:
        motion, audio, target = inputs[0], inputs[1], outputs[0]
        if not model.cfg.styles:
            return Window(motion, audio, target)
        labels = inputs[2][..., 0].long()  # before dropout: whose music is whose
        idx = labels
        for t in self.terms:
            idx = t.drop_labels(model, idx)
        for t in self.terms:
            audio = t.hear(model, audio, idx, labels)
        return Window(motion, audio, target, idx, model.style_one_hot(idx))

    def loss(self, model, inputs, outputs):
        """-> (the loss training minimises, {name: detached value} to log: "nll" and each added loss).
        A window whose outputs end in a `loss_mask` (B, T, 1) (transflower.dataset, `data.music_leads`) scores only
        the frames where it is 1: the others are its past, context only."""
        if not self.terms and len(outputs) == 1:
            loss = model.loss(inputs, outputs)
            return loss, {"nll": loss.detach()}
        w = self.window(model, inputs, outputs)
        past = w.motion
        for t in self.terms:
            past = t.feed(model, w, past, lambda x: self.see(model, x))
        seen = self.see(model, past)
        log_prob = model.frame_log_prob(w.motion, seen, w.audio, w.target, w.style)  # (B, T)
        if len(outputs) > 1:
            mask = outputs[-1][..., 0].to(log_prob.dtype)
            nll = -(log_prob * mask).sum() / mask.sum().clamp_min(1.0) / w.target.shape[-1]
        else:
            nll = -log_prob.mean() / w.target.shape[-1]
        loss, logged = nll, {"nll": nll.detach()}
        for t in self.terms:
            added = t.added_loss(model, w, seen)
            if added is not None:
                logged[t.name] = added.detach()
                loss = loss + t.weight * added
        return loss, logged


def build_training_terms(section, model=None) -> TrainingTerms:
    """The YAML's `training_terms` mapping -> TrainingTerms, each term's parameters checked (and, given the
    model, what they need of it). A term set to null or false is off."""
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise UserError(f"training_terms: expected a mapping of term -> parameters, e.g. {{pose_noise: {{std: 0.1}}}}, got {section!r}")
    unknown = sorted(map(str, set(section) - set(TERMS)))
    if unknown:
        raise UserError(f"training_terms: unknown terms {unknown}; expected some of {list(TERMS)}")
    terms = []
    for name, params in section.items():
        if params is None or params is False:
            continue
        if not isinstance(params, dict):
            raise UserError(f"training_terms.{name}: expected a mapping of its parameters (some of "
                            f"{list(TERMS[name].defaults)}), or null for off; got {params!r}")
        terms.append(TERMS[name](**params))
    built = TrainingTerms(terms)
    if model is not None:
        built.check_model(model)
    return built


# ---------------------------------------------------------------------------------------------
# The older layout: training terms as flat model_config keys

LEGACY_MODELS = ("transflower_live",)  # the models whose model_config held them
LEGACY_KEYS = {"pose_noise": ("pose_noise", "std"), "pose_dropout": ("pose_noise", "dropout"),
               "style_dropout": ("style_dropout", "p"), "music_swap": ("music_swap", "p"),
               "scheduled_sampling": ("scheduled_sampling", "p"), "scheduled_sampling_passes": ("scheduled_sampling", "passes"),
               "scheduled_sampling_temperature": ("scheduled_sampling", "temperature"),
               "scheduled_sampling_features": ("scheduled_sampling", "features"),
               "scheduled_sampling_styles": ("scheduled_sampling", "styles"),
               "style_contrast": ("style_contrast", "weight"), "style_contrast_windows": ("style_contrast", "windows")}


def _ordered(terms: dict) -> dict:
    """Terms in TERMS' order (unknown names last, for the check to name), parameters in their defaults' order."""
    known = {n: (p if not isinstance(p, dict) else {k: p[k] for k in [*TERMS[n].defaults, *p] if k in p})
             for n, p in ((n, terms[n]) for n in TERMS if n in terms)}
    return {**known, **{n: p for n, p in terms.items() if n not in TERMS}}


def split_legacy_keys(model: str, model_config: dict) -> tuple[dict, dict]:
    """model_config -> (the model's own keys, {term: {parameter: value}} of the older layout's training keys)."""
    if model not in LEGACY_MODELS:
        return dict(model_config), {}
    kept, terms = {}, {}
    for key, value in model_config.items():
        if key in LEGACY_KEYS:
            term, param = LEGACY_KEYS[key]
            terms.setdefault(term, {})[param] = value
        else:
            kept[key] = value
    return kept, _ordered(terms)


def migrate_config(cfg: dict) -> dict:
    """A run's config (a YAML's, or a checkpoint's) in the current layout, as a new dict: the older layout's
    training keys in model_config (LEGACY_KEYS) move to `training_terms`, values as they are (a term at 0
    stays listed, and does nothing). A config without that section is of the older layout throughout: its
    terms are the moved keys, plus style_dropout at p 0.3 where it does not say (the model's default then,
    so what such a run trained with). In a config that has the section, a moved key must agree with it."""
    cfg = copy.deepcopy(cfg)
    model = cfg.get("model")
    model_config, moved = split_legacy_keys(model, cfg.get("model_config") or {})
    old_layout = "training_terms" not in cfg
    if old_layout:
        terms = {"style_dropout": {"p": StyleDropout.defaults["p"]}} if model in LEGACY_MODELS else {}
    else:
        terms = cfg["training_terms"] or {}
        if not isinstance(terms, dict):
            return cfg  # build_training_terms says what is wrong with it
    legacy_name = {v: k for k, v in LEGACY_KEYS.items()}
    for term, params in moved.items():
        given = terms.get(term) if isinstance(terms.get(term), dict) else {}
        for p, v in params.items():
            if not old_layout and p in given and given[p] != v:
                raise UserError(f"model_config.{legacy_name[term, p]} = {v!r} and training_terms.{term}.{p} = {given[p]!r}: "
                                f"it is a training term now; give it once, as training_terms.{term}.{p}")
        terms[term] = {**given, **params}
    if "model_config" in cfg:
        cfg["model_config"] = model_config
    cfg["training_terms"] = _ordered(terms)
    if old_layout and "model_config" in cfg:  # the section goes after the architecture, as the YAMLs have it
        keys = list(cfg)[:-1]
        at = keys.index("model_config") + 1
        cfg = {k: cfg[k] for k in [*keys[:at], "training_terms", *keys[at:]]}
    return cfg
