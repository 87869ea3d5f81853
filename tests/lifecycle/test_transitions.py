"""The transition table: every move it does not list is refused, docs/LIFECYCLE.md lists the same
moves, and no code outside cnnlab/lifecycle writes a status (nor does cnnlab import the service)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cnnlab.lifecycle import TRANSITIONS, move
from cnnlab.status import JobStatus
from tests.utils.factories import make_job, make_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("start", list(JobStatus))
@pytest.mark.parametrize("to", list(TRANSITIONS))
def test_a_move_happens_only_from_the_statuses_the_table_allows(
    session: Session, start: JobStatus, to: JobStatus
) -> None:
    owner, _ = make_user(session)
    job = make_job(session, owner, start)
    moved = move(session, job.id, to)
    session.commit()
    session.refresh(job)
    assert moved is (start in TRANSITIONS[to])
    assert job.status is (to if moved else start)


def test_an_ended_job_is_only_ever_queued_again_and_never_one_with_a_model() -> None:
    for to, sources in TRANSITIONS.items():
        left = {s for s in sources if s.ended}
        assert not left or to is JobStatus.queued, to
        assert not left & {JobStatus.succeeded, JobStatus.pruned}, to


def test_the_documented_table_is_the_code_s() -> None:
    doc = (ROOT / "docs/LIFECYCLE.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (`\w+`|\(new\)) \|", doc, flags=re.MULTILINE)
    documented: dict[str, set[str]] = {}
    for to, source in rows:
        if source != "(new)":
            documented.setdefault(to, set()).add(source.strip("`"))
    assert documented == {str(to): {str(s) for s in src} for to, src in TRANSITIONS.items()}


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_core_imports_neither_the_api_nor_the_worker() -> None:
    for path in _python_files("cnnlab"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"api", "worker"}, f"{path}: imports {name}"


def _writes_status(node: ast.AST) -> bool:
    """``x.status = …``, or ``status=…`` passed to ``.values(...)``."""
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Attribute) and t.attr == "status" for t in node.targets)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "values" and any(k.arg == "status" for k in node.keywords)
    return False


def test_only_the_lifecycle_writes_a_status() -> None:
    # Among the modules that use the tables (a client's or a progress bar's own ``status``
    # attribute is not a job's).
    writers = {
        path.relative_to(ROOT).as_posix()
        for folder in ("cnnlab", "api", "worker")
        for path in _python_files(folder)
        if "cnnlab.store" in (text := path.read_text())
        and any(_writes_status(n) for n in ast.walk(ast.parse(text)))
    }
    assert writers == {"cnnlab/lifecycle/transitions.py", "cnnlab/lifecycle/datasets.py"}
