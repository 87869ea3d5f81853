from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cnnlab.store.tables import Token
from cnnlab.store.users import (
    authenticate,
    create_token,
    get_or_create_user,
    hash_token,
    revoke_token,
)
from tests.utils.factories import unique_name


def test_token_authenticates_its_user_and_only_its_hash_is_stored(session: Session) -> None:
    name = unique_name()
    token = create_token(session, name)
    session.commit()
    user = authenticate(session, token)
    assert user is not None and user.name == name
    stored = session.scalars(select(Token.token_hash).where(Token.user_id == user.id)).all()
    assert stored == [hash_token(token)]
    assert token not in stored and len(token) >= 40


def test_bad_and_revoked_tokens_do_not_authenticate(session: Session) -> None:
    token = create_token(session, unique_name())
    other = create_token(session, unique_name())
    session.commit()
    assert authenticate(session, token + "x") is None
    assert authenticate(session, "") is None
    assert revoke_token(session, token) is True
    assert revoke_token(session, token) is False  # already revoked
    session.commit()
    assert authenticate(session, token) is None
    assert authenticate(session, other) is not None


def test_a_second_token_for_the_same_user(session: Session) -> None:
    name = unique_name()
    first, second = create_token(session, name), create_token(session, name)
    session.commit()
    assert first != second
    user1, user2 = authenticate(session, first), authenticate(session, second)
    assert user1 is not None and user2 is not None and user1.id == user2.id
    assert get_or_create_user(session, name).id == user1.id
