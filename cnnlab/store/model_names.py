"""What the model registry takes as a model name and an alias (422 ``invalid_request`` naming
the field otherwise)."""

from __future__ import annotations

import re
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.store.tables import MODEL_ALIAS_PATTERN, MODEL_NAME_PATTERN

_NAME = re.compile(MODEL_NAME_PATTERN)
_ALIAS = re.compile(MODEL_ALIAS_PATTERN)


class InvalidInput(CnnlabError):
    """A name, alias or choice the registry does not take (422; ``field`` says which)."""

    code = "invalid_request"
    status_code = 422

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **details)


def check_name(name: str, field: str = "name") -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(field, f"{name!r} is not a model name", pattern=MODEL_NAME_PATTERN)
    return name


def check_alias(alias: str, field: str = "alias") -> str:
    if not _ALIAS.fullmatch(alias):
        raise InvalidInput(
            field,
            f"{alias!r} is not an alias (it starts with a letter)",
            pattern=MODEL_ALIAS_PATTERN,
        )
    return alias
