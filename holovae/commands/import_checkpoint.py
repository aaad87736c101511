"""`holovae import-checkpoint`: one of the authors' published protein models (or any archive or
folder in their layout) -> an ordinary holovae model file.

``SOURCE`` is a published model id (``holovae import-checkpoint --list``), an http(s) URL of an
archive, a local archive, or a folder holding ``hparams.json`` and the weights. Downloads go
through :func:`holovae.download.download` (mirrors, retries; no checksum is published, so the
first complete download pins its sha256 in the lock file and every later one must match). The
output holds the architecture, the converted weights, the normalising constant and the data
transform (``data_attrs``), so ``embed-structures``, ``prepare-lba --model`` and ``lba-regress
--features hae`` use it as they use a model trained by ``holovae train``; and, under
``pretrained``, where it came from (archive sha256, the authors' hparams).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..pretrained import WEIGHTS_FILE

log = logging.getLogger("holovae")


def default_download_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "holovae" / "pretrained"


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "file:"))


def fetch(args) -> tuple[Path, str | None]:
    """``(local archive or folder, model id or None)`` for ``args.source``, downloading when it
    names a published model or a URL (or ``--url`` is given)."""
    from ..download import download, pinned_sha256, verify
    from ..pretrained import PUBLISHED

    source = args.source
    model_id = args.model_id or (source if source in PUBLISHED else None)
    if source not in PUBLISHED and not _is_url(source) and not args.url:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{source}: not a published model ({', '.join(PUBLISHED)}), a URL, "
                                    "or an existing archive or folder")
        return path, model_id
    urls = list(args.url or []) or (list(PUBLISHED[source].urls) if source in PUBLISHED else [source])
    if source not in PUBLISHED and not _is_url(source) and model_id is None:
        model_id = source          # `import-checkpoint NAME --url ...`: NAME is the folder in the archive
    name = model_id or Path(urls[0].split("?")[0]).name or "model"
    folder = Path(args.download_dir) if args.download_dir else default_download_dir()
    dest = folder / (name if name.endswith((".tar.gz", ".tgz", ".tar")) else f"{name}.tar.gz")
    lock = Path(args.lock) if args.lock else folder / "checksums.lock"
    if dest.exists():
        expected = args.sha256 or pinned_sha256(lock, dest)
        if expected:
            verify(dest, sha256=expected)
            log.info("%s: already downloaded, sha256 verified", dest)
            return dest, model_id
    download(urls, dest, sha256=args.sha256, lock=lock, retries=args.retries, timeout=args.timeout,
             progress=not args.no_progress)
    return dest, model_id


def run(args) -> None:
    import holovae

    from ..download import sha256_file
    from ..pretrained import PUBLISHED
    from ..pretrained.archive import read_checkpoint
    from ..pretrained.convert import convert
    from ..models.checkpoint import data_extra, save_model

    if args.list:
        for model_id, p in PUBLISHED.items():
            print(f"{model_id}\tz={p.latent_dim}, lmax={p.lmax}: {p.note}\t{' '.join(p.urls)}")
        return
    if not args.source or not args.out:
        raise ValueError("give SOURCE and --out (or --list)")
    path, model_id = fetch(args)
    ckpt = read_checkpoint(path, model_id=model_id, weights=args.weights)
    where = f"{ckpt.source}:{ckpt.folder}" if ckpt.folder not in ("", ".") else ckpt.source
    model, attrs = convert(ckpt.hparams, ckpt.state_dict, where=where)
    provenance = {"source": args.source, "model_id": model_id, "archive": str(path),
                  "archive_sha256": sha256_file(path) if path.is_file() else None, "folder": ckpt.folder,
                  "weights_file": ckpt.weights_file, "authors_hparams": ckpt.hparams,
                  "converted_by": f"holovae {holovae.__version__}"}
    save_model(model, args.out, {**data_extra(attrs), "pretrained": provenance})
    c = model.config
    log.info("wrote %s: %s, z=%d, channels %s, degrees %s, tp %s, %s, %s parameters; transform L=%d, n_max=%d, "
             "r_max=%g, elements %s, normalisation %s, radial %s; input scale %.6g", args.out, model_id or path,
             c.latent_dim, c.channels, c.degrees, c.tp, "VAE" if c.vae else "AE", f"{model.n_parameters():,}",
             attrs["lmax"], attrs["n_max"], attrs["r_max"], ",".join(attrs["elements"]), attrs["normalization"],
             attrs["radial"], float(model.input_scale))


def register(sub) -> None:
    p = sub.add_parser("import-checkpoint",
                       help="convert one of the authors' published protein models into a holovae model file")
    p.add_argument("source", nargs="?", default=None,
                   help="a published model id (see --list), an archive URL, or a local archive or model folder")
    p.add_argument("--out", default=None, help="the holovae model file to write (e.g. hae_z128.pt)")
    p.add_argument("--list", action="store_true", help="list the published models and exit")
    p.add_argument("--url", action="append", default=None,
                   help="download from this URL instead of the published ones; repeat for mirrors")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive (none is published)")
    p.add_argument("--download-dir", default=None,
                   help="where archives are kept; none: $XDG_CACHE_HOME/holovae/pretrained, else "
                        "~/.cache/holovae/pretrained")
    p.add_argument("--lock", default=None, metavar="JSON",
                   help="checksum lock file pinning each archive's sha256 at its first download "
                        "(none: checksums.lock in the download folder)")
    p.add_argument("--model-id", default=None,
                   help="the model folder inside the archive, when it holds several (none: SOURCE when it is a "
                        "published id)")
    p.add_argument("--weights", default=WEIGHTS_FILE,
                   help="the weights file in the model folder (the authors' inference default)")
    p.add_argument("--retries", type=int, default=3, help="extra download rounds for transient errors")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per network operation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
