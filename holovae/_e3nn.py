"""e3nn's ``o3``, imported without importing ``torch._dynamo``.

e3nn decorates one function (``o3._wigner.change_basis_real_to_complex``) with
``torch.compiler.disable`` when it is imported, and that decorator imports ``torch._dynamo``:
1.2 s of CPU, a quarter of a ``holovae`` command's start-up, for a compiler holovae never uses
(the default workflow runs ~100 commands; only those that train build a torch optimiser, which
imports it anyway). While e3nn imports, the decorator is replaced by a lazy one: called
eagerly, the function runs as it is (so dynamo is not imported later either, when a model's
Clebsch-Gordan coefficients are first computed); called while ``torch.compile`` traces, it
applies the real ``torch.compiler.disable`` and so still breaks the graph there. Every holovae module imports ``o3`` from here; when e3nn was
imported before holovae, that import is used as it is.
"""
from __future__ import annotations

import functools
import sys

import torch
import torch.compiler

__all__ = ["o3"]


def _lazy(real):
    def disable(fn=None, recursive=True, *, reason=None):
        if fn is None:
            return functools.partial(disable, recursive=recursive, reason=reason)
        applied = None

        @functools.wraps(fn)
        def call(*args, **kwargs):
            nonlocal applied
            if applied is None:
                if not torch.compiler.is_compiling():      # eager: nothing to disable
                    return fn(*args, **kwargs)
                applied = real(fn, recursive, reason=reason)
            return applied(*args, **kwargs)
        return call
    return disable


def _import_o3():
    if "e3nn.o3" in sys.modules:
        return sys.modules["e3nn.o3"]
    real = torch.compiler.disable
    torch.compiler.disable = _lazy(real)
    try:
        from e3nn import o3
    finally:
        torch.compiler.disable = real
    return o3


o3 = _import_o3()
