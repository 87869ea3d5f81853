"""The dashboard holds no copy of a server rule: no alias it treats as special, no list of
statuses or samplers (the server's schema and answers say those). Read from the files served."""

from __future__ import annotations

import re
from pathlib import Path

from cnnlab.search.trials import SAMPLERS
from cnnlab.status import DatasetStatus, JobStatus, SearchStatus

STATIC = Path(__file__).parents[2] / "api" / "dashboard" / "static"
# A quoted string in JavaScript (no escapes needed for the words looked for).
QUOTED = re.compile(r"""(["'`])([^"'`\n]*)\1""")
# A bracketed list on one line, `[...]`, with no brackets inside.
LIST = re.compile(r"\[([^\[\]\n]*)\]")
SERVER_WORDS = {s.value for s in (*JobStatus, *SearchStatus, *DatasetStatus)} | set(SAMPLERS)


def _code(path: Path) -> str:
    """The file's text without its comments (whole-line and trailing `//` ones)."""
    lines = path.read_text().splitlines()
    return "\n".join(re.sub(r"(^|\s)//\s.*$", "", line) for line in lines)


def test_the_static_files_are_found() -> None:
    assert len(list(STATIC.glob("*.js"))) > 10


def test_no_alias_is_special_in_the_dashboard() -> None:
    found = [
        f"{p.name}: {m.group(0)}"
        for p in sorted(STATIC.glob("*.js"))
        for m in QUOTED.finditer(_code(p))
        if m.group(2) == "production"
    ]
    assert not found, f"the dashboard names an alias the server decides about: {found}"


def test_no_list_of_statuses_or_samplers_in_the_dashboard() -> None:
    found = []
    for p in sorted(STATIC.glob("*.js")):
        for m in LIST.finditer(_code(p)):
            words = {q.group(2) for q in QUOTED.finditer(m.group(1))} & SERVER_WORDS
            if len(words) >= 2:
                found.append(f"{p.name}: {m.group(0)}")
    assert not found, f"the dashboard copies the server's statuses or samplers: {found}"
