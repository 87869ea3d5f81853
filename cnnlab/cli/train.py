"""``cnnlab train SPEC.json``: train one spec locally, no service."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cnnlab.errors import CnnlabError, SpecError
from cnnlab.settings import get_settings
from cnnlab.threads import yield_idle_threads

if TYPE_CHECKING:
    from cnnlab.spec.train import TrainSpec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one spec locally (no service)")
    p.add_argument("spec", type=Path, help="a train spec JSON file (the body of a job)")
    p.add_argument("--json", action="store_true", help="one JSON line per epoch, then a summary")
    p.add_argument("--out", type=Path, help="write best.pt (best validation) and last.pt here")
    p.add_argument("--resume", type=Path, help="continue from a last.pt written by --out")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the spec's device")
    p.set_defaults(func=run)


# One epoch's metrics as a table row, for people: `cnnlab train` and `cnnlab watch` both print
# these columns (title, metrics key, width, format); `train` adds the training speed.
EPOCH_COLUMNS = (
    ("epoch", "epoch", 5, "d"),
    ("train_loss", "train_loss", 10, ".4f"),
    ("val_loss", "val_loss", 9, ".4f"),
    ("val_acc", "val_accuracy", 7, ".4f"),
    ("sec", "seconds", 6, ".2f"),
)
SPEED_COLUMN = ("img/s", "images_per_second", 8, ".0f")


def _epoch_columns(speed: bool) -> tuple[tuple[str, str, int, str], ...]:
    return (*EPOCH_COLUMNS, SPEED_COLUMN) if speed else EPOCH_COLUMNS


def epoch_header(*, speed: bool = False) -> str:
    """The titles of :func:`epoch_line`'s columns."""
    return "  ".join(title.rjust(width) for title, _, width, _ in _epoch_columns(speed))


def epoch_line(metrics: Mapping[str, Any], *, speed: bool = False) -> str:
    """One epoch's metrics row (``epoch``, losses, ``val_accuracy``, ``seconds`` and, with
    ``speed``, ``images_per_second``) as a line under :func:`epoch_header`; a missing value
    is ``-``."""
    cells = []
    for _, key, width, fmt in _epoch_columns(speed):
        value = metrics.get(key)
        cells.append("-".rjust(width) if value is None else f"{value:>{width}{fmt}}")
    return "  ".join(cells)


def _emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def _format_errors(exc: ValidationError) -> str:
    from cnnlab.spec.train import field_path

    lines = []
    for err in exc.errors():
        loc = field_path(err["loc"]) or "spec"
        lines.append(f"  {loc}: {err['msg']}")
    return "invalid spec:\n" + "\n".join(lines)


class _Table:
    """Human output: a progress bar per epoch on a terminal, one table row per epoch."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.bar: Any = None
        self.epoch = 1
        print(epoch_header(speed=True), flush=True)

    def progress(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"epoch {self.epoch}/{self.epochs}", leave=False)
        self.bar.update(done - self.bar.n)

    def row(self, m: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.epoch = m["epoch"] + 1
        print(epoch_line(m, speed=True), flush=True)


def check_model(spec: TrainSpec) -> None:
    """An architecture that cannot take the dataset's images is a :class:`SpecError`, as when
    the spec is submitted (:func:`cnnlab.spec.validate.check_model`), but tried here on one image on
    the CPU: the meta device that check uses imports ``torch._dynamo`` (and sympy) on its first
    use, seconds of a local run's start-up, and this model is built for real right after. The
    data are checked by :func:`cnnlab.engine.training.fit` as it loads them (the same errors)."""
    import torch

    from cnnlab.datasets.catalog import get_meta
    from cnnlab.spec.model import build_model, model_config

    meta = get_meta(spec.dataset)
    try:
        model = build_model(model_config(spec, meta)).eval()
        with torch.inference_mode():
            model(torch.zeros(1, *meta.shape))
    except (ValueError, RuntimeError) as exc:
        raise SpecError("model", str(exc)) from None


def run(args: argparse.Namespace) -> int:
    yield_idle_threads()  # before torch is imported, below
    from cnnlab.engine import checkpoints as checkpoint
    from cnnlab.engine.training import EpochReport, fit
    from cnnlab.spec.train import TrainSpec

    try:
        doc = json.loads(args.spec.read_text())
        if args.device:
            doc["device"] = args.device
        spec = TrainSpec.model_validate(doc)
    except OSError as exc:
        print(f"error: cannot read {args.spec}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"error: {args.spec} is not JSON: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: {_format_errors(exc)}", file=sys.stderr)
        return 2

    table = None if args.json else _Table(spec.epochs)

    def on_epoch(report: EpochReport) -> None:
        row = report.metrics.to_dict()
        if args.out:
            checkpoint.save(report.checkpoint, args.out / "last.pt")
        _emit(row) if table is None else table.row(row)

    try:
        settings = get_settings()
        check_model(spec)
        resume = checkpoint.load(args.resume) if args.resume else None
        result = fit(
            spec,
            settings=settings,
            on_epoch=on_epoch,
            resume=resume,
            progress=None if table is None else table.progress,
        )
    except CnnlabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    summary = result.summary()
    if args.out:
        summary["checkpoint"] = str(checkpoint.save(result.best_checkpoint, args.out / "best.pt"))
    if table is None:
        _emit(summary)
    else:
        test = summary["test_accuracy"]
        print(
            f"best val_accuracy {summary['best_val_accuracy']:.4f} at epoch "
            f"{summary['best_epoch']}; test_accuracy {test:.4f}; {summary['seconds']:.1f} s"
            + (f"; checkpoint {summary['checkpoint']}" if args.out else "")
        )
    return 0
