"""Predictions from a job's best model: multipart image files or JSON pixel arrays."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import ApiSettingsDep, DbDep, SettingsDep, UserDep
from api.metrics import record_prediction
from api.prediction import service
from api.prediction.uploads import read_prediction_input
from api.ratelimit import Overloaded, app_limits
from api.schemas import ErrorResponse, PredictInstances, PredictionResponse

router = APIRouter(tags=["predictions"])

# The key of the per-process cap on prediction requests served at once.
PROCESS = "process"

# The answers besides 200, and what each means where the status alone does not say.
_ERRORS: dict[int, str | None] = {
    401: None,
    404: None,
    409: "the job has no model yet",
    413: "over an upload limit (`limit_name`: request, parts, images, file, pixels)",
    415: "not multipart or JSON, or a file that is not PNG or JPEG (`item` says which)",
    422: "an input is unusable; `item` says which",
    429: "over the token's request rate (`Retry-After`)",
    503: "this process is serving its most prediction requests at once (`Retry-After`)",
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
    job_id: str,
    request: Request,
    db: DbDep,
    user: UserDep,
    limits: ApiSettingsDep,
    settings: SettingsDep,
) -> PredictionResponse:
    """Classify images with the job's best model (by validation accuracy so far)."""
    release = app_limits(request.app).predictions.acquire(PROCESS)
    if release is None:
        raise Overloaded(
            f"{settings.max_concurrent_predictions} prediction requests already running in "
            "this process; try again shortly"
        )
    try:
        payload = await read_prediction_input(request, limits)
        start = time.perf_counter()
        # One trip to the threadpool: find the model (404, 409), decode, one forward pass.
        epoch, results = await run_in_threadpool(
            service.predict_for_job,
            db,
            user.id,
            job_id,
            payload,
            request.app.state.predictors,
            settings.predict_max_pixels_per_request,
        )
        record_prediction(request.app, len(results), time.perf_counter() - start)
    finally:
        release()
    return PredictionResponse.model_validate(
        {"predictions": results, "job_id": job_id, "epoch": epoch}
    )
