"""One prediction request, whatever chooses the model (a job, a registered model's version): the
per-process cap, reading the upload, the forward pass off the event loop, the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.metrics import record_prediction
from api.prediction.uploads import read_prediction_input
from api.ratelimit import Overloaded, app_limits
from api.schemas import PredictInstances
from api.settings import ApiSettings
from cnnlab.settings import Settings

T = TypeVar("T")
# The key of the per-process cap on prediction requests served at once.
PROCESS = "process"

# The request body both predict routes take, for the OpenAPI document (the route reads the
# body itself: multipart files or JSON instances).
PREDICT_BODY: dict[str, Any] = {
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


async def serve_prediction(
    request: Request,
    limits: ApiSettings,
    settings: Settings,
    predict: Callable[[Any], tuple[T, list[dict[str, Any]]]],
) -> tuple[T, list[dict[str, Any]]]:
    """Read the request's images and run ``predict(payload)`` in the threadpool (one trip: find
    the model, decode, one forward pass); what it returns. 503 when this process already serves
    its most prediction requests."""
    release = app_limits(request.app).predictions.acquire(PROCESS)
    if release is None:
        raise Overloaded(
            f"{settings.max_concurrent_predictions} prediction requests already running in "
            "this process; try again shortly"
        )
    try:
        payload = await read_prediction_input(request, limits)
        start = time.perf_counter()
        found, results = await run_in_threadpool(predict, payload)
        record_prediction(request.app, len(results), time.perf_counter() - start)
    finally:
        release()
    return found, results
