"""Run configuration files: YAML with a ``model`` and a ``train`` section."""
from __future__ import annotations

from pathlib import Path

import yaml

from .models import HVAEConfig
from .train import TrainConfig


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """``["train.epochs=2", "model.vae=true"]`` -> nested dict updated in place (values parsed as YAML)."""
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not KEY=VALUE")
        key, value = item.split("=", 1)
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return d


def load_run_config(path, overrides: list[str] | None = None, irreps_in: str | None = None) -> tuple[HVAEConfig, TrainConfig]:
    """Read ``path`` (YAML: ``model: {...}``, ``train: {...}``; None: start empty) and apply
    ``overrides``; unknown keys are errors naming the file.

    ``irreps_in`` (from the training data) fills ``model.irreps_in`` when the file omits it and
    must agree with it otherwise.
    """
    if path is None:  # everything from overrides (what the workflow does)
        path, d = Path("<--set overrides>"), {}
    else:
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read run config ({exc})") from exc
    apply_overrides(d, overrides or [])
    unknown = set(d) - {"model", "train"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)} (expected 'model' and 'train')")
    model = dict(d.get("model") or {})
    if irreps_in is not None:
        model.setdefault("irreps_in", irreps_in)
    try:
        return HVAEConfig.from_dict(model), TrainConfig.from_dict(d.get("train") or {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
