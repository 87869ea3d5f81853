"""The client commands: ``cnnlab submit|search|jobs|watch|predict|cancel`` against a server.

``cnnlab search`` also plans, follows, pauses, resumes, retries and cancels searches and lists
their trials (``cnnlab search trials ID --csv``).

The server comes from ``--url`` or ``CNNLAB_URL``; the token from ``CNNLAB_TOKEN``, a file
(``--token-file`` or ``CNNLAB_TOKEN_FILE``) or ``--token`` (which others can see in ``ps``).
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
from cnnlab.search.config import SearchConfig
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
SEARCH_ACTIONS = ("pause", "resume", "retry", "cancel", "trials", "watch")
SEARCH_KEYS = frozenset({"base", *SearchConfig.model_fields})
SEARCH_USAGE = """
  cnnlab search FILE [--watch] [--json]       start a search (FILE: its JSON body: "base" and
                                              the fields of POST /v1/searches, including
                                              "register_best_as")
  cnnlab search plan FILE                     what FILE would run and cost; creates nothing
  cnnlab search watch ID                      follow a search until it ends
  cnnlab search pause|resume|retry|cancel ID
  cnnlab search trials ID [--csv]             its trials: a table, or CSV for pandas
"""

EXIT_HELP = """exit codes: 0 the job succeeded (or the request worked), 1 the request failed,
2 bad usage or input file, 3 the job failed, 4 the job was cancelled"""


class UsageError(Exception):
    """A bad input file or argument: exit code 2."""


Handler = Callable[["Client", argparse.Namespace], int]


def server_args() -> argparse.ArgumentParser:
    """``--url``, ``--token`` and ``--token-file``: a parent parser for every client command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help=f"the server (default: $CNNLAB_URL, else {DEFAULT_URL})", default=None
    )
    common.add_argument(
        "--token",
        help="an API token; visible to other users in the process list, so prefer "
        "$CNNLAB_TOKEN or a token file (default: $CNNLAB_TOKEN)",
        default=None,
    )
    common.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the API token from this file (default: $CNNLAB_TOKEN_FILE)",
        default=None,
    )
    return common


def register(subparsers: argparse._SubParsersAction) -> None:
    common = server_args()

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
        parser.set_defaults(func=runner(handler))
        return parser

    submit = add("submit", cmd_submit, "submit a train spec (JSON file) as a job on the server")
    submit.add_argument("spec", type=Path, help="a train spec JSON file ('-' reads stdin)")
    submit.add_argument("--watch", action="store_true", help="then watch it until it ends")

    search = add(
        "search",
        cmd_search,
        "start a search from a JSON file, or plan, follow, pause, resume, retry or cancel one",
    )
    search.usage = SEARCH_USAGE
    search.add_argument(
        "words",
        nargs="+",
        metavar="FILE | ACTION ID",
        help='FILE: {"base": SPEC, "grid": {...}} or {"base": SPEC, "space": {...}, '
        '"sampler", "num_trials", "seed", "pruner", "max_concurrent_trials", "metric", "mode"}; '
        f"ACTION: {', '.join(SEARCH_ACTIONS)} (then a search ID), or plan FILE",
    )
    search.add_argument(
        "--watch", action="store_true", help="follow it live until it ends (a progress bar)"
    )
    search.add_argument("--plan", action="store_true", help="what FILE would run; create nothing")
    search.add_argument("--csv", action="store_true", help="with `trials ID`: CSV on stdout")

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


