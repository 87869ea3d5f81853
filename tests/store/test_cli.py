"""``cnnlab token create|revoke`` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cnnlab.store.db import dispose_engine, session_scope
from cnnlab.store.users import authenticate


def cnnlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_token_create_prints_a_working_token_once_and_revoke_ends_it(cnnlab_home: Path) -> None:
    created = cnnlab("token", "create", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token and "\n" not in token and "shown only this once" in created.stderr
    with session_scope() as s:
        user = authenticate(s, token)
        assert user is not None and user.name == "alice"
    # Nowhere in the database files. (Close our connections first: reading a SQLite file
    # while this process has it open would drop SQLite's POSIX locks on it.)
    dispose_engine(close=True)
    for path in cnnlab_home.glob("cnnlab.db*"):
        assert token.encode() not in path.read_bytes()

    assert cnnlab("token", "revoke", token).returncode == 0
    with session_scope() as s:
        assert authenticate(s, token) is None
    again = cnnlab("token", "revoke", token)
    assert again.returncode == 1 and "no such live token" in again.stderr
