"""Why a complex cannot be used: the errors that featurisation records as a skipped complex."""
from __future__ import annotations

__all__ = ["ComplexError", "LigandError"]


class ComplexError(ValueError):
    """A complex cannot be used; the message is the reason (it names the file where there is one)."""


class LigandError(ComplexError):
    """A ligand file cannot be read; the message names the file (and line) and the reason."""
