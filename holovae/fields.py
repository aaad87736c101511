"""Type and range checks of settings dataclasses (``TrainConfig``, ``HVAEConfig``).

Settings arrive from YAML files and ``--set key=value`` overrides, where ``1e-3`` is a string
(YAML 1.1 needs a dot for a float), ``maybe`` is a string and ``-5`` a valid int. Every field is
checked against its annotation before any work starts, and the error names the key:
``train.batch_size: must be >= 2, got 1``.

Ranges live in the field's metadata: ``field(default=100, metadata={"min": 2})`` (also
``"max"``, ``"choices"``, ``"gt"`` for a strict lower bound).
"""
from __future__ import annotations

import dataclasses
import math
import typing


def _coerce(value, tp, key: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:                       # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ValueError(f"{key}: must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):                   # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{key}: must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{key}: must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: must be a string, got {value!r}")
        return value
    return value


def _check_range(value, meta: dict, key: str) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_range(v, meta, f"{key}[{i}]")
        return
    for v in (value,):
        if "choices" in meta and v not in meta["choices"]:
            raise ValueError(f"{key}: must be one of {list(meta['choices'])}, got {v!r}")
        if "min" in meta and v < meta["min"]:
            raise ValueError(f"{key}: must be >= {meta['min']}, got {v!r}")
        if "gt" in meta and not v > meta["gt"]:
            raise ValueError(f"{key}: must be > {meta['gt']}, got {v!r}")
        if "max" in meta and v > meta["max"]:
            raise ValueError(f"{key}: must be <= {meta['max']}, got {v!r}")


def check_fields(obj, section: str) -> None:
    """Coerce every field of the dataclass instance ``obj`` to its annotated type (numeric
    strings to floats, whole floats to ints) and check its metadata range, in place.
    Raises ``ValueError("<section>.<field>: ...")``."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{section}.{f.name}"
        value = _coerce(getattr(obj, f.name), hints[f.name], key)
        _check_range(value, f.metadata, key)
        setattr(obj, f.name, value)
