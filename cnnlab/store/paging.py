"""Keyset paging, newest first: the cursor is the (created_at, id) of the last item returned."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from cnnlab.store.errors import InvalidCursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass
class Page(Generic[T]):
    items: list[T]
    next: str | None


def encode_cursor(created_at: datetime, ident: str) -> str:
    raw = f"{created_at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if created_at.tzinfo is None or not ident:
        raise InvalidCursor()
    return created_at, ident


def paginate(
    session: Session,
    stmt: Select[Any],
    created_at: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Any]:
    """Run ``stmt`` (selecting one entity) newest first, ``limit`` rows after ``cursor``."""
    if cursor is not None:
        after_at, after_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(created_at < after_at, and_(created_at == after_at, ident < after_id))
        )
    stmt = stmt.order_by(created_at.desc(), ident.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    items = rows[:limit]
    nxt = None
    if more and items:
        last = items[-1]
        nxt = encode_cursor(getattr(last, created_at.key), getattr(last, ident.key))
    return Page(items, nxt)
