"""Option parsing shared by several commands."""
from __future__ import annotations


def parse_meta(pairs: list[str]) -> dict:
    """``["variant=hae_z16_NR", "seed=1"]`` -> ``{"variant": "hae_z16_NR", "seed": 1}`` (YAML values)."""
    import yaml

    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--meta expects KEY=VALUE, got {pair!r}")
        try:
            meta[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"--meta {pair!r}: value is not valid YAML ({exc})") from None
    return meta
