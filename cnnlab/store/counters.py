"""Version numbers per owner and name: a row per (owner, name) with a ``last_version`` counter
(registered models, datasets), taken one atomic increment at a time, so two writers at once get
two numbers and a number is never given twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cnnlab.store.tables import new_id, utcnow


def next_version(session: Session, table: Table, owner_id: int, name: str) -> tuple[str, int]:
    """Add ``table``'s row for the owner's ``name`` if it is new and take its next version
    number: the row's id and the number. The row stays locked until the transaction ends."""
    values = {
        "id": new_id(),
        "owner_id": owner_id,
        "name": name,
        "last_version": 0,
        "created_at": utcnow(),
    }
    mine = (table.c.owner_id == owner_id, table.c.name == name)
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        upsert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            upsert(table).values(values).on_conflict_do_nothing(index_elements=["owner_id", "name"])
        )
    elif session.scalar(select(table.c.id).where(*mine)) is None:
        session.execute(insert(table).values(values))
    row = session.execute(
        update(table)
        .where(*mine)
        .values(last_version=table.c.last_version + 1)
        .returning(table.c.id, table.c.last_version)
    ).one()
    return str(row[0]), int(row[1])
