"""Token lifecycle in the store and on the command line: names, expiry, listing, revoking by id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from cnnlab.cli import main
from cnnlab.store.db import session_scope
from cnnlab.store.tables import Token, utcnow
from cnnlab.store.users import (
    authenticate,
    list_tokens,
    new_token,
    parse_duration,
    revoke_token_id,
)
from tests.utils.factories import unique_name


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration(" 45s ") == timedelta(seconds=45)
    for bad in ("", "30", "d", "0d", "-1d", "1y", "1.5d"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_a_named_expiring_token_is_listed_without_its_secret(session: Session) -> None:
    user = unique_name()
    issued = new_token(session, user, name="laptop", expires_in=timedelta(days=30))
    plain = new_token(session, user)
    session.commit()
    listed = {t.id: t for t in list_tokens(session, user)}
    assert set(listed) == {issued.id, plain.id}
    laptop = listed[issued.id]
    assert (laptop.user, laptop.name, laptop.revoked_at) == (user, "laptop", None)
    assert laptop.expires_at is not None
    assert timedelta(days=29) < laptop.expires_at - utcnow() <= timedelta(days=30)
    assert listed[plain.id].expires_at is None and listed[plain.id].name is None
    assert laptop.live() and listed[plain.id].live()
    assert issued.token not in repr(list_tokens(session))
    # Everyone's, when no user is named.
    assert {issued.id, plain.id} <= {t.id for t in list_tokens(session)}


def test_an_expired_token_is_refused_like_a_revoked_one(session: Session) -> None:
    issued = new_token(session, unique_name(), expires_in=timedelta(hours=1))
    session.commit()
    assert authenticate(session, issued.token) is not None
    past = utcnow() - timedelta(seconds=1)
    session.execute(update(Token).where(Token.id == issued.id).values(expires_at=past))
    session.commit()
    assert authenticate(session, issued.token) is None
    (info,) = [t for t in list_tokens(session) if t.id == issued.id]
    assert not info.live() and info.revoked_at is None


def test_revoke_by_id(session: Session) -> None:
    issued = new_token(session, unique_name())
    other = new_token(session, unique_name())
    session.commit()
    assert revoke_token_id(session, issued.id) is True
    assert revoke_token_id(session, issued.id) is False  # already revoked
    assert revoke_token_id(session, 10**9) is False  # unknown
    session.commit()
    assert authenticate(session, issued.token) is None
    assert authenticate(session, other.token) is not None


def test_token_commands(capsys: pytest.CaptureFixture[str]) -> None:
    # The commands use the settings' database (a SQLite file under the test's CNNLAB_HOME).
    user = unique_name()
    assert main(["token", "create", user, "--name", "ci", "--expires", "30d"]) == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("cnl_") and "shown only this once" in err and "expires" in err
    with session_scope() as s:
        (info,) = list_tokens(s, user)
        assert authenticate(s, secret) is not None
    assert f"token {info.id} " in err

    assert main(["token", "list", user]) == 0
    out, _ = capsys.readouterr()
    header, row = out.strip().splitlines()
    assert header.split() == ["ID", "USER", "NAME", "CREATED", "EXPIRES", "STATE"]
    assert row.split()[:3] == [str(info.id), user, "ci"] and row.endswith("live")
    assert secret not in out

    assert main(["token", "revoke", str(info.id)]) == 0
    assert main(["token", "revoke", str(info.id)]) == 1
    assert "no such live token" in capsys.readouterr().err
    assert main(["token", "list", user]) == 0
    assert "revoked" in capsys.readouterr().out.splitlines()[1]
    with session_scope() as s:
        assert authenticate(s, secret) is None


def test_revoking_by_the_token_itself_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "create", unique_name()]) == 0
    secret = capsys.readouterr().out.strip()
    assert main(["token", "revoke", secret]) == 0
    with session_scope() as s:
        assert authenticate(s, secret) is None


def test_a_bad_expiry_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["token", "create", "alice", "--expires", "soon"])
    assert exit_.value.code == 2 and "not a duration" in capsys.readouterr().err
