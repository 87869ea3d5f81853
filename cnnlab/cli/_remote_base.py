"""What every client command shares: the server and token options, exit codes, running a
handler with a client (one line on stderr for an error, never a traceback), reading JSON input,
and printing JSON and tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def read_json(path: Path) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None


def dump(value: Any) -> None:
    print(json.dumps(value, indent=2))


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def print_json(event: Event) -> None:
    print(json.dumps({"event": event.type, **event.data}), flush=True)
