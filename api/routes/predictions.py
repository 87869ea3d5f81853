"""Predictions from a job's best model: multipart image files or JSON pixel arrays."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.deps import ApiSettingsDep, DbDep, SettingsDep, UserDep
from api.prediction import service
from api.prediction.request import PREDICT_BODY, serve_prediction
from api.schemas import ErrorResponse, PredictionResponse

router = APIRouter(tags=["predictions"])

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


@router.post(
    "/jobs/{job_id}/predict",
    response_model=PredictionResponse,
    openapi_extra=PREDICT_BODY,
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

    def predict_with(payload: Any) -> tuple[int, list[dict[str, Any]]]:
        return service.predict_for_job(
            db,
            user.id,
            job_id,
            payload,
            request.app.state.predictors,
            settings.predict_max_pixels_per_request,
        )

    epoch, results = await serve_prediction(request, limits, settings, predict_with)
    return PredictionResponse.model_validate(
        {"predictions": results, "job_id": job_id, "epoch": epoch}
    )
