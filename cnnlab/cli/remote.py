"""The client commands: ``cnnlab submit|search|jobs|watch|predict|cancel`` against a server.

``cnnlab search`` also plans, follows, pauses, resumes, retries and cancels searches and lists
their trials (``cnnlab search trials ID --csv``).

The server comes from ``--url`` or ``CNNLAB_URL``; the token from ``CNNLAB_TOKEN``, a file
(``--token-file`` or ``CNNLAB_TOKEN_FILE``) or ``--token`` (which others can see in ``ps``).
An error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnlab.cli._remote_base import EXIT_HELP, STATUSES, Handler, runner, server_args
from cnnlab.cli.jobs import cmd_cancel, cmd_jobs, cmd_predict, cmd_submit, cmd_watch
from cnnlab.cli.search import SEARCH_ACTIONS, SEARCH_USAGE, cmd_search
from cnnlab.search.config import SearchConfig

# A search file's fields besides base and grid or space, in SearchConfig's order.
SEARCH_OPTIONS = [k for k in SearchConfig.model_fields if k not in ("grid", "space")]


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
        + ", ".join(f'"{k}"' for k in SEARCH_OPTIONS)
        + "}; "
        + f"ACTION: {', '.join(SEARCH_ACTIONS)} (then a search ID), or plan FILE",
    )
    search.add_argument(
        "--watch", action="store_true", help="follow it live until it ends (a progress bar)"
    )
    search.add_argument("--plan", action="store_true", help="what FILE would run; create nothing")
    search.add_argument("--csv", action="store_true", help="with `trials ID`: CSV on stdout")

    jobs = add("jobs", cmd_jobs, "list your jobs, newest first")
    jobs.add_argument("--status", choices=STATUSES, help="only jobs with this status")
    jobs.add_argument("--search", dest="search_id", metavar="ID", help="only this search's")
    jobs.add_argument("--tag", help="only jobs with this tag")
    jobs.add_argument("--name", help="only jobs whose name contains this")
    jobs.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    watch = add("watch", cmd_watch, "follow a job live until it ends", json_flag=False)
    watch.add_argument("job_id", metavar="ID")
    watch.add_argument("--json", action="store_true", help="one JSON line per event")

    predict = add("predict", cmd_predict, "classify image files with a job's or a model's model")
    predict.add_argument("job_id", metavar="ID", help="a job id (leave out with --model)")
    predict.add_argument("images", type=Path, nargs="*", metavar="IMAGE", help="PNG or JPEG")
    predict.add_argument(
        "--model", metavar="NAME[@ALIAS|@V]", help="a registered model instead of a job"
    )
    predict.add_argument("--top", type=int, default=3, help="classes shown per image")

    cancel = add("cancel", cmd_cancel, "cancel a job (or every trial of a search)")
    cancel.add_argument("job_id", metavar="ID", help="a job id, or a search id")
