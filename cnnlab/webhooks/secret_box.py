"""Webhook signing secrets at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``) under a key from the settings, so a copy of the database alone does not let
anyone forge a webhook request.

The key is ``CNNLAB_SECRET_KEY`` (any long random string; a Fernet key is derived from it with
SHA-256). Unset, it is read from ``$CNNLAB_HOME/secret.key``, which the first process to need it
creates (mode 0600): enough for the embedded deployment, where every process shares the home.
Processes on several hosts must all be given the same ``CNNLAB_SECRET_KEY``.

Secrets stored before encryption (they start with ``whsec_``) are read as they are; rotating one
stores the new secret encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from cnnlab.errors import CnnlabError
from cnnlab.settings import Settings, get_settings

KEY_FILE = "secret.key"
PLAIN_PREFIX = "whsec_"


class SecretUnreadable(CnnlabError):
    """A stored secret the configured key does not decrypt (the key changed)."""

    code = "secret_unreadable"
    status_code = 500


def _fernet_key(material: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


def key_material(settings: Settings) -> str:
    """``CNNLAB_SECRET_KEY``, or the home's key file (created on first use)."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value()
    path = settings.home / KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    material = secrets.token_urlsafe(32)
    try:  # exclusive: of two processes creating it at once, both end up with the winner's key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(material + "\n")
    return material


@lru_cache(maxsize=8)
def _fernet(material: str) -> Fernet:
    return Fernet(_fernet_key(material))


def _box(settings: Settings | None) -> Fernet:
    return _fernet(key_material(settings or get_settings()))


def seal(secret: str, settings: Settings | None = None) -> str:
    """What to store for ``secret``."""
    return _box(settings).encrypt(secret.encode()).decode("ascii")


def unseal(stored: str, settings: Settings | None = None) -> str:
    """The secret a stored value holds (one stored before encryption: itself)."""
    if stored.startswith(PLAIN_PREFIX):
        return stored
    try:
        return _box(settings).decrypt(stored.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "a webhook secret cannot be decrypted with the configured CNNLAB_SECRET_KEY"
        ) from None
