"""The core's rooms import cnnlab modules at the top of a module, and the front ends every
module, except the few that :mod:`cnnlab.lazy` names as slow to import; and ``lint-imports``
holds the layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from cnnlab.lazy import DEFERRED, FRONT_ENDS

REPO = Path(__file__).resolve().parents[2]
ROOMS = ("lifecycle", "search", "spec", "store", "webhooks", "datasets", "architectures", "engine")
FRONT_ENDS_DIRS = ("cnnlab/cli", "cnnlab/client", "api", "worker", "bench")


def _deferred_imports(path: Path, prefix: str = "cnnlab") -> list[tuple[int, str]]:
    """(line, module) of every import of a module named ``prefix``… inside a function of
    ``path`` (TYPE_CHECKING blocks at module level are not inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith(prefix):
                    found.add((sub.lineno, str(sub.module)))
                elif isinstance(sub, ast.Import):
                    found |= {(sub.lineno, a.name) for a in sub.names if a.name.startswith(prefix)}
    return sorted(found)


def test_the_core_defers_only_the_slow_imports() -> None:
    stray = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for room in ROOMS
        for path in sorted((REPO / "cnnlab" / room).rglob("*.py"))
        for line, module in _deferred_imports(path)
        if module not in DEFERRED
    ]
    assert stray == []


def test_the_front_ends_defer_only_the_slow_imports() -> None:
    stray = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for folder in FRONT_ENDS_DIRS
        for path in sorted((REPO / folder).rglob("*.py"))
        for line, module in _deferred_imports(path, prefix="")
        if module not in DEFERRED and module not in FRONT_ENDS
    ]
    assert stray == []


def test_a_stray_deferred_import_is_found(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from cnnlab.store import db\n    return db\n")
    assert _deferred_imports(module) == [(2, "cnnlab.store")]
    module.write_text("def f():\n    def g():\n        import json\n        return json\n")
    assert _deferred_imports(module, prefix="") == [(3, "json")]


def test_the_layer_contract_holds() -> None:
    # In a process of its own: import-linter's command configures logging (it would silence the
    # loggers of every test after it in this process).
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
