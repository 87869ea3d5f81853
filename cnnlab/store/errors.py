"""The store's domain errors; like the core's, each carries the HTTP status it maps to."""

from __future__ import annotations

from cnnlab.errors import CnnlabError


class NotFound(CnnlabError):
    """Missing, or owned by someone else: the two are indistinguishable on purpose."""

    code = "not_found"
    status_code = 404

    def __init__(self, resource: str, ident: str) -> None:
        super().__init__(f"{resource} {ident!r} not found", resource=resource, id=ident)


class Conflict(CnnlabError):
    """The resource exists but is not in a state that allows the request (e.g. no model yet)."""

    code = "conflict"
    status_code = 409


class InvalidCursor(CnnlabError):
    code = "invalid_cursor"
    status_code = 422

    def __init__(self) -> None:
        super().__init__("cursor is not one this server returned", field="cursor")


class TooManyActiveJobs(CnnlabError):
    """The caller already has as many queued and running jobs as one user may."""

    code = "too_many_active_jobs"
    status_code = 429

    def __init__(self, active: int, requested: int, limit: int) -> None:
        super().__init__(
            f"you have {active} queued or running jobs and asked for {requested} more; at most "
            f"{limit} may be queued or running at once: wait for some to end or cancel them",
            active=active,
            requested=requested,
            limit=limit,
        )
