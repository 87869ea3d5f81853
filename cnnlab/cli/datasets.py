"""``cnnlab datasets upload|list|show|delete``: your own images on a server.

``upload PATH --name NAME`` sends a folder (zipped while it is sent) or an archive with a
progress bar over the bytes, then follows the worker's decoding, then prints the report's
summary. A spec then names the dataset as ``NAME`` (its newest ready version) or ``NAME@V``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.cli._remote_base import (
    EXIT_FAILED,
    EXIT_HELP,
    EXIT_OK,
    UsageError,
    dump,
    runner,
    server_args,
    table,
)

if TYPE_CHECKING:
    from cnnlab.client import Client, Event

USAGE = """
  cnnlab datasets upload PATH --name NAME [--image-size N] [--test-size F] [--resize MODE]
  cnnlab datasets list
  cnnlab datasets show NAME[@V]
  cnnlab datasets delete NAME[@V]
"""
ACTIONS = ("upload", "list", "show", "delete")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets",
        parents=[server_args()],
        help="upload a folder of labelled images as a dataset; list, show, delete them",
        description="Your own datasets on the server: a folder with one sub-folder of images "
        "per class (or train/ and test/ each holding them, or labels.csv), or an archive of one.",
        epilog=EXIT_HELP,
        usage=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("target", nargs="?", help="PATH (upload) or NAME[@V] (show, delete)")
    parser.add_argument("--name", help="upload: the dataset's name ([a-z0-9][a-z0-9._-]*)")
    parser.add_argument("--image-size", type=int, help="upload: side in pixels (16-224)")
    parser.add_argument("--test-size", type=float, help="upload: held out when no test/")
    parser.add_argument("--resize", choices=("center_crop", "squash", "pad"))
    parser.add_argument("--json", action="store_true", help="print JSON, not a summary")
    parser.set_defaults(func=runner(cmd_datasets))


def cmd_datasets(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(client, as_json=args.json)
    if not args.target:
        raise UsageError(f"{args.action} needs {'PATH' if args.action == 'upload' else 'NAME'}")
    if args.action == "upload":
        return _upload(client, args)
    if args.action == "show":
        found = client.dataset(args.target)
        if args.json:
            dump(found)
        elif "versions" in found:
            rows = [_row(v) for v in found["versions"]]
            print(table(["VERSION", "STATUS", "CLASSES", "TRAIN", "VAL", "TEST", "SIZE"], rows))
        else:
            print(summary(found))
        return EXIT_OK
    client.delete_dataset(args.target)
    print(f"deleted {args.target}")
    return EXIT_OK


def _row(v: dict[str, Any]) -> list[Any]:
    counts = v.get("counts") or {}
    size = f"{v['channels']}×{v['image_size']}×{v['image_size']}" if v.get("channels") else "-"
    classes = len(v["classes"]) if v.get("classes") else "-"
    splits = [counts.get(k, "-") for k in ("train", "val", "test")]
    return [v["version"], v["status"], classes, *splits, size]


def _list(client: Client, *, as_json: bool) -> int:
    rows = client.datasets()
    if as_json:
        dump(rows)
        return EXIT_OK
    lines = []
    for d in rows:
        ref = d["name"] if d.get("kind") != "uploaded" else f"{d['name']}@{d['version']}"
        shape = "×".join(str(n) for n in d["shape"]) if d.get("shape") else "-"
        status = d.get("status") or ("available" if d["available"] else "unavailable")
        lines.append([ref, d.get("kind", "builtin"), status, len(d["class_names"]), shape])
    print(table(["DATASET", "KIND", "STATUS", "CLASSES", "SHAPE"], lines))
    return EXIT_OK


def _upload(client: Client, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    path = Path(args.target)
    if not path.exists():
        raise UsageError(f"no such file or folder: {path}")
    if not args.name:
        raise UsageError("upload needs --name NAME")
    sent = tqdm(desc=f"upload {path.name}", unit="B", unit_scale=True, disable=None)
    decoding = tqdm(desc=f"ingest {args.name}", unit="img", disable=None)

    def on_bytes(done: int, total: int | None) -> None:
        sent.total = total
        sent.update(done - sent.n)

    def on_event(event: Event) -> None:
        progress = event.data.get("progress") or {}
        if progress.get("total"):
            decoding.total = progress["total"]
            decoding.update(progress["done"] - decoding.n)

    try:
        version = client.upload_dataset(
            path,
            name=args.name,
            image_size=args.image_size,
            test_size=args.test_size,
            resize=args.resize,
            progress=on_bytes,
            on_event=on_event,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        sent.close()
        decoding.close()
    if args.json:
        dump(version)
    else:
        print(summary(version))
    return EXIT_OK if version["status"] == "ready" else EXIT_FAILED


def summary(v: dict[str, Any]) -> str:
    """A version in a few lines: its status, classes, splits, size, and what the report found."""
    ref = f"{v['name']}@{v['version']}"
    if v["status"] != "ready":
        error = v.get("error") or {}
        return f"{ref} {v['status']}" + (f": {error.get('message')}" if error else "")
    counts = v.get("counts") or {}
    lines = [
        f"{ref} ready: {len(v['classes'])} classes, {v['channels']}×{v['image_size']}×"
        f"{v['image_size']} ({v['resize']}); train {counts.get('train')}, val "
        f"{counts.get('val')}, test {counts.get('test')}",
        f"  classes: {', '.join(v['classes'])}",
    ]
    report = v.get("report") or {}
    for key, value in report.items():
        if isinstance(value, list):
            lines.append(f"  {key}: {len(value)}")
        elif not isinstance(value, dict):
            lines.append(f"  {key}: {value}")
    lines.append(f'  train on it: {{"dataset": "{v["name"]}", ...}} or "{ref}"')
    return "\n".join(lines)
