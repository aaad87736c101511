"""The authors' own code as a benchmark baseline (``benchmarks/run.py --authors PATH``).

``PATH`` is a checkout of gvisani/Holographic-VAE that the user fetched; nothing of it is
copied here. It is imported from ``PATH`` (put on ``sys.path``) and run with ``scratch`` as the
working directory where it writes files (their ``get_w3j_coefficients()`` caches
``cg_coefficients/`` in the current directory: minutes, once).

What is timed of theirs:

* ``holographic_vae.models.h_vae.H_VAE``, built with their model settings (their protein and
  MNIST configs' rules, the same as ``benchmarks/parity/specs.py``) and holovae's architecture;
  the parameter counts of both are asserted equal before anything is timed;
* the Zernike transform of their ``preprocessing_faster`` pipeline, the faster of the two they
  ship (``preprocessing/get_zernikegrams.py`` runs a torch ``RadialSphericalTensor`` per
  neighbourhood, ~3.5x slower here): its per-neighbourhood function ``get_hologram``
  (``preprocessing_faster/utils/zernikegrams.py``). Their ``preprocessing_faster`` package does
  not import as shipped at commit 728b67c: it imports a package ``protein_holography_pytorch``
  (its former name), ``hdf5plugin`` and ``progress``, loads a ``YZX_XYZ_cob.npy`` that is not in
  the repository, and calls ``scipy.special.sph_harm``, removed in SciPy 1.17. The glue below
  maps the old package name onto their directory without running the package ``__init__``s,
  gives their ``log_config`` import a format string, and (SciPy >= 1.17 only) provides
  ``sph_harm(m, l, azimuth, polar)`` as ``sph_harm_y(l, m, polar, azimuth)``. Their real-basis
  change and flattening after ``get_hologram`` (which needs the missing ``.npy``) are not timed:
  a few small matrix products per neighbourhood, so their rate is slightly overstated.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity.specs import _AUTHORS_MODEL_COMMON  # noqa: E402  (their model settings, written once)


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class AuthorsCode:
    """A checkout of the authors' repository, imported in place."""

    def __init__(self, path, scratch):
        self.path = Path(path).resolve()
        if not (self.path / "holographic_vae" / "models" / "h_vae.py").is_file():
            raise FileNotFoundError(f"{self.path}: not a checkout of gvisani/Holographic-VAE "
                                    f"(no holographic_vae/models/h_vae.py)")
        self.scratch = Path(scratch).resolve()
        self.scratch.mkdir(parents=True, exist_ok=True)
        if str(self.path) not in sys.path:
            sys.path.insert(0, str(self.path))
        self._w3j = None
        try:
            self.commit = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            self.commit = "unknown (not a git checkout)"

    def describe(self) -> str:
        return f"{self.path} at {self.commit}"

    # -- the model ------------------------------------------------------------------------
    def w3j(self, device="cpu") -> dict:
        """Their Wigner-3j matrices, float32 (as their training script converts them)."""
        if self._w3j is None:
            from holographic_vae.cg_coefficients import get_w3j_coefficients
            with _cwd(self.scratch):
                self._w3j = {k: torch.tensor(v).float() for k, v in get_w3j_coefficients().items()}
        return {k: v.to(device) for k, v in self._w3j.items()}

    def h_vae(self, cfg: dict, device="cpu"):
        """Their ``H_VAE`` with holovae's architecture ``cfg`` (``HVAEConfig`` keys)."""
        from e3nn import o3
        from holographic_vae.models.h_vae import H_VAE

        hp = dict(_AUTHORS_MODEL_COMMON, is_vae=bool(cfg.get("vae", False)), latent_dim=cfg["latent_dim"],
                  net_lmax=max(cfg["degrees"]), ch_size_list=list(cfg["channels"]), lmax_list=list(cfg["degrees"]),
                  do_initial_linear_projection=cfg.get("initial_channels") is not None,
                  ch_initial_linear_projection=cfg.get("initial_channels") or 0)
        irreps = o3.Irreps(cfg["irreps_in"])
        with _cwd(self.scratch):
            model = H_VAE(irreps, self.w3j(device), hp, device, normalize_input_at_runtime=False)
        return model.to(device)

    @staticmethod
    def as_dict(x: torch.Tensor, irreps: str) -> dict:
        """A flat batch ``[B, dim]`` as their model's input ``{l: [B, C_l, 2l+1]}``."""
        from e3nn import o3
        from holographic_vae.so3.functional import make_dict
        return make_dict(x, o3.Irreps(irreps))

    # -- the Zernike transform ------------------------------------------------------------
    def get_hologram(self):
        """Their ``preprocessing_faster/utils/zernikegrams.py:get_hologram`` (see the module docstring)."""
        import importlib

        import scipy.special

        base = self.path / "experiments" / "protein_neighborhoods" / "src"
        for name, sub in (("protein_holography_pytorch", ""), ("protein_holography_pytorch.utils", "utils"),
                          ("protein_holography_pytorch.preprocessing_faster", "preprocessing_faster"),
                          ("protein_holography_pytorch.preprocessing_faster.utils", "preprocessing_faster/utils")):
            if name not in sys.modules:
                pkg = types.ModuleType(name)
                pkg.__path__ = [str(base / sub)]      # a namespace: their __init__ files are not run
                sys.modules[name] = pkg
        log_config = types.ModuleType("protein_holography_pytorch.utils.log_config")
        log_config.format = "%(levelname)s %(message)s"
        sys.modules.setdefault(log_config.__name__, log_config)
        if not hasattr(scipy.special, "sph_harm"):      # removed in SciPy 1.17
            scipy.special.sph_harm = lambda m, l, azimuth, polar: scipy.special.sph_harm_y(l, m, polar, azimuth)
        mod = importlib.import_module("protein_holography_pytorch.preprocessing_faster.utils.zernikegrams")
        import logging
        logging.getLogger().setLevel(logging.WARNING)   # their module sets DEBUG on the root logger
        return mod.get_hologram

    @staticmethod
    def neighbourhood(points: np.ndarray, channels: np.ndarray, elements: list[str]) -> dict:
        """One neighbourhood in their ``get_hologram`` input: spherical ``coords [N, 3]``
        (r, polar, azimuth), ``elements`` and ``atom_names`` as bytes."""
        p = points.astype(np.float64)
        r = np.linalg.norm(p, axis=1)
        polar = np.arccos(np.clip(p[:, 2] / np.where(r > 0, r, 1), -1, 1))
        azimuth = np.arctan2(p[:, 1], p[:, 0])
        return {"coords": np.stack([r, polar, azimuth], axis=1),
                "elements": np.array([e.encode() for e in elements])[channels],
                "atom_names": np.full(len(p), b" X  ", dtype="S4")}
