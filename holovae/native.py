"""holovae's C kernels: compiled on first use, cached, loaded with :mod:`ctypes`.

Each kernel is one plain C file (no torch or Python headers) beside the module that calls it.
On first use it is compiled with ``gcc -O3 -march=native -shared -fPIC -fopenmp`` (then, if
that fails, without ``-march=native``) into a cache directory (``$HOLOVAE_CACHE`` or
``~/.cache/holovae``). The file name hashes the source, the flags, the machine, the CPU model
and its feature flags and the kernel's ABI version, so a shared home directory never hands a
binary to a CPU that cannot run it. It is compiled into a temporary file and renamed, so two
processes compiling at once both end with a whole library. ctypes releases the GIL during calls.

``HOLOVAE_CC`` names the compiler (default ``gcc``); ``HOLOVAE_NO_FUSED=1`` (read on every
call) turns every kernel off, and their callers take their pure-torch paths.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional

__all__ = ["NativeLibrary", "disabled_by_env"]

log = logging.getLogger(__name__)

BASE_FLAGS = ["-O3", "-shared", "-fPIC", "-fopenmp", "-std=gnu11"]
NATIVE_FLAGS = ["-march=native"]


def cache_dir() -> Path:
    env = os.environ.get("HOLOVAE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "holovae"


def cpu_signature() -> str:
    """CPU model plus feature flags (the model string alone can be as vague as 'AMD EPYC')."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model", "processor name") and not model:
                    model = value.strip()
                elif key in ("flags", "features", "isa") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    return f"{model or platform.processor()}|{flags}"


def library_path(name: str, source: bytes, flags: list[str], abi_version: int) -> Path:
    h = hashlib.sha256()
    for part in (source, " ".join(flags).encode(), platform.machine().encode(),
                 cpu_signature().encode(), str(abi_version).encode()):
        h.update(part)
        h.update(b"\0")
    return cache_dir() / f"{name}-{platform.machine()}-{h.hexdigest()[:20]}.so"


def compile_library(gcc: str, source_path: Path, out: Path, flags: list[str]) -> None:
    """Compile into a temporary file next to ``out``, then rename atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.stem + ".", suffix=".tmp.so", dir=out.parent)
    os.close(fd)
    try:
        proc = subprocess.run([gcc, *flags, str(source_path), "-o", tmp, "-lm"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"{gcc} {' '.join(flags)} failed:\n{proc.stderr.strip()[-2000:]}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def disabled_by_env() -> bool:
    return os.environ.get("HOLOVAE_NO_FUSED", "").strip().lower() not in ("", "0", "false", "no")


class NativeLibrary:
    """One C kernel: ``source`` compiled and loaded on the first :meth:`available` call.

    ``abi_symbol`` names the library's ``int f(void)`` that returns its ABI version; a library
    whose version is not ``abi_version`` is refused before ``declare(lib)`` sets the ctypes
    signatures. Any failure (no compiler, compile error, ...) is logged once as a warning
    and makes :meth:`available` return ``False`` from then on.
    """

    def __init__(self, name: str, source: Path, abi_version: int, abi_symbol: str,
                 declare: Callable[[ctypes.CDLL], None], what: str):
        self.name, self.source, self.abi_version, self.declare, self.what = name, source, abi_version, declare, what
        self.abi_symbol = abi_symbol
        self.lib: Optional[ctypes.CDLL] = None
        self.failure: Optional[str] = None
        self._env_logged = False
        self._lock = threading.Lock()

    def load(self) -> ctypes.CDLL:
        """Compile (unless cached) and load, without touching the state :meth:`available` keeps."""
        source = self.source.read_bytes()
        errors = []
        for flags in (BASE_FLAGS + NATIVE_FLAGS, BASE_FLAGS):
            path = library_path(self.name, source, flags, self.abi_version)
            try:
                if not path.exists():
                    cc = os.environ.get("HOLOVAE_CC", "gcc")
                    gcc = shutil.which(cc)
                    if gcc is None:
                        raise RuntimeError(f"C compiler {cc!r} not found on PATH")
                    try:
                        compile_library(gcc, self.source, path, flags)
                    except OSError:  # cache dir not writable: a private temp dir instead
                        uid = getattr(os, "getuid", lambda: 0)()
                        path = Path(tempfile.gettempdir()) / f"holovae-{uid}" / path.name
                        if not path.exists():
                            compile_library(gcc, self.source, path, flags)
                lib = ctypes.CDLL(str(path))
                version = getattr(lib, self.abi_symbol)
                version.restype, version.argtypes = ctypes.c_int, []
                if version() != self.abi_version:
                    raise RuntimeError(f"{self.name} library ABI version mismatch")
                self.declare(lib)
                return lib
            except Exception as exc:  # noqa: BLE001 - any failure means: fall back
                errors.append(f"[{' '.join(flags)}] {exc}")
                if "not found on PATH" in str(exc):
                    break
        raise RuntimeError("; ".join(errors))

    def available(self) -> bool:
        """Whether the kernel can be used (compiles and loads it on the first call)."""
        if disabled_by_env():
            if not self._env_logged:
                self._env_logged = True
                log.info("%s disabled by HOLOVAE_NO_FUSED", self.what)
            return False
        if self.lib is not None:
            return True
        if self.failure is not None:
            return False
        with self._lock:
            if self.lib is None and self.failure is None:
                try:
                    self.lib = self.load()
                except Exception as exc:  # noqa: BLE001
                    self.failure = str(exc)
                    log.warning("holovae %s unavailable, using the pure-torch path: %s", self.what, self.failure)
        return self.lib is not None

    def get(self) -> ctypes.CDLL:
        """The loaded library; ``RuntimeError`` (saying why) when it is unavailable."""
        if not self.available():
            why = "disabled by HOLOVAE_NO_FUSED" if disabled_by_env() else self.failure
            raise RuntimeError(f"{self.what} unavailable ({why}); check available() and use the pure-torch path")
        assert self.lib is not None
        return self.lib
