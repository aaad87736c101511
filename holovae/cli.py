"""``holovae <command>``: what every workflow rule calls; everything can be run by hand."""
from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("holovae")


def build_parser() -> argparse.ArgumentParser:
    from .commands import register_all

    p = argparse.ArgumentParser(prog="holovae", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, and the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    register_all(sub)
    for command in sub.choices.values():   # every option's help ends with its default
        command.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        if args.verbose:
            log.exception("%s", exc)
        else:
            log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
