"""Which file is which class (and split), from an archive's paths: one folder per class; top-level
``train/`` and ``test/`` (optionally ``val/``) each holding the class folders; or a flat folder
with ``labels.csv`` (``file,label``). Each may sit under one top-level folder, as zipping a
folder makes."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field

from cnnlab.errors import InvalidDataset

LABELS_CSV = "labels.csv"
TRAIN, VAL, TEST = 0, 1, 2
SPLIT_FOLDERS = {"train": TRAIN, "val": VAL, "valid": VAL, "validation": VAL, "test": TEST}
# Written by file managers and archivers, never part of a dataset: left out without a word.
_JUNK_NAMES = {"__macosx", "thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Item:
    path: str  # the archive member
    label: str
    split: int  # TRAIN, VAL or TEST; TRAIN also for images a hold-out may later move to TEST


@dataclass
class Plan:
    kind: str  # "class_folders", "split_folders" or "labels_csv"
    items: list[Item] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    has_test: bool = False


def is_junk(path: str) -> bool:
    return any(part.startswith(".") or part.lower() in _JUNK_NAMES for part in path.split("/"))


def _root(paths: list[str]) -> str:
    """The folder the layout starts in: the archive's root, or the one folder everything is in
    (repeatedly) when that folder is not itself a class or split folder."""
    root = ""
    while True:
        rel = [p[len(root) :] for p in paths]
        tops = {r.split("/", 1)[0] for r in rel}
        if len(tops) != 1 or any("/" not in r for r in rel):
            return root
        (top,) = tops
        below = [r.split("/", 1)[1] for r in rel]
        # `cats/x.png` alone is one class folder, not a wrapper: a wrapper holds folders or a CSV.
        if top.lower() in SPLIT_FOLDERS or (
            LABELS_CSV not in below and not any("/" in b for b in below)
        ):
            return root
        root += top + "/"


def csv_path(paths: list[str]) -> str | None:
    """The ``labels.csv`` that makes this a CSV layout, if there is one at the layout's root."""
    kept = [p for p in paths if not is_junk(p)]
    candidate = _root(kept) + LABELS_CSV
    return candidate if candidate in kept else None


def plan(paths: list[str], labels_csv: bytes | None = None) -> Plan:
    """Each kept file's class and split. ``labels_csv``: the content of :func:`csv_path`'s file
    when there is one."""
    kept = [p for p in paths if not is_junk(p)]
    root = _root(kept)
    rel = {p: p[len(root) :] for p in kept}
    if labels_csv is not None:
        return _csv_plan(rel, root, labels_csv)
    top_folders = {r.split("/", 1)[0].lower() for r in rel.values() if "/" in r}
    if "train" in top_folders and top_folders <= set(SPLIT_FOLDERS):
        return _split_plan(rel)
    result = Plan("class_folders")
    for path, r in rel.items():
        if "/" not in r:
            result.skipped.append({"file": path, "why": "not in a class folder"})
        else:
            result.items.append(Item(path, _label(r.split("/", 1)[0]), TRAIN))
    return result


def _label(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip())


def _split_plan(rel: dict[str, str]) -> Plan:
    result = Plan("split_folders")
    for path, r in rel.items():
        parts = r.split("/")
        if len(parts) < 3:
            where = "a split folder" if len(parts) == 2 else "the archive's root"
            result.skipped.append({"file": path, "why": f"not in a class folder (in {where})"})
            continue
        split = SPLIT_FOLDERS[parts[0].lower()]
        result.has_test = result.has_test or split == TEST
        result.items.append(Item(path, _label(parts[1]), split))
    return result


def _csv_plan(rel: dict[str, str], root: str, content: bytes) -> Plan:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"{root}{LABELS_CSV} is not UTF-8 text ({exc})") from exc
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]
    by_rel = {r: p for p, r in rel.items()}
    result = Plan("labels_csv")
    missing: list[str] = []
    named: set[str] = set()
    for number, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise InvalidDataset(
                f"{root}{LABELS_CSV}, row {number}: expected `file,label`, got {row!r}"
            )
        file = row[0].strip().replace("\\", "/")
        while file.startswith("./"):
            file = file[2:]
        file = unicodedata.normalize("NFC", file)
        path = by_rel.get(file)
        if path is None:
            missing.append(row[0].strip())
            continue
        if path in named:
            raise InvalidDataset(f"{root}{LABELS_CSV} names {row[0].strip()!r} twice")
        named.add(path)
        result.items.append(Item(path, _label(row[1]), TRAIN))
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InvalidDataset(
            f"{root}{LABELS_CSV} names files that are not in the archive: {shown}{more}",
            missing=missing[:100],
        )
    for path, r in rel.items():
        if path not in named and r != LABELS_CSV:
            result.skipped.append({"file": path, "why": f"not in {LABELS_CSV}"})
    return result
