"""A search's ``register_best_as``: its best trial becomes a version of a registered model (and,
if asked, the target of an alias) in the transaction in which the search ends."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.errors import CnnlabError, SpecError
from cnnlab.lifecycle.models import move_alias
from cnnlab.store import model_names
from cnnlab.store import model_versions as registry
from cnnlab.store.tables import Search

log = logging.getLogger(__name__)


def check_winner_name(raw: Any) -> dict[str, Any] | None:
    """``{"name": model, "alias": alias}`` (alias optional), checked at creation."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"name", "alias"} or "name" not in raw:
        raise SpecError("register_best_as", 'must be {"name": MODEL, "alias": ALIAS (optional)}')
    name = raw["name"]
    alias = raw.get("alias")
    if not isinstance(name, str):
        raise SpecError("register_best_as.name", "must be a string")
    model_names.check_name(name, "register_best_as.name")
    if alias is not None:
        if not isinstance(alias, str):
            raise SpecError("register_best_as.alias", "must be a string")
        model_names.check_alias(alias, "register_best_as.alias")
    return {"name": name, "alias": alias}


def register_winner(session: Session, search: Search, job_id: str) -> None:
    target = search.register_best_as or {}
    try:
        with session.begin_nested():  # a failed registration leaves no half of itself behind
            version = registry.register_version(
                session,
                search.owner_id,
                target["name"],
                job_id,
                description=f"best trial of search {search.id} by {search.metric}",
            )
            if target.get("alias"):
                move_alias(
                    session, search.owner_id, target["name"], target["alias"], version.version
                )
    except CnnlabError:
        # The search still ends; its best trial can be registered by hand (POST /v1/models).
        log.warning("search %s: its best trial could not be registered", search.id, exc_info=True)
