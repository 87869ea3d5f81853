"""Users and their API tokens. A token is shown once; only its SHA-256 hash is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from cnnlab.store.tables import TOKEN_NAME_LENGTH, Token, User, utcnow

TOKEN_PREFIX = "cnl_"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None or int(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 2w, 90m or 45s")
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_or_create_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
    return user


@dataclass(frozen=True)
class IssuedToken:
    """A new token: its public id and, this once, the secret itself."""

    id: int
    token: str
    user: str
    name: str | None
    expires_at: datetime | None


def issue_token(
    session: Session,
    user: User,
    *,
    name: str | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """A new token for ``user``; the caller shows it once, the store keeps its hash."""
    return _issue(session, user, name, expires_in).token


def _issue(
    session: Session, user: User, name: str | None, expires_in: timedelta | None
) -> IssuedToken:
    if name is not None and not 1 <= len(name) <= TOKEN_NAME_LENGTH:
        raise ValueError(f"a token name is 1 to {TOKEN_NAME_LENGTH} characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + expires_in if expires_in is not None else None
    row = Token(user_id=user.id, token_hash=hash_token(token), name=name, expires_at=expires_at)
    session.add(row)
    session.flush()
    return IssuedToken(row.id, token, user.name, name, expires_at)


def create_token(
    session: Session,
    user_name: str,
    *,
    name: str | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """Create the user if needed and return a new token for them."""
    return new_token(session, user_name, name=name, expires_in=expires_in).token


def new_token(
    session: Session,
    user_name: str,
    *,
    name: str | None = None,
    expires_in: timedelta | None = None,
) -> IssuedToken:
    """Create the user if needed and give them a new token (named, expiring if asked)."""
    return _issue(session, get_or_create_user(session, user_name), name, expires_in)


@dataclass(frozen=True)
class TokenInfo:
    """A token as `cnnlab token list` shows it: never the secret (nor its hash)."""

    id: int
    user: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def live(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def list_tokens(session: Session, user_name: str | None = None) -> list[TokenInfo]:
    """Every token (or one user's), oldest first."""
    stmt = (
        select(Token.id, User.name, Token.name, Token.created_at, Token.expires_at)
        .add_columns(Token.revoked_at)
        .join(User, Token.user_id == User.id)
        .order_by(Token.id)
    )
    if user_name is not None:
        stmt = stmt.where(User.name == user_name)
    return [TokenInfo(*row) for row in session.execute(stmt)]


# Built once: every request runs it, and building a statement costs more than running it.
_LIVE_TOKEN = (
    select(Token.token_hash, User)
    .join(User, Token.user_id == User.id)
    .where(
        Token.token_hash == bindparam("digest"),
        Token.revoked_at.is_(None),
        or_(Token.expires_at.is_(None), Token.expires_at > bindparam("now")),
    )
)


def authenticate(session: Session, token: str) -> User | None:
    """The user a live token (neither revoked nor expired) belongs to, or None."""
    digest = hash_token(token)
    row = session.execute(_LIVE_TOKEN, {"digest": digest, "now": utcnow()}).first()
    # The index lookup already matched; compare again in constant time for good measure.
    if row is None or not hmac.compare_digest(row[0], digest):
        return None
    return row[1]


def revoke_token(session: Session, token: str) -> bool:
    """Revoke a token; False if it was unknown or already revoked."""
    result = session.execute(
        update(Token)
        .where(Token.token_hash == hash_token(token), Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_token_id(session: Session, token_id: int) -> bool:
    """Revoke a token by its public id; False if it was unknown or already revoked."""
    result = session.execute(
        update(Token)
        .where(Token.id == token_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
