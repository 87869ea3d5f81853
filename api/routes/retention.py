"""Retention: ``DELETE /v1/jobs/{id}`` and ``DELETE /v1/searches/{id}`` (ended ones only)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import DbDep, UserDep
from api.schemas import ErrorResponse
from cnnlab.store import retention

router = APIRouter(
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse, "description": "still queued or running"},
    },
)


@router.delete("/jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["jobs"])
async def delete_job(job_id: str, db: DbDep, user: UserDep) -> Response:
    """Delete an ended job with its metrics and checkpoints, freeing their storage. A queued or
    running job is 409 (cancel it first), and so is a search's trial (delete its search).
    Model versions registered from the job keep their own copy of the weights."""
    await db.run(retention.delete_job, user.id, job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/searches/{search_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["searches"])
async def delete_search(search_id: str, db: DbDep, user: UserDep) -> Response:
    """Delete an ended search with all its trials (their metrics and checkpoints). A search
    still running or paused is 409."""
    await db.run(retention.delete_search, user.id, search_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
