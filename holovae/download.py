"""Checksum-verified, atomic downloads (what the workflow's download rules call).

A file only ever appears at its destination after its checksums matched: it is streamed
into ``.NAME.part`` next to the destination (same filesystem, so the final ``os.replace``
is atomic) and renamed only once verified. Snakemake therefore never sees a half-written
or wrong file as a finished output.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import http.client
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger("holovae")

CHUNK = 1 << 16


class DownloadError(ValueError):
    """A download or checksum check failed; a ValueError so the CLI reports it and exits 1."""


class _Permanent(Exception):
    """A failure that retrying the same source cannot fix (404, missing file, wrong content)."""


def sha256_file(path) -> str:
    """sha256 of a file's bytes (provenance recorded with prepared datasets)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hexdigests(path, want_decompressed: bool) -> dict[str, str]:
    """md5 and sha256 of the file, plus md5 of its gunzipped content when asked."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            md5.update(block)
            sha.update(block)
    out = {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}
    if want_decompressed:
        # Re-gzipped copies (e.g. MNIST mirrors) differ only in the gzip header's mtime, so
        # the md5 of the payload is the identity check that survives re-compression.
        dmd5 = hashlib.md5()
        try:
            with gzip.open(path, "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    dmd5.update(block)
            out["decompressed_md5"] = dmd5.hexdigest()
        except (OSError, EOFError, zlib.error) as exc:
            out["decompressed_md5"] = f"<not a valid gzip file: {exc}>"
    return out


def _mismatches(path, md5=None, decompressed_md5=None, sha256=None) -> list[str]:
    expected = {"md5": md5, "decompressed_md5": decompressed_md5, "sha256": sha256}
    expected = {k: v.strip().lower() for k, v in expected.items() if v}
    actual = _hexdigests(path, "decompressed_md5" in expected)
    return [f"{k} expected {v}, got {actual[k]}" for k, v in expected.items() if actual[k] != v]


def verify(path, md5=None, decompressed_md5=None, sha256=None) -> None:
    """Raise DownloadError naming ``path`` and expected/actual values unless every given checksum matches."""
    bad = _mismatches(path, md5, decompressed_md5, sha256)
    if bad:
        raise DownloadError(f"{path}: checksum mismatch: {'; '.join(bad)}")


def _local_path(url: str) -> str | None:
    """The filesystem path for ``file:`` URLs and plain paths; None for network URLs."""
    parts = urllib.parse.urlparse(url)
    if parts.scheme == "file":
        return urllib.request.url2pathname(parts.path)
    if len(parts.scheme) <= 1:  # no scheme, or a Windows drive letter
        return url
    return None


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Copy one source into ``part``; raises _Permanent or a transient error."""
    local = _local_path(url)
    if local is not None:
        try:
            src, total = open(local, "rb"), os.path.getsize(local)
        except OSError as exc:  # missing/unreadable file: the same next time
            raise _Permanent(str(exc)) from exc
    else:
        req = urllib.request.Request(url, headers={"User-Agent": "holovae-download"})
        try:
            src = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            # 4xx will not change on retry, except timeouts and rate limits
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise _Permanent(f"HTTP {exc.code} {exc.reason}") from exc
            raise
        length = src.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    with src, open(part, "wb") as out, tqdm(
        total=total, unit="B", unit_scale=True, desc=part.name[1:-5],
        disable=not progress or not sys.stderr.isatty(),
    ) as bar:
        written = 0
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            written += len(block)
            bar.update(len(block))
    # urllib does not complain when a connection drops early; a short file is a transient error
    if total is not None and written != total:
        raise http.client.IncompleteRead(b"", total - written)


def _lock_key(lock: Path, dest: Path) -> str:
    try:
        return str(dest.resolve().relative_to(lock.resolve().parent))
    except ValueError:
        return str(dest.resolve())


