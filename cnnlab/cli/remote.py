"""The client commands: ``cnnlab submit|search|jobs|watch|predict|cancel`` against a server.

The server and the token come from ``--url``/``--token`` or ``CNNLAB_URL``/``CNNLAB_TOKEN``.
An error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cnnlab.cli.train import epoch_header, epoch_line
from cnnlab.status import JobStatus

if TYPE_CHECKING:  # the client (and httpx) is imported when a command runs, not at start-up
    from cnnlab.client import Client, Event

# cnnlab.client.DEFAULT_URL, repeated so that `--help` needs no httpx import
DEFAULT_URL = "http://127.0.0.1:8000"

# Exit codes: what `watch` (and `submit --watch`) end with, by the job's outcome.
EXIT_OK = 0
EXIT_ERROR = 1  # the request failed: bad token, unreachable server, an error answer
EXIT_USAGE = 2  # a bad command line or input file
EXIT_FAILED = 3  # the job failed
EXIT_CANCELLED = 4  # the job was cancelled
OUTCOME_EXIT = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
STATUSES = tuple(JobStatus)

EXIT_HELP = """exit codes: 0 the job succeeded (or the request worked), 1 the request failed,
2 bad usage or input file, 3 the job failed, 4 the job was cancelled"""


class UsageError(Exception):
    """A bad input file or argument: exit code 2."""


Handler = Callable[["Client", argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help=f"the server (default: $CNNLAB_URL, else {DEFAULT_URL})", default=None
    )
    common.add_argument("--token", help="an API token (default: $CNNLAB_TOKEN)", default=None)

    def add(name: str, handler: Handler, help: str, *, json_flag: bool = True) -> Any:
        parser = subparsers.add_parser(
            name,
            parents=[common],
            help=help,
            description=help,
            epilog=EXIT_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if json_flag:
            parser.add_argument("--json", action="store_true", help="print JSON, not a table")
        parser.set_defaults(func=_runner(handler))
        return parser

    submit = add("submit", cmd_submit, "submit a train spec (JSON file) as a job on the server")
    submit.add_argument("spec", type=Path, help="a train spec JSON file ('-' reads stdin)")
    submit.add_argument("--watch", action="store_true", help="then watch it until it ends")

    search = add("search", cmd_search, "start a grid search from a JSON file")
    search.add_argument(
        "grid",
        type=Path,
        help='{"base": SPEC, "grid": {"optimizer.lr": [...], ...}, "metric", "mode"}',
    )

    jobs = add("jobs", cmd_jobs, "list your jobs, newest first")
    jobs.add_argument("--status", choices=STATUSES, help="only jobs with this status")
    jobs.add_argument("--search", dest="search_id", metavar="ID", help="only this search's")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    watch = add("watch", cmd_watch, "follow a job live until it ends", json_flag=False)
    watch.add_argument("job_id", metavar="ID")
    watch.add_argument("--json", action="store_true", help="one JSON line per event")

    predict = add("predict", cmd_predict, "classify image files with a job's model")
    predict.add_argument("job_id", metavar="ID")
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="PNG or JPEG")
    predict.add_argument("--top", type=int, default=3, help="classes shown per image")

    cancel = add("cancel", cmd_cancel, "cancel a job (or every trial of a search)")
    cancel.add_argument("job_id", metavar="ID", help="a job id, or a search id")


def _runner(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from cnnlab.client import Client, ClientError

        try:
            with Client(args.url, args.token) as client:
                return handler(client, args)
        except UsageError as exc:
            print(f"cnnlab {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ClientError as exc:
            print(f"cnnlab {args.command}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print(f"cnnlab {args.command}: interrupted", file=sys.stderr)
            return 130

    return run


def _read_json(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


# -- commands --------------------------------------------------------------------------------
def cmd_submit(client: Client, args: argparse.Namespace) -> int:
    spec = _read_json(args.spec)
    if not isinstance(spec, dict):
        raise UsageError(f"{args.spec} must hold a JSON object (a train spec)")
    job = client.submit(spec)
    if args.json:
        _dump(job)
    else:
        print(job["id"])  # alone on stdout: ID=$(cnnlab submit spec.json)
        print(f"job {job['id']} {job['status']}: {_describe(job['spec'])}", file=sys.stderr)
    if args.watch:
        return _watch(client, job["id"], as_json=False)
    return EXIT_OK


def cmd_search(client: Client, args: argparse.Namespace) -> int:
    body = _read_json(args.grid)
    if not isinstance(body, dict) or "base" not in body or "grid" not in body:
        raise UsageError(f'{args.grid} must hold {{"base": SPEC, "grid": {{...}}}}')
    unknown = set(body) - {"base", "grid", "metric", "mode"}
    if unknown:
        raise UsageError(f"{args.grid}: unknown keys {sorted(unknown)}")
    search = client.search(
        body["base"],
        body["grid"],
        metric=body.get("metric", "val_accuracy"),
        mode=body.get("mode", "max"),
    )
    if args.json:
        _dump(search)
        return EXIT_OK
    print(search["id"])
    print(f"search {search['id']}: {len(search['trials'])} trials", file=sys.stderr)
    print(_trials_table(search), file=sys.stderr)
    return EXIT_OK


def _trials_table(search: dict[str, Any]) -> str:
    keys = list(search["grid"])
    rows = [
        [
            t["job_id"],
            t["status"],
            *(json.dumps(t["params"].get(k)) for k in keys),
            _pct(t["val_accuracy"]),
        ]
        for t in search["trials"]
    ]
    return _table(["JOB", "STATUS", *keys, "VAL_ACC"], rows)


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
    jobs = client.jobs(args.status, search_id=args.search_id, limit=args.limit)
    if args.json:
        _dump(jobs)
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
            _pct(j["best_val_accuracy"]),
            _pct(j["test_accuracy"]),
            j["created_at"][:19].replace("T", " "),
        ]
        for j in jobs
    ]
    print(_table(["ID", "STATUS", "DATASET", "EPOCH", "BEST_VAL", "TEST", "CREATED"], rows))
    return EXIT_OK


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    return _watch(client, args.job_id, as_json=args.json)


def _watch(client: Client, job_id: str, *, as_json: bool) -> int:
    """Follow the job: a progress bar over epochs (on a terminal) above the metrics table,
    then a summary line; or, ``as_json``, one JSON line per event. Exits with the job's
    outcome."""
    if as_json:
        job = client.wait(job_id, on_event=_print_json)
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


def _print_json(event: Event) -> None:
    print(json.dumps({"event": event.type, **event.data}), flush=True)


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
        line += f": best val_accuracy {_pct(job['best_val_accuracy'])}"
    if job["test_accuracy"] is not None:
        line += f", test_accuracy {_pct(job['test_accuracy'])}"
    if job["error"]:
        line += f": {job['error'].get('type')}: {job['error'].get('message')}"
    return line


def cmd_predict(client: Client, args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    predictions = client.predict(args.job_id, args.images)
    if args.json:
        _dump([{"file": str(p), **r} for p, r in zip(args.images, predictions, strict=True)])
        return EXIT_OK
    names = _class_names(client, args.job_id)
    rows = []
    for path, result in zip(args.images, predictions, strict=True):
        probs = result["probabilities"]
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[: max(1, args.top)]
        others = ", ".join(f"{names.get(i, i)} {probs[i]:.3f}" for i in top[1:])
        best = f"{probs[result['label']]:.3f}"
        rows.append([path.name, result["label"], result["class_name"], best, others])
    print(_table(["IMAGE", "LABEL", "CLASS", "P", "NEXT"], rows))
    return EXIT_OK


def _class_names(client: Client, job_id: str) -> dict[int, str]:
    """The job's dataset's class names by label (empty if the server does not say)."""
    dataset = client.job(job_id)["spec"].get("dataset")
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
            _dump(search)
        else:
            print(f"search {search['id']}: cancel requested; status {search['status']}")
        return EXIT_OK
    if args.json:
        _dump(job)
    elif job["status"] == "cancelled":
        print(f"job {job['id']} cancelled")
    elif job["cancel_requested"]:
        print(f"job {job['id']} {job['status']}: it stops within an epoch")
    else:
        print(f"job {job['id']} already {job['status']}: nothing to cancel")
    return EXIT_OK
