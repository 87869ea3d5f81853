"""``cnnlab token create USER`` / ``cnnlab token revoke TOKEN``: API credentials."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    token = subparsers.add_parser("token", help="create or revoke API tokens")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    create = sub.add_parser("create", help="print a new token for USER (creating the user)")
    create.add_argument("user")
    create.set_defaults(func=_create)

    revoke = sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token")
    revoke.set_defaults(func=_revoke)


def _create(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate
    from cnnlab.store.db import session_scope
    from cnnlab.store.users import create_token

    name = args.user.strip()
    if not name or len(name) > 100:
        print("cnnlab: USER must be 1 to 100 characters", file=sys.stderr)
        return 2
    migrate.upgrade()
    with session_scope() as session:
        token = create_token(session, name)
    # The token alone on stdout, so `TOKEN=$(cnnlab token create alice)` works; it is not stored.
    print(token)
    print(f"token for {name!r} created; it is shown only this once", file=sys.stderr)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate
    from cnnlab.store.db import session_scope
    from cnnlab.store.users import revoke_token

    migrate.upgrade()
    with session_scope() as session:
        revoked = revoke_token(session, args.token)
    if not revoked:
        print("cnnlab: no such live token", file=sys.stderr)
        return 1
    print("token revoked", file=sys.stderr)
    return 0
