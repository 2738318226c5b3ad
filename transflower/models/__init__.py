"""Model registry: name -> (config class, model class). Each model is one readable file.

Every model class provides `window_spec(data_cfg) -> WindowSpec` (what the dataset cuts) and
`loss(inputs, outputs) -> scalar` (what training minimises; an NLL per dimension for the flows). What
training adds to transflower_live's loss is listed apart, in the YAML's `training_terms` (training_terms.py).
"""
from __future__ import annotations

from dataclasses import fields


def registry():
    from transflower.models import transflower as tf

    reg = {"transflower_live": (tf.TransflowerConfig, tf.TransflowerLive)}
    try:
        from transflower.models import baselines as bl

        reg.update(bl.REGISTRY)
    except ImportError:  # baselines are optional for the live model
        pass
    return reg


def build_model(name: str, config: dict):
    from transflower.errors import UserError
    from transflower.models.training_terms import split_legacy_keys

    reg = registry()
    if name not in reg:
        raise UserError(f"model: unknown model {name!r}; expected one of {sorted(reg)}")
    config, _ = split_legacy_keys(name, config)  # an older config's training terms: training's, not the model's
    cfg_cls, model_cls = reg[name]
    known = {f.name for f in fields(cfg_cls)}
    retired = getattr(cfg_cls, "retired", {})
    for key in sorted(set(config) & set(retired)):
        if config[key] not in (retired[key], None) and not (retired[key] == [] and config[key] in ((), [])):
            raise UserError(f"model_config.{key} = {config[key]!r}: this training option was removed (it never shipped); "
                            f"a model trained with it needs an older transflower-live")
    config = {k: v for k, v in config.items() if k not in retired}
    unknown = set(config) - known
    if unknown:
        raise UserError(f"model_config: unknown keys {sorted(unknown)} for model {name!r}; expected some of {sorted(known)}")
    return model_cls(cfg_cls(**config))
