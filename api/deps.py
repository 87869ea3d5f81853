"""Request-scoped dependencies, as ``Annotated`` aliases for the route signatures."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import STATE_KEY, CurrentUser, authenticate_request
from api.settings import ApiSettings
from cnnlab.settings import Settings
from cnnlab.store.db import read_scope, session_scope

P = ParamSpec("P")
T = TypeVar("T")


# Dependencies that do no I/O are async: FastAPI runs sync ones in its threadpool, and each
# trip there costs more than the work itself.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_api_settings(request: Request) -> ApiSettings:
    api_settings: ApiSettings = request.app.state.api_settings
    return api_settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]


class Db:
    """The store, for handlers. ``await db.run(fn, *args)`` calls ``fn(session, *args)`` in a
    short transaction of its own and commits it (then enqueues what the call registered with
    ``after_commit``) before it returns, so a client that gets 201 can read the job at once.
    ``await db.read(fn, *args)`` does the same for reads, each statement on its own (on
    PostgreSQL no BEGIN and COMMIT round trips; see ``cnnlab.store.db.read_scope``). Both run in
    the threadpool; a handler's database work is one call, as each trip there costs more than a
    typical query, and no session outlives its call."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await run_in_threadpool(partial(self.call, fn, *args, **kwargs))

    async def read(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await run_in_threadpool(partial(self.call_read, fn, *args, **kwargs))

    def call(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with session_scope(self.url) as session:
            return fn(session, *args, **kwargs)

    def call_read(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        with read_scope(self.url) as session:
            return fn(session, *args, **kwargs)


async def get_db(settings: SettingsDep) -> Db:
    return Db(settings.resolved_database_url)


DbDep = Annotated[Db, Depends(get_db)]

_bearer = HTTPBearer(auto_error=False, description="a token from `cnnlab token create USER`")


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: the proxy's, unless uvicorn
    is told to trust ``X-Forwarded-For`` with ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


async def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    """The token's user, as :class:`api.auth.TokenGate` found it before the body was read (or,
    in an app without the gate, checked here): 401 for a missing or bad token, 429 past the
    request limits (see :mod:`api.auth`)."""
    user: CurrentUser | None = request.scope.get("state", {}).get(STATE_KEY)
    if user is not None:
        return user
    authorization = None if credentials is None else f"Bearer {credentials.credentials}"
    return await authenticate_request(request.app, authorization, client_address(request))


UserDep = Annotated[CurrentUser, Depends(get_current_user)]

MAX_VERSION = 2**31 - 1  # a model version number fits the database's integer
# Which version of a model a route uses: by alias or by number (neither: the version alias
# `production` points at, else the newest).
AliasQuery = Annotated[str | None, Query(description="the alias to use")]
VersionQuery = Annotated[int | None, Query(ge=1, le=MAX_VERSION, description="the version to use")]