def runner(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from cnnlab.client import Client, ClientError

        try:
            with Client(args.url, args.token, token_file=args.token_file) as client:
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
    words = list(args.words)
    if len(words) == 2 and words[0] == "plan":
        return _plan(client, Path(words[1]), as_json=args.json)
    if len(words) == 2 and words[0] in SEARCH_ACTIONS:
        action, search_id = words
        if action == "trials":
            return _show_trials(client, search_id, as_csv=args.csv, as_json=args.json)
        if action == "watch":
            return _watch_search(client, search_id, as_json=args.json)
        return _act(client, action, search_id, as_json=args.json)
    if len(words) != 1:
        raise UsageError(f"usage: {SEARCH_USAGE.strip()}")
    path = Path(words[0])
    if args.plan:
        return _plan(client, path, as_json=args.json)
    search = client.search(**_search_file(path))
    if args.json and not args.watch:
        _dump(search)
        return EXIT_OK
    print(search["id"])
    total = search["num_trials"] or len(search["trials"])
    print(f"search {search['id']}: {total} trials ({search['sampler']})", file=sys.stderr)
    print(_trials_table(search), file=sys.stderr)
    if args.watch:
        return _watch_search(client, search["id"], as_json=args.json)
    return EXIT_OK


def _search_file(path: Path) -> dict[str, Any]:
    """A search body from a JSON file, as :meth:`Client.search` keyword arguments."""
    body = _read_json(path)
    if not isinstance(body, dict) or "base" not in body:
        raise UsageError(f'{path} must hold {{"base": SPEC, "grid": {{...}}}} or a "space"')
    unknown = set(body) - SEARCH_KEYS
    if unknown:
        raise UsageError(f"{path}: unknown keys {sorted(unknown)}")
    return body


def _act(client: Client, action: str, search_id: str, *, as_json: bool) -> int:
    calls = {
        "pause": client.pause_search,
        "resume": client.resume_search,
        "retry": client.retry_search,
        "cancel": client.cancel_search,
    }
    search = calls[action](search_id)
    if as_json:
        _dump(search)
        return EXIT_OK
    done = {
        "pause": "paused: no new trial starts",
        "resume": "resumed",
        "retry": "failed and cancelled trials queued again",
        "cancel": "cancel requested",
    }
    print(f"search {search['id']}: {done[action]}; status {search['status']}")
    return EXIT_OK


def _show_trials(client: Client, search_id: str, *, as_csv: bool, as_json: bool) -> int:
    if as_csv:
        sys.stdout.write(client.trials_csv(search_id))
        return EXIT_OK
    search = client.get_search(search_id)
    if as_json:
        _dump(search["trials"])
    else:
        print(_trials_table(search))
    return EXIT_OK


def _plan(client: Client, path: Path, *, as_json: bool) -> int:
    body = _search_file(path)
    plan = client.plan_search(**body)
    if as_json:
        _dump(plan)
        return EXIT_OK
    keys = list(body.get("grid") or body.get("space") or {})
    rows = [
        [
            t["index"],
            *(
                ("(from scores)" if t["params"] is None else _param(t["params"].get(k)))
                for k in keys
            ),
            t["epochs"],
            t["train_images"],
            f"{t['seconds']:.0f}",
        ]
        for t in plan["trials"]
    ]
    print(_table(["TRIAL", *keys, "EPOCHS", "IMAGES/EPOCH", "SECONDS"], rows))
    print(
        f"{plan['num_trials']} trials ({plan['sampler']}), at most {plan['max_epochs']} epochs "
        f"and {plan['max_images']} training images: about {_duration(plan['seconds'])} "
        "one trial after another"
    )
    for speed in plan["basis"]:
        print(f"speed: {speed['description']}")
    for note in plan["notes"]:
        print(f"note: {note}")
    return EXIT_OK


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def _paths(search: dict[str, Any]) -> list[str]:
    return list(search.get("grid") or search.get("space") or {})


def _trials_table(search: dict[str, Any]) -> str:
    keys = _paths(search)
    rows = [
        [
            t.get("index", i),
            t["job_id"],
            t["status"],
            *(_param(t["params"].get(k)) for k in keys),
            t.get("epoch", "-"),
            _pct(t["val_accuracy"]),
            "-" if t.get("val_loss") is None else f"{t['val_loss']:.4f}",
            "-" if not t.get("seconds") else f"{t['seconds']:.0f}",
        ]
        for i, t in enumerate(search["trials"])
    ]
    return _table(["#", "JOB", "STATUS", *keys, "EPOCH", "VAL_ACC", "VAL_LOSS", "SECONDS"], rows)


def _trial_line(trial: dict[str, Any], keys: list[str]) -> str:
    params = ", ".join(f"{k}={_param(trial['params'].get(k))}" for k in keys)
    line = f"trial {trial.get('index', '?')} {trial['status']}"
    if trial.get("epoch"):
        line += f" after epoch {trial['epoch']}"
    if trial.get("score") is not None:
        line += f": score {trial['score']:.4f}"
    return f"{line} ({params})"


def _watch_search(client: Client, search_id: str, *, as_json: bool) -> int:
    """Follow the search until it ends: a progress bar over its trials (a running trial counts
    by its share of epochs) and a line per trial change, then the trials table and the best
    trial; or, ``as_json``, one JSON line per event. Exits with the search's outcome."""
    from tqdm.auto import tqdm

    from cnnlab.status import ENDED_NAMES

    search = client.get_search(search_id)
    keys = _paths(search)
    total = search["num_trials"] or len(search["trials"]) or 1
    epochs = int(search["base"].get("epochs") or 1)
    bar = tqdm(
        total=total, desc=f"search {search_id[:8]}", unit="trial", disable=True if as_json else None
    )
    seen: dict[str, tuple[str, int]] = {}
    done: dict[str, float] = {}
    try:
        for event in client.search_events(search_id):
            if as_json:
                _print_json(event)
                continue
            if event.type == "trial":
                trial = event.data
                state = (trial["status"], int(trial.get("epoch") or 0))
                if seen.get(trial["job_id"]) != state:
                    seen[trial["job_id"]] = state
                    bar.write(_trial_line(trial, keys), file=sys.stderr)
                planned = int(trial["params"].get("epochs") or epochs)
                ended = trial["status"] in ENDED_NAMES
                done[trial["job_id"]] = 1.0 if ended else min(1.0, state[1] / max(1, planned))
                bar.update(round(sum(done.values()), 3) - bar.n)
            elif event.type == "status":
                bar.set_postfix_str(event.data["status"])
    finally:
        bar.close()
    final = client.get_search(search_id)
    if as_json:
        return OUTCOME_EXIT.get(final["status"], EXIT_ERROR)
    print(_trials_table(final))
    print(_search_summary(final))
    return OUTCOME_EXIT.get(final["status"], EXIT_ERROR)


def _search_summary(search: dict[str, Any]) -> str:
    line = f"search {search['id']} {search['status']}"
    best = next((t for t in search["trials"] if t["job_id"] == search["best_job_id"]), None)
    if best is not None:
        line += f": best trial {best.get('index')} (job {best['job_id']}), "
        line += f"{search['metric']} {best['score']:.4f}"
        if search.get("test_accuracy") is not None:
            line += f", test_accuracy {_pct(search['test_accuracy'])}"
    return line


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
