"""Request-scoped dependencies, as ``Annotated`` aliases for the route signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import AuthCache, CurrentUser, lookup
from api.config import ApiSettings
from api.errors import Unauthorized
from cnnlab.settings import Settings
from cnnlab.store.db import abort, finish, open_session


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


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """One session per request: committed when the handler returns (then jobs are enqueued),
    rolled back if it raises. Opening a session does no I/O (it connects on first use), so only
    the ending goes to the threadpool."""
    session = open_session(settings.resolved_database_url)
    try:
        yield session
    except BaseException:
        await run_in_threadpool(abort, session)
        raise
    await run_in_threadpool(finish, session)


# scope="function": the commit happens when the handler returns, before the response is sent,
# so a client that gets 201 can read the job at once.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="a token from `cnnlab token create USER`")


async def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    token = credentials.credentials
    cache: AuthCache = request.app.state.auth_cache
    user = cache.get(token)
    if user is None:
        user = await run_in_threadpool(lookup, session, token)
        if user is None:
            raise Unauthorized("invalid or revoked token")
        cache.put(token, user)
    return user


UserDep = Annotated[CurrentUser, Depends(get_current_user)]
