"""``cnnlab search``: start, plan, follow, pause, resume, retry and cancel searches, and list
their trials."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from cnnlab.search.config import SearchConfig
from cnnlab.status import ENDED_NAMES

if TYPE_CHECKING:
    from cnnlab.client import Client

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
        dump(search)
        return EXIT_OK
    print(search["id"])
    total = search["num_trials"] or len(search["trials"])
    print(f"search {search['id']}: {total} trials ({search['sampler']})", file=sys.stderr)
    print(_trialstable(search), file=sys.stderr)
    if args.watch:
        return _watch_search(client, search["id"], as_json=args.json)
    return EXIT_OK


def _search_file(path: Path) -> dict[str, Any]:
    """A search body from a JSON file, as :meth:`Client.search` keyword arguments."""
    body = read_json(path)
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
        dump(search)
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
        dump(search["trials"])
    else:
        print(_trialstable(search))
    return EXIT_OK


def _plan(client: Client, path: Path, *, as_json: bool) -> int:
    body = _search_file(path)
    plan = client.plan_search(**body)
    if as_json:
        dump(plan)
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
    print(table(["TRIAL", *keys, "EPOCHS", "IMAGES/EPOCH", "SECONDS"], rows))
    print(
        f"{plan['num_trials']} trials ({plan['sampler']}), at most {plan['max_epochs']} epochs "
        f"and {plan['max_images']} training images: about {duration(plan['seconds'])} "
        "one trial after another"
    )
    for speed in plan["basis"]:
        print(f"speed: {speed['description']}")
    for note in plan["notes"]:
        print(f"note: {note}")
    return EXIT_OK


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def _paths(search: dict[str, Any]) -> list[str]:
    return list(search.get("grid") or search.get("space") or {})


def _trialstable(search: dict[str, Any]) -> str:
    keys = _paths(search)
    rows = [
        [
            t.get("index", i),
            t["job_id"],
            t["status"],
            *(_param(t["params"].get(k)) for k in keys),
            t.get("epoch", "-"),
            pct(t["val_accuracy"]),
            "-" if t.get("val_loss") is None else f"{t['val_loss']:.4f}",
            "-" if not t.get("seconds") else f"{t['seconds']:.0f}",
        ]
        for i, t in enumerate(search["trials"])
    ]
    return table(["#", "JOB", "STATUS", *keys, "EPOCH", "VAL_ACC", "VAL_LOSS", "SECONDS"], rows)


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
                print_json(event)
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
    print(_trialstable(final))
    print(_search_summary(final))
    return OUTCOME_EXIT.get(final["status"], EXIT_ERROR)


def _search_summary(search: dict[str, Any]) -> str:
    line = f"search {search['id']} {search['status']}"
    best = next((t for t in search["trials"] if t["job_id"] == search["best_job_id"]), None)
    if best is not None:
        line += f": best trial {best.get('index')} (job {best['job_id']}), "
        line += f"{search['metric']} {best['score']:.4f}"
        if search.get("test_accuracy") is not None:
            line += f", test_accuracy {pct(search['test_accuracy'])}"
    return line
