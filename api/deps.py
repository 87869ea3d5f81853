"""Request-scoped dependencies, as ``Annotated`` aliases for the route signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.config import ApiSettings
from api.errors import Unauthorized
from cnnlab.settings import Settings
from cnnlab.store.db import session_scope
from cnnlab.store.models import User
from cnnlab.store.users import authenticate


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_api_settings(request: Request) -> ApiSettings:
    api_settings: ApiSettings = request.app.state.api_settings
    return api_settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """One session per request: committed when the handler returns (then jobs are enqueued),
    rolled back if it raises."""
    with session_scope(settings.resolved_database_url) as session:
        yield session


# scope="function": the commit happens when the handler returns, before the response is sent,
# so a client that gets 201 can read the job at once.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="a token from `cnnlab token create USER`")


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    user = authenticate(session, credentials.credentials)
    if user is None:
        raise Unauthorized("invalid or revoked token")
    return user


UserDep = Annotated[User, Depends(get_current_user)]
