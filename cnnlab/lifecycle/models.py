"""Registry writes that are events: moving an alias records ``model.alias_moved`` in the same
transaction. The rows are the store's (:mod:`cnnlab.store.model_versions`); the event is the
outbox's, so the store imports neither."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cnnlab.store import model_versions
from cnnlab.webhooks import outbox


def move_alias(
    session: Session, owner_id: int, name: str, alias: str, version: int
) -> tuple[int | None, int]:
    """Point ``alias`` at ``version`` (creating or moving it) and record the event when it
    moved; the version it pointed at before (None if new) and the one it points at now."""
    previous, current = model_versions.set_alias(session, owner_id, name, alias, version)
    outbox.alias_moved(session, owner_id, name, alias, current, previous)
    return previous, current
