"""`holovae download`: fetch one file from mirrors, verify its checksums, then move it into place."""
from __future__ import annotations


def run(args) -> None:
    from ..download import download

    download(args.url, args.out, md5=args.md5, decompressed_md5=args.decompressed_md5,
             sha256=args.sha256, retries=args.retries, timeout=args.timeout,
             progress=not args.no_progress, lock=args.lock)


def register(sub) -> None:
    d = sub.add_parser("download", help="download a file from mirrors and verify its checksums")
    d.add_argument("--url", action="append", required=True,
                   help="URL, file: URL or local path; repeat for mirrors, tried in order")
    d.add_argument("--out", required=True, help="destination; written only after verification")
    d.add_argument("--md5", default=None, help="md5 of the file as downloaded")
    d.add_argument("--decompressed-md5", default=None,
                   help="md5 of the gunzipped content (survives re-compression of mirrors)")
    d.add_argument("--sha256", default=None, help="sha256 of the file as downloaded")
    d.add_argument("--lock", default=None, metavar="JSON",
                   help="checksum lock file: without a configured checksum, the first complete download pins "
                        "its sha256 here and later downloads must match it")
    d.add_argument("--retries", type=int, default=3, help="extra rounds for transient errors")
    d.add_argument("--timeout", type=float, default=60.0, help="seconds per network operation")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=run)
