"""``cnnlab token create USER [--name N] [--expires 30d]``, ``token list [USER]``,
``token revoke ID``: API credentials, managed on the server's database."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta


def register(subparsers: argparse._SubParsersAction) -> None:
    token = subparsers.add_parser("token", help="create, list or revoke API tokens")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")

    create = sub.add_parser(
        "create",
        help="print a new token for USER (creating the user)",
        description="Print a new API token for USER (created if new). The token is shown only "
        "this once; give it to clients in $CNNLAB_TOKEN or a file ($CNNLAB_TOKEN_FILE or "
        "--token-file), not on a command line.",
    )
    create.add_argument("user")
    create.add_argument("--name", help="what the token is for (shown by `token list`)")
    create.add_argument(
        "--expires",
        metavar="DURATION",
        type=_duration,
        help="refuse the token after this long: 30d, 12h, 2w, 90m (default: never)",
    )
    create.set_defaults(func=_create)

    listing = sub.add_parser(
        "list", help="list tokens (never their secrets): id, user, name, dates, state"
    )
    listing.add_argument("user", nargs="?", help="only this user's tokens")
    listing.set_defaults(func=_list)

    revoke = sub.add_parser("revoke", help="revoke a token by its id (from `token list`)")
    revoke.add_argument("token", metavar="ID", help="the token's id (the token itself works too)")
    revoke.set_defaults(func=_revoke)


def _duration(text: str) -> timedelta:
    from cnnlab.store.users import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _create(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate
    from cnnlab.store.db import session_scope
    from cnnlab.store.users import new_token

    name = args.user.strip()
    if not name or len(name) > 100:
        print("cnnlab: USER must be 1 to 100 characters", file=sys.stderr)
        return 2
    label = args.name.strip() if args.name is not None else None
    if label is not None and not 1 <= len(label) <= 100:
        print("cnnlab: --name must be 1 to 100 characters", file=sys.stderr)
        return 2
    migrate.upgrade()
    with session_scope() as session:
        issued = new_token(session, name, name=label, expires_in=args.expires)
    # The token alone on stdout, so `TOKEN=$(cnnlab token create alice)` works; it is not stored.
    print(issued.token)
    expiry = f", expires {_when(issued.expires_at)}" if issued.expires_at else ""
    print(
        f"token {issued.id} for {name!r} created{expiry}; it is shown only this once",
        file=sys.stderr,
    )
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"


def _list(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate
    from cnnlab.store.db import session_scope
    from cnnlab.store.tables import utcnow
    from cnnlab.store.users import list_tokens

    migrate.upgrade()
    with session_scope() as session:
        tokens = list_tokens(session, args.user)
    now = utcnow()
    rows = [("ID", "USER", "NAME", "CREATED", "EXPIRES", "STATE")]
    for t in tokens:
        if t.revoked_at is not None:
            state = f"revoked {_when(t.revoked_at)}"
        elif not t.live(now):
            state = "expired"
        else:
            state = "live"
        rows.append(
            (str(t.id), t.user, t.name or "-", _when(t.created_at), _when(t.expires_at), state)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from cnnlab.store import migrate
    from cnnlab.store.db import session_scope
    from cnnlab.store.users import revoke_token, revoke_token_id

    migrate.upgrade()
    with session_scope() as session:
        if args.token.isdigit():
            revoked = revoke_token_id(session, int(args.token))
        else:  # the token itself, as before ids were shown
            revoked = revoke_token(session, args.token)
    if not revoked:
        print("cnnlab: no such live token", file=sys.stderr)
        return 1
    print("token revoked", file=sys.stderr)
    return 0
