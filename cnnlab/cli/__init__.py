"""The ``cnnlab`` command. Each command group lives in its own module with ``register()``."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "cnnlab.cli.train",
    "cnnlab.cli.service",
    "cnnlab.cli.db",
    "cnnlab.cli.tokens",
    "cnnlab.cli.remote",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
