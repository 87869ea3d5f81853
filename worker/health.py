"""``python -m worker.health``: exit 0 when a worker on this host answers a ping through the
broker (a container health check). Needs a broker with broadcast (Redis); the embedded broker
has none, so there the check only proves the broker is reachable."""

from __future__ import annotations

import socket
import sys

from worker.app import get_celery


def worker_answers(timeout: float = 5.0) -> bool:
    app = get_celery()
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        if not conn.transport.implements.exchange_type & {"fanout"}:
            return True
    replies = app.control.ping(timeout=timeout)
    host = socket.gethostname()
    return any(node.endswith(f"@{host}") for reply in replies for node in reply)


def main() -> int:
    try:
        return 0 if worker_answers() else 1
    except Exception as exc:
        print(f"worker health: {exc}", file=sys.stderr)  # noqa: T201
        return 1


if __name__ == "__main__":
    sys.exit(main())
