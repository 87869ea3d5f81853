"""The ``cnnlab`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

DESCRIPTION = """\
Train convolutional networks (CNNs) that classify images: on this machine with
`cnnlab train`, or as jobs on a cnnlab server, over HTTP."""

EPILOG = """\
commands by use:
  train here          train SPEC.json (metrics per epoch; --out keeps checkpoints)
  run a server        serve (the API and its workers in one), or api and worker apart;
                      db (the job database), token (API tokens for users),
                      doctor (check data, database, broker, GPUs, disk)
  use a server        datasets (upload your own images), submit, search, jobs,
                      watch, predict, cancel, export, models
                      (which server: --url or $CNNLAB_URL; the token:
                      $CNNLAB_TOKEN, or a file: $CNNLAB_TOKEN_FILE or --token-file)

`cnnlab COMMAND --help` tells what a command does and takes."""

# Each command group lives in its own module with ``register(subparsers)``; the order here is
# the order of `cnnlab --help`. The service's own commands (serve, api, worker) come from the
# installed packages' ``cnnlab.commands`` entry points, after ``train``.
COMMAND_MODULES = (
    "cnnlab.cli.train",
    "cnnlab.cli.db",
    "cnnlab.cli.tokens",
    "cnnlab.cli.remote",
    "cnnlab.cli.datasets",
    "cnnlab.cli.export",
    "cnnlab.cli.models",
    "cnnlab.cli.doctor",
)
PLUGIN_GROUP = "cnnlab.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first, *rest = COMMAND_MODULES
    importlib.import_module(first).register(sub)
    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        plugin.load()(sub)
    for name in rest:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
