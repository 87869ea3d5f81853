"""The model registry from the command line: ``cnnlab export NAME[@ALIAS|@VERSION]``.

Written as the other client commands are (:mod:`cnnlab.cli._remote_base`): the server and token from
``--url``/``--token``/``--token-file`` or the environment, an error in one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.cli._remote_base import EXIT_OK, UsageError, runner, server_args

if TYPE_CHECKING:
    from cnnlab.client import Client

EXPORT_FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}

EXPORT_HELP = """NAME alone exports the version alias `production` points at, else the newest;
NAME@ALIAS the version ALIAS points at; NAME@3 version 3.

The file takes float32 pixel values 0-255 shaped N×C×H×W and returns class probabilities;
its metadata (input shape, normalisation, class names) is inside it: ONNX metadata_props,
TorchScript extra file cnnlab.json.

exit codes: 0 written, 1 the request failed, 2 bad usage"""


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export",
        parents=[server_args()],
        help="download a registered model as ONNX or TorchScript",
        description="Download a registered model as a file that runs without cnnlab "
        "(onnxruntime, or torch.jit.load).",
        epilog=EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("model", metavar="NAME[@ALIAS|@VERSION]")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="onnx")
    export.add_argument(
        "-o", "--output", type=Path, help="the file to write (default: NAME-vN.onnx or .pt here)"
    )
    export.set_defaults(func=runner(cmd_export))


def parse_reference(ref: str) -> tuple[str, str | None, int | None]:
    """``NAME``, ``NAME@ALIAS`` or ``NAME@VERSION`` → (name, alias, version)."""
    name, sep, selector = ref.partition("@")
    if not name or (sep and not selector):
        raise UsageError(f"{ref!r}: expected NAME, NAME@ALIAS or NAME@VERSION")
    if not sep:
        return name, None, None
    if selector.isdigit():
        return name, None, int(selector)
    return name, selector, None


def cmd_export(client: Client, args: argparse.Namespace) -> int:
    name, alias, version = parse_reference(args.model)
    version = version if version is not None else client.resolve_version(name, alias)
    output: Path = args.output or Path(f"{name}-v{version}{SUFFIXES[args.format]}")
    data, version = client.export_model(name, output, format=args.format, version=version)
    print(output)
    print(_describe(name, version, args.format, len(data)), file=sys.stderr)
    return EXIT_OK


def _describe(name: str, version: int, fmt: str, size: int) -> str:
    extra: dict[str, Any] = {"onnx": "onnxruntime", "torchscript": "torch.jit.load"}
    return f"{name} v{version} as {fmt} ({size} bytes): runs with {extra[fmt]}"
