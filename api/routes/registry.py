"""The model registry: named models, their versions and aliases; predictions by name; exports.

Every route is the caller's own: another user's model is 404 exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api import exports
from api.deps import (
    MAX_VERSION,
    AliasQuery,
    ApiSettingsDep,
    DbDep,
    SettingsDep,
    UserDep,
    VersionQuery,
)
from api.prediction import service
from api.prediction.request import PREDICT_BODY, serve_prediction
from api.registry_schemas import (
    AliasRead,
    AliasUpdate,
    ModelPredictionResponse,
    ModelVersionCreate,
    ModelVersionRead,
    RegisteredModelDetail,
    RegisteredModelList,
    RegisteredModelRead,
)
from api.schemas import ErrorResponse
from cnnlab.engine.export import ExportFormat
from cnnlab.lifecycle.models import move_alias
from cnnlab.store import model_versions
from cnnlab.store.paging import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(
    prefix="/models",
    tags=["models"],
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        429: {"model": ErrorResponse, "description": "over the token's request rate"},
    },
)

# Version numbers are 32-bit integers in the database.
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="the version number")]


def _error(text: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": text}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelVersionRead,
    responses={
        409: _error("the job has no such checkpoint yet (its first epoch has not ended)"),
        422: _error(
            "a name not of the form `[a-z0-9][a-z0-9._-]{0,62}`, or another bad field; "
            "`storage_quota`: the copy would take the caller past their storage quota"
        ),
    },
)
async def register_version(
    body: ModelVersionCreate, db: DbDep, user: UserDep, settings: SettingsDep
) -> ModelVersionRead:
    """Copy a job's checkpoint as the next version (1, 2, ...) of the caller's model `name`,
    created on first use. The copy is frozen: later epochs of the job do not change it."""
    view = await db.run(
        model_versions.register_version,
        user.id,
        body.name,
        body.job_id,
        body.checkpoint,
        body.description,
        settings=settings,
    )
    return ModelVersionRead.model_validate(view)


@router.get("", response_model=RegisteredModelList)
async def list_models(
    db: DbDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
) -> RegisteredModelList:
    """The caller's models, newest first, each with its newest version and its aliases.
    (The architectures a spec may name are at `GET /v1/architectures`.)"""
    page = await db.read(model_versions.list_models, user.id, limit=limit, cursor=cursor)
    return RegisteredModelList(
        items=[RegisteredModelRead.model_validate(m) for m in page.items], next=page.next
    )


@router.get("/{name}", response_model=RegisteredModelDetail)
async def get_model(name: str, db: DbDep, user: UserDep) -> RegisteredModelDetail:
    """The model's versions (newest first: job, search, dataset, architecture, accuracies) and
    aliases."""
    return RegisteredModelDetail.model_validate(
        await db.read(model_versions.get_model, user.id, name)
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_model(name: str, db: DbDep, user: UserDep) -> Response:
    """Delete the model: every version and alias."""
    await db.run(model_versions.delete_model, user.id, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/versions/{version}", response_model=ModelVersionRead)
async def get_version(
    name: str, version: VersionNumber, db: DbDep, user: UserDep
) -> ModelVersionRead:
    return ModelVersionRead.model_validate(
        await db.read(model_versions.get_version, user.id, name, version)
    )


@router.delete(
    "/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: _error("an alias points at this version (`aliases` names them)")},
)
async def delete_version(name: str, version: VersionNumber, db: DbDep, user: UserDep) -> Response:
    """Delete a version no alias points at. Its number is not given to another version."""
    await db.run(model_versions.delete_version, user.id, name, version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{name}/aliases/{alias}", response_model=AliasRead)
async def set_alias(
    name: str, alias: str, body: AliasUpdate, db: DbDep, user: UserDep
) -> AliasRead:
    """Point `alias` (e.g. `production`) at a version, creating or moving it. Predictions by
    name follow from the next request on."""
    previous, current = await db.run(move_alias, user.id, name, alias, body.version)
    return AliasRead(name=name, alias=alias, version=current, previous_version=previous)


@router.delete("/{name}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_alias(name: str, alias: str, db: DbDep, user: UserDep) -> Response:
    await db.run(model_versions.delete_alias, user.id, name, alias)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- predictions by name ---------------------------------------------------------------------
@router.post(
    "/{name}/predict",
    response_model=ModelPredictionResponse,
    openapi_extra=PREDICT_BODY,
    responses={
        409: _error("the model has no versions"),
        413: _error("over an upload limit (`limit_name` says which)"),
        415: _error("not multipart or JSON, or a file that is not PNG or JPEG"),
        422: _error("an input is unusable (`item` says which), or both alias and version"),
        429: _error("over the token's request rate (`Retry-After`)"),
        503: _error("this process is serving its most prediction requests at once"),
    },
)
async def predict(
    name: str,
    request: Request,
    db: DbDep,
    user: UserDep,
    limits: ApiSettingsDep,
    settings: SettingsDep,
    alias: AliasQuery = None,
    version: VersionQuery = None,
) -> ModelPredictionResponse:
    """Classify images with a version of the model, as `POST /v1/jobs/{id}/predict` does: by
    `alias` or `version`; with neither, the version alias `production` points at, else the
    newest. The answer names the version that served it."""

    def predict_with(payload: Any) -> tuple[Any, list[dict[str, Any]]]:
        return service.predict_for_model(
            db,
            user.id,
            name,
            payload,
            request.app.state.predictors,
            settings.predict_max_pixels_per_request,
            alias=alias,
            version=version,
        )

    resolved, results = await serve_prediction(request, limits, settings, predict_with)
    return ModelPredictionResponse.model_validate(
        {
            "predictions": results,
            "name": name,
            "version": resolved.version,
            "alias": resolved.alias,
            "job_id": resolved.job_id,
            "epoch": resolved.epoch,
        }
    )


# -- exports ---------------------------------------------------------------------------------
@router.get(
    "/{name}/versions/{version}/export",
    response_class=Response,
    responses={
        200: {
            "description": "the file; its metadata also in `X-Cnnlab-*` headers",
            "content": {"application/onnx": {}, "application/octet-stream": {}},
        },
        503: _error("this process is converting its most exports at once (`Retry-After`)"),
    },
)
async def export_version(
    name: str,
    version: VersionNumber,
    request: Request,
    db: DbDep,
    user: UserDep,
    format: Annotated[ExportFormat, Query(description="`onnx` or `torchscript`")],
) -> Response:
    """The version's model as a file that runs without cnnlab (onnxruntime, or plain
    `torch.jit.load`): float32 pixels 0-255, N×C×H×W in, class probabilities out. Input shape,
    normalisation and class names are in the file's metadata (ONNX `metadata_props`,
    TorchScript extra file `cnnlab.json`), in the `X-Cnnlab-*` headers, and at
    `.../export/metadata`."""
    service = exports.export_service(request.app)
    exported = await run_in_threadpool(
        exports.export_cached, db, service, user.id, name, version, format.value
    )
    return Response(
        exported.data, media_type=exported.media_type, headers=exports.headers(exported)
    )


@router.get("/{name}/versions/{version}/export/metadata", response_model=dict[str, Any])
async def export_metadata(
    name: str, version: VersionNumber, db: DbDep, user: UserDep
) -> dict[str, Any]:
    """The metadata an exported file of this version carries: input name, shape, dtype and
    range, the normalisation inside the model (mean, std), class names, output."""
    return await run_in_threadpool(exports.metadata, db, user.id, name, version)
