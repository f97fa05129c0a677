"""The command-line options of every bench that serves a copy of the app and waits for a quiet machine."""

import argparse
from pathlib import Path


def add_app_options(parser: argparse.ArgumentParser, *, each: str, writes: str) -> None:
    """--app-env, --json (which writes `writes`), the wait for a quiet machine before each `each`, --keep."""
    parser.add_argument(
        "--app-env", action="append", default=[], metavar="NAME=VALUE", help="extra app setting (repeatable)"
    )
    parser.add_argument("--json", type=Path, help=f"also write {writes} to this file")
    parser.add_argument(
        "--quiet-percent",
        type=float,
        default=20.0,
        help=f"before each {each}, wait until other processes use less CPU than this (%% of one core; default 20)",
    )
    parser.add_argument("--quiet-wait", type=float, default=180.0, help="wait at most this long for it (default 180 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
