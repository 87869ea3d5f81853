"""Predictions from a job's best model: multipart image files or JSON pixel arrays."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ApiSettingsDep, DbDep, UserDep
from api.prediction import service
from api.prediction.uploads import read_prediction_input
from api.schemas import ErrorResponse, PredictInstances, PredictionResponse

router = APIRouter(tags=["predictions"])

# The answers besides 200, and what each means where the status alone does not say.
_ERRORS: dict[int, str | None] = {
    401: None,
    404: None,
    409: "the job has no model yet",
    413: "over an upload limit",
    415: None,
    422: "an input is unusable; `item` says which",
}

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "PNG or JPEG images",
                        }
                    },
                    "required": ["files"],
                }
            },
            "application/json": {"schema": PredictInstances.model_json_schema()},
        },
    }
}


@router.post(
    "/jobs/{job_id}/predict",
    response_model=PredictionResponse,
    openapi_extra=_BODY,
    responses={
        code: {"model": ErrorResponse} | ({"description": text} if text else {})
        for code, text in _ERRORS.items()
    },
)
async def predict(
    job_id: str, request: Request, db: DbDep, user: UserDep, limits: ApiSettingsDep
) -> PredictionResponse:
    """Classify images with the job's best model (by validation accuracy so far)."""
    payload = await read_prediction_input(request, limits)
    # One trip to the threadpool: find the model (404, 409), decode, one forward pass.
    epoch, results = await run_in_threadpool(
        service.predict_for_job, db, user.id, job_id, payload, request.app.state.predictors
    )
    return PredictionResponse.model_validate(
        {"predictions": results, "job_id": job_id, "epoch": epoch}
    )
