"""Predictions from a job's best model: multipart image files or JSON pixel arrays."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api import predictions as service
from api.deps import ApiSettingsDep, SessionDep, UserDep
from api.schemas import ErrorResponse, PredictInstances, PredictionResponse
from api.uploads import read_prediction_input

router = APIRouter(tags=["predictions"])

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
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse, "description": "the job has no model yet"},
        413: {"model": ErrorResponse, "description": "over an upload limit"},
        415: {"model": ErrorResponse},
        422: {"model": ErrorResponse, "description": "an input is unusable; `item` says which"},
    },
)
async def predict(
    job_id: str, request: Request, session: SessionDep, user: UserDep, limits: ApiSettingsDep
) -> PredictionResponse:
    """Classify images with the job's best model (by validation accuracy so far)."""
    cache: service.PredictorCache = request.app.state.predictors
    # Who may ask, and whether there is a model, before the upload is read.
    predictor = await run_in_threadpool(service.model_for, session, user.id, job_id, cache)
    payload = await read_prediction_input(request, limits)
    results = await run_in_threadpool(service.predict, predictor, payload)
    return PredictionResponse.model_validate(
        {"predictions": results, "job_id": job_id, "epoch": predictor.epoch}
    )
