"""A search's ``register_best_as``: its best trial becomes a version of a registered model (and,
if asked, the target of an alias) in the transaction in which the search ends."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.errors import CnnlabError, SpecError
from cnnlab.lifecycle.models import move_alias
from cnnlab.lifecycle.scoring_specs import add_scoring_job, comparison_spec
from cnnlab.store import model_names
from cnnlab.store import model_versions as registry
from cnnlab.store.tables import Search

log = logging.getLogger(__name__)


def check_winner_name(raw: Any) -> dict[str, Any] | None:
    """``{"name": model, "alias": alias}`` (alias optional), checked at creation."""
    if raw is None:
        return None
    keys = {"name", "alias", "promote_if_better"}
    if not isinstance(raw, dict) or set(raw) - keys or "name" not in raw:
        raise SpecError(
            "register_best_as",
            'must be {"name": MODEL, "alias": ALIAS (optional), "promote_if_better": BOOL '
            "(optional)}",
        )
    name = raw["name"]
    alias = raw.get("alias")
    promote = raw.get("promote_if_better", False)
    if not isinstance(promote, bool):
        raise SpecError("register_best_as.promote_if_better", "must be true or false")
    if promote and alias is None:
        raise SpecError("register_best_as.promote_if_better", "needs the alias to move")
    if not isinstance(name, str):
        raise SpecError("register_best_as.name", "must be a string")
    model_names.check_name(name, "register_best_as.name")
    if alias is not None:
        if not isinstance(alias, str):
            raise SpecError("register_best_as.alias", "must be a string")
        model_names.check_alias(alias, "register_best_as.alias")
    checked: dict[str, Any] = {"name": name, "alias": alias}
    if promote:
        checked["promote_if_better"] = True
    return checked


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
            alias = target.get("alias")
            if (
                alias
                and target.get("promote_if_better")
                and _alias_exists(session, search.owner_id, target["name"], alias)
            ):
                _challenge(session, search, alias, version.version)
            elif alias:
                move_alias(session, search.owner_id, target["name"], alias, version.version)
    except CnnlabError:
        # The search still ends; its best trial can be registered by hand (POST /v1/models).
        log.warning("search %s: its best trial could not be registered", search.id, exc_info=True)


def _alias_exists(session: Session, owner_id: int, name: str, alias: str) -> bool:
    try:
        registry.resolve(session, owner_id, name, alias=alias)
    except CnnlabError:
        return False
    return True


def _challenge(session: Session, search: Search, alias: str, version: int) -> None:
    """Compare the new version with the one ``alias`` points at on the search's dataset; the
    worker moves the alias only if the new one is better by McNemar's test. The comparison is
    queued without a message (the search ends inside another job's transaction): the sweeper
    sends it (``CNNLAB_QUEUED_GRACE_SECONDS``)."""
    target = search.register_best_as or {}
    try:
        with session.begin_nested():
            model_id, spec = comparison_spec(
                session,
                search.owner_id,
                target["name"],
                {"alias": alias},
                {"version": version},
                str(search.base.get("dataset")),
                promote=alias,
            )
            add_scoring_job(session, search.owner_id, "compare", model_id, spec, None)
    except CnnlabError:
        # The new version stays registered; the alias stays where it was.
        log.warning("search %s: its winner could not be compared", search.id, exc_info=True)
