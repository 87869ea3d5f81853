"""``cnnlab db upgrade`` (and friends): apply the store's Alembic migrations."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="manage the job database")
    sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    up = sub.add_parser("upgrade", help="apply migrations (the default target is the newest)")
    up.add_argument("revision", nargs="?", default="head")
    up.add_argument("--url", help="database URL (default: CNNLAB_DATABASE_URL or the SQLite file)")
    up.set_defaults(func=_upgrade)

    down = sub.add_parser("downgrade", help="revert migrations down to REVISION")
    down.add_argument("revision")
    down.add_argument("--url")
    down.set_defaults(func=_downgrade)

    cur = sub.add_parser("current", help="print the revision the database is at")
    cur.add_argument("--url")
    cur.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate

    migrate.upgrade(args.url, args.revision)
    print(f"database at {migrate.current(args.url)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate

    migrate.downgrade(args.url, args.revision)
    print(f"database at {migrate.current(args.url)}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate

    print(migrate.current(args.url) or "empty (no migrations applied)")
    return 0
