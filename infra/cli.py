"""The `dealledger` command line: one entry point for every process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from infra.logging import configure_logging
from infra.settings import Settings


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from infra.demo import run_demo

    return run_demo(settings, fresh=not args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dealledger",
        description="Event-sourced ledger for deal management in partner ecosystems.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the scripted scenario on the embedded store")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the existing embedded store instead of a fresh one",
    )
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    handler = args.handler
    code: int = handler(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
