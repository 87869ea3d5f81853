"""A job's name, tags and notes: the owner's words for it, to find and compare runs by."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from cnnlab.errors import CnnlabError
from cnnlab.store.jobs import get_job
from cnnlab.store.tables import (
    JOB_MAX_TAGS,
    JOB_NAME_LENGTH,
    JOB_NOTES_LENGTH,
    JOB_TAG_PATTERN,
    Job,
    JobTag,
)

_TAG = re.compile(JOB_TAG_PATTERN)
LABEL_FIELDS = ("name", "tags", "notes")


class InvalidLabel(CnnlabError):
    code = "invalid_request"
    status_code = 422

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **details)


def check_tags(tags: list[str]) -> list[str]:
    """The tags, deduplicated and sorted; 422 naming a bad one."""
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise InvalidLabel("tags", f"{tag!r} is not a tag", pattern=JOB_TAG_PATTERN)
    unique = sorted(set(tags))
    if len(unique) > JOB_MAX_TAGS:
        raise InvalidLabel("tags", f"{len(unique)} tags; at most {JOB_MAX_TAGS}")
    return unique


def _check_text(field: str, value: str | None, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise InvalidLabel(field, f"{len(value)} characters; at most {limit}")
    return value


def apply_labels(session: Session, job: Job, **fields: Any) -> Job:
    """Set the given ones of ``name``, ``tags`` and ``notes`` (absent: unchanged; a null name
    or notes clears it)."""
    if "name" in fields:
        job.name = _check_text("name", fields["name"], JOB_NAME_LENGTH)
    if "notes" in fields:
        job.notes = _check_text("notes", fields["notes"], JOB_NOTES_LENGTH)
    if "tags" in fields:
        wanted = check_tags(list(fields["tags"] or []))
        job.tag_rows = [JobTag(tag=t) for t in wanted]
    session.flush()
    return job


def update_labels(session: Session, owner_id: int, job_id: str, **fields: Any) -> Job:
    """The owner's job with its labels changed (404 for another's)."""
    unknown = set(fields) - set(LABEL_FIELDS)
    if unknown:
        raise InvalidLabel(sorted(unknown)[0], f"not editable; one of {list(LABEL_FIELDS)}")
    return apply_labels(session, get_job(session, owner_id, job_id), **fields)
