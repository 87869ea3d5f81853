"""The ``cnnlab`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys

DESCRIPTION = """\
Train convolutional networks (CNNs) that classify images: on this machine with
`cnnlab train`, or as jobs on a cnnlab server, over HTTP."""

EPILOG = """\
commands by use:
  train here          train SPEC.json (metrics per epoch; --out keeps checkpoints)
  run a server        serve (the API and its workers in one), or api and worker apart;
                      db (the job database), token (API tokens for users)
  use a server        submit, search, jobs, watch, predict, cancel
                      (which server and token: --url and --token, or
                      $CNNLAB_URL and $CNNLAB_TOKEN)

`cnnlab COMMAND --help` tells what a command does and takes."""

# Each command group lives in its own module with ``register(subparsers)``; the order here is
# the order of `cnnlab --help`.
COMMAND_MODULES = (
    "cnnlab.cli.train",
    "cnnlab.cli.service",
    "cnnlab.cli.db",
    "cnnlab.cli.tokens",
    "cnnlab.cli.remote",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
