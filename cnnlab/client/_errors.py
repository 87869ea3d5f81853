"""The client's exceptions, and the one place an error answer of the API becomes one."""

from __future__ import annotations

from typing import Any

import httpx


class ClientError(Exception):
    """The service could not be used: no token, unreachable, or an error answer."""


class ApiError(ClientError):
    """An error answer: ``status`` (HTTP), ``type`` and ``message`` from the API's ``detail``."""

    def __init__(self, status: int, type: str, message: str, detail: dict[str, Any]) -> None:
        super().__init__(f"{message} (HTTP {status}, {type})")
        self.status = status
        self.type = type
        self.message = message
        self.detail = detail


def error_from(response: httpx.Response) -> ApiError:
    """The :class:`ApiError` of an error answer (its body read), whatever shape it has."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, dict):
        text = response.text.strip()[:200] or response.reason_phrase
        detail = {"type": "http_error", "message": text}
    return ApiError(
        response.status_code,
        str(detail.get("type", "http_error")),
        str(detail.get("message", response.reason_phrase)),
        detail,
    )
