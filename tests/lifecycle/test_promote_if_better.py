"""``register_best_as``'s ``promote_if_better``, as a search body gives it."""

from __future__ import annotations

import pytest

from cnnlab.errors import SpecError
from cnnlab.lifecycle.winners import check_winner_name


def test_promote_if_better_is_kept_with_an_alias() -> None:
    body = {"name": "m", "alias": "production", "promote_if_better": True}
    assert check_winner_name(body) == body
    assert check_winner_name({"name": "m", "alias": "p", "promote_if_better": False}) == {
        "name": "m",
        "alias": "p",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "m", "promote_if_better": True}, "promote_if_better"),
        ({"name": "m", "alias": "p", "promote_if_better": "yes"}, "promote_if_better"),
        ({"name": "m", "alias": "p", "promote": True}, "register_best_as"),
    ],
)
def test_promote_if_better_needs_an_alias_and_a_boolean(
    body: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        check_winner_name(body)
    assert field in info.value.message