@contextlib.contextmanager
def _locked(lock: Path):
    """Exclusive access to the lock file (several download jobs may run at once)."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock.parent / f".{lock.name}.flock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


def _read_lock(lock: Path) -> dict:
    if not lock.exists():
        return {}
    try:
        entries = json.loads(lock.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DownloadError(f"{lock}: unreadable checksum lock file ({exc}); fix or delete it") from None
    if not isinstance(entries, dict):
        raise DownloadError(f"{lock}: not a checksum lock file (expected a JSON object)")
    return entries


def pinned_sha256(lock, dest) -> str | None:
    """The sha256 that ``lock`` recorded for ``dest`` at its first complete download, if any."""
    lock = Path(lock)
    entry = _read_lock(lock).get(_lock_key(lock, Path(dest)))
    return entry.get("sha256") if isinstance(entry, dict) else None


def _pin(lock: Path, dest: Path, url: str) -> str:
    from .atomic import write_text_atomic

    digest = sha256_file(dest)
    with _locked(lock):
        entries = _read_lock(lock)
        entries[_lock_key(lock, dest)] = {"sha256": digest, "bytes": dest.stat().st_size, "url": url,
                                          "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_text_atomic(lock, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return digest


def download(urls, dest, md5=None, decompressed_md5=None, sha256=None, retries=3,
             timeout=60, progress=True, backoff=1.0, lock=None) -> Path:
    """Download ``dest`` from the first source in ``urls`` that delivers the expected file.

    ``urls`` is one URL or a list of mirrors tried in order (http(s), ``file:`` URLs or plain
    paths). Transient failures (5xx, timeouts, resets) are retried: each mirror is tried up
    to ``1 + retries`` times, sleeping ``backoff``, ``2 * backoff``, ... seconds between
    rounds. A mirror whose failure cannot change (4xx, missing file, wrong checksum) is not
    tried again. Raises DownloadError naming the URLs, ``dest`` and the expected/actual
    checksums when no source works. Returns ``dest`` as a Path.

    ``lock`` (a JSON file, e.g. ``results/download/checksums.lock``) pins files that have no
    published checksum: the first complete download records its sha256 there, and every later
    download of the same destination must match it (a truncated or changed file is refused,
    naming the lock). Files with a configured checksum are verified against that instead.
    """
    urls = [urls] if isinstance(urls, (str, os.PathLike)) else list(urls)
    urls = [os.fspath(u) for u in urls]
    if not urls:
        raise DownloadError(f"{dest}: no URL given")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f".{dest.name}.part"
    configured = bool(md5 or decompressed_md5 or sha256)
    pinned = pinned_sha256(lock, dest) if lock is not None and not configured else None
    if pinned:
        sha256 = pinned
        log.info("%s: verifying against the sha256 pinned in %s at its first download", dest, lock)
    errors: dict[str, str] = {}
    live = list(urls)
    for round_ in range(retries + 1):
        if round_ and live:
            time.sleep(backoff * 2 ** (round_ - 1))
        for url in list(live):
            try:
                _fetch(url, part, timeout, progress)
                bad = _mismatches(part, md5, decompressed_md5, sha256)
                if bad:  # the mirror serves different content; downloading again won't help
                    where = f" (pinned in {lock} at the first download)" if pinned else ""
                    raise _Permanent("checksum mismatch" + where + ": " + "; ".join(bad))
                os.replace(part, dest)
                log.info("downloaded %s from %s", dest, url)
                if lock is not None and not configured and not pinned:
                    log.warning("%s: no published checksum; pinned its sha256 %s in %s: later downloads "
                                "must match it", dest, _pin(Path(lock), dest, url), lock)
                elif not configured and not pinned:
                    log.warning("%s: no checksum configured, so nothing was verified; its sha256 is %s "
                                "(pin it in the config)", dest, sha256_file(dest))
                return dest
            except _Permanent as exc:
                errors[url] = str(exc)
                live.remove(url)
            except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
                errors[url] = f"{type(exc).__name__}: {exc}"
            finally:
                # never leave a partial or rejected file behind
                if part.exists():
                    part.unlink()
            log.warning("download of %s from %s failed: %s", dest, url, errors[url])
        if not live:
            break
    detail = "\n".join(f"  {u}: {e}" for u, e in errors.items())
    raise DownloadError(f"could not download {dest} from {', '.join(urls)}:\n{detail}")

