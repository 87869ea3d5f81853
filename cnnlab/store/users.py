"""Users and their API tokens. A token is shown once; only its SHA-256 hash is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from cnnlab.store.models import Token, User, utcnow

TOKEN_PREFIX = "cnl_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_or_create_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
    return user


def issue_token(session: Session, user: User) -> str:
    """A new token for ``user``; the caller shows it once, the store keeps its hash."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, token_hash=hash_token(token)))
    session.flush()
    return token


def create_token(session: Session, user_name: str) -> str:
    """Create the user if needed and return a new token for them."""
    return issue_token(session, get_or_create_user(session, user_name))


# Built once: every request runs it, and building a statement costs more than running it.
_LIVE_TOKEN = (
    select(Token.token_hash, User)
    .join(User, Token.user_id == User.id)
    .where(Token.token_hash == bindparam("digest"), Token.revoked_at.is_(None))
)


def authenticate(session: Session, token: str) -> User | None:
    """The user a live token belongs to, or None."""
    digest = hash_token(token)
    row = session.execute(_LIVE_TOKEN, {"digest": digest}).first()
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
