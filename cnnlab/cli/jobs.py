"""``cnnlab submit|jobs|watch|predict|cancel``: jobs on a server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cnnlab.cli._remote_base import (
    EXIT_ERROR,
    EXIT_OK,
    OUTCOME_EXIT,
    UsageError,
    dump,
    pct,
    print_json,
    read_json,
    table,
)
from cnnlab.cli.models import predict_with_model
from cnnlab.cli.train import epoch_header, epoch_line

if TYPE_CHECKING:
    from cnnlab.client import Client, Event


def cmd_submit(client: Client, args: argparse.Namespace) -> int:
    spec = read_json(args.spec)
    if not isinstance(spec, dict):
        raise UsageError(f"{args.spec} must hold a JSON object (a train spec)")
    job = client.submit(spec)
    if args.json:
        dump(job)
    else:
        print(job["id"])  # alone on stdout: ID=$(cnnlab submit spec.json)
        print(f"job {job['id']} {job['status']}: {_describe(job['spec'])}", file=sys.stderr)
    if args.watch:
        return _watch(client, job["id"], as_json=False)
    return EXIT_OK


def _describe(spec: dict[str, Any]) -> str:
    opt = spec.get("optimizer", {})
    return (
        f"{spec.get('dataset')}, {spec.get('model', {}).get('arch', 'cnn')}, "
        f"{opt.get('name', 'sgd')} lr={opt.get('lr')}, batch {spec.get('batch_size')}, "
        f"{spec.get('epochs')} epochs"
    )


def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    jobs = client.jobs(
        args.status, search_id=args.search_id, limit=args.limit, tag=args.tag, name=args.name
    )
    if args.json:
        dump(jobs)
        return EXIT_OK
    if not jobs:
        print("no jobs" + (f" with status {args.status}" if args.status else ""), file=sys.stderr)
        return EXIT_OK
    rows = [
        [
            j["id"],
            j["status"],
            j["spec"].get("dataset"),
            f"{j['epoch']}/{j['spec'].get('epochs')}",
            pct(j["best_val_accuracy"]),
            pct(j["test_accuracy"]),
            j["created_at"][:19].replace("T", " "),
        ]
        for j in jobs
    ]
    print(table(["ID", "STATUS", "DATASET", "EPOCH", "BEST_VAL", "TEST", "CREATED"], rows))
    return EXIT_OK


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    return _watch(client, args.job_id, as_json=args.json)


def _watch(client: Client, job_id: str, *, as_json: bool) -> int:
    """Follow the job: a progress bar over epochs (on a terminal) above the metrics table,
    then a summary line; or, ``as_json``, one JSON line per event. Exits with the job's
    outcome."""
    if as_json:
        job = client.wait(job_id, on_event=print_json)
        return OUTCOME_EXIT.get(job["status"], EXIT_ERROR)
    bar = EpochBar(client.job(job_id))
    rows = 0

    def show(event: Event) -> None:
        nonlocal rows
        bar.event(event)
        if event.type == "epoch":
            if not rows:
                bar.write(epoch_header())
            rows += 1
            bar.write(epoch_line(event.data))
        elif event.data["status"] == "running" and not rows:
            bar.write(f"job {job_id} running: {_describe(event.data['spec'])}", sys.stderr)

    try:
        job = client.wait(job_id, on_event=show)
    finally:
        bar.close()
    print(_summary(job))
    return OUTCOME_EXIT.get(job["status"], EXIT_ERROR)


class EpochBar:
    """A tqdm bar over a job's epochs, fed its events by ``Client.wait(on_event=bar.event)``
    (quiet when disabled, or when stderr is not a terminal)."""

    def __init__(self, job: dict[str, Any], *, enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self.status = job["status"]
        self.total = int(job["spec"].get("epochs") or 0) or None
        self._bar = tqdm(
            total=self.total,
            desc=f"job {job['id'][:8]}",
            unit="epoch",
            disable=None if enabled else True,
            leave=True,
        )
        self._bar.set_postfix_str(self.status)

    def event(self, event: Event) -> None:
        if event.type == "epoch":
            self._bar.update(max(0, int(event.data["epoch"]) - self._bar.n))
            self._bar.set_postfix_str(f"val_acc {event.data['val_accuracy']:.4f}")
        elif event.type == "status":
            self.status = event.data["status"]
            self._bar.set_postfix_str(self.status)

    def write(self, line: str, file: TextIO | None = None) -> None:
        """A line of output (stdout by default) that does not break the bar."""
        self._bar.write(line, file=file)

    def close(self) -> None:
        self._bar.close()


def _summary(job: dict[str, Any]) -> str:
    line = f"job {job['id']} {job['status']} after {job['epoch']} epoch(s)"
    if job["best_val_accuracy"] is not None:
        line += f": best val_accuracy {pct(job['best_val_accuracy'])}"
    if job["test_accuracy"] is not None:
        line += f", test_accuracy {pct(job['test_accuracy'])}"
    if job["error"]:
        line += f": {job['error'].get('type')}: {job['error'].get('message')}"
    return line


def cmd_predict(client: Client, args: argparse.Namespace) -> int:
    if args.model:
        return predict_with_model(client, args.model, [Path(args.job_id), *args.images], args)
    if not args.images:
        raise UsageError("give image files after the job id")
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    predictions = client.predict(args.job_id, args.images)
    if args.json:
        dump([{"file": str(p), **r} for p, r in zip(args.images, predictions, strict=True)])
        return EXIT_OK
    names = _class_names(client, args.job_id)
    rows = []
    for path, result in zip(args.images, predictions, strict=True):
        probs = result["probabilities"]
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[: max(1, args.top)]
        others = ", ".join(f"{names.get(i, i)} {probs[i]:.3f}" for i in top[1:])
        best = f"{probs[result['label']]:.3f}"
        rows.append([path.name, result["label"], result["class_name"], best, others])
    print(table(["IMAGE", "LABEL", "CLASS", "P", "NEXT"], rows))
    return EXIT_OK


def _class_names(client: Client, job_id: str) -> dict[int, str]:
    """The job's dataset's class names by label (empty if the server does not say)."""
    from cnnlab.client import ApiError

    dataset = client.job(job_id)["spec"].get("dataset")
    if "@" in str(dataset):  # an uploaded dataset's version (gone if it was deleted since)
        try:
            return dict(enumerate(client.dataset(dataset).get("classes") or []))
        except ApiError:
            return {}
    for row in client.datasets():
        if row["name"] == dataset:
            return dict(enumerate(row["class_names"]))
    return {}


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    from cnnlab.client import ApiError

    try:
        job = client.cancel(args.job_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        try:
            search = client.cancel_search(args.job_id)
        except ApiError as search_exc:
            if search_exc.status == 404:
                raise exc from None
            raise
        if args.json:
            dump(search)
        else:
            print(f"search {search['id']}: cancel requested; status {search['status']}")
        return EXIT_OK
    if args.json:
        dump(job)
    elif job["status"] == "cancelled":
        print(f"job {job['id']} cancelled")
    elif job["cancel_requested"]:
        print(f"job {job['id']} {job['status']}: it stops within an epoch")
    else:
        print(f"job {job['id']} already {job['status']}: nothing to cancel")
    return EXIT_OK
