"""What the model registry's reads return: a version (no weights), a model with its aliases,
the version a prediction by name resolves to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cnnlab.store.tables import CheckpointKind, ModelVersion

# The alias a prediction by name uses when it names neither an alias nor a version.
DEFAULT_ALIAS = "production"


@dataclass
class VersionView:
    """One version as its owner sees it (no weights)."""

    name: str
    version: int
    job_id: str
    search_id: str | None
    checkpoint: CheckpointKind
    epoch: int
    dataset: str
    arch: str
    val_accuracy: float | None
    test_accuracy: float | None
    description: str
    size_bytes: int
    created_at: datetime
    aliases: list[str] = field(default_factory=list)
    environment: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    # Lineage: what the version's job started from (its spec's ``init``; one version's view only).
    init: dict[str, Any] | None = None


@dataclass
class ModelView:
    """A model: its newest version, its aliases (alias → version) and, when asked, its versions
    newest first."""

    name: str
    created_at: datetime
    latest_version: int | None
    version_count: int
    aliases: dict[str, int]
    versions: list[VersionView] | None = None

    @property
    def default_version(self) -> int | None:
        """The version a prediction by name uses (as ``model_versions.resolve`` chooses it):
        the one :data:`DEFAULT_ALIAS` points at, else the newest."""
        return self.aliases.get(DEFAULT_ALIAS, self.latest_version)


@dataclass(frozen=True)
class Resolved:
    """The version a prediction by name uses, and the alias that chose it (None: by number, or
    the newest for want of the default alias)."""

    version_id: str
    name: str
    version: int
    alias: str | None
    job_id: str
    epoch: int


def version_view(name: str, row: ModelVersion, aliases: list[str]) -> VersionView:
    return VersionView(
        name=name,
        version=row.version,
        job_id=row.job_id,
        search_id=row.search_id,
        checkpoint=row.checkpoint_kind,
        epoch=row.epoch,
        dataset=row.dataset,
        arch=row.arch,
        val_accuracy=row.val_accuracy,
        test_accuracy=row.test_accuracy,
        description=row.description,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        aliases=sorted(aliases),
        environment=row.environment,
        signature=row.signature,
    )
