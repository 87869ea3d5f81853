"""The one settings object, read from ``CNNLAB_*`` environment variables.

Imports neither torch nor FastAPI, so the CLI, the API, the worker and Alembic all read it cheaply.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_BROKER = "embedded"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CNNLAB_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".cnnlab")
    data_dir: Path | None = None
    download: bool = False
    database_url: str | None = None
    broker_url: str = EMBEDDED_BROKER
    # Debian's dataset-fashion-mnist package; searched after data_dir.
    debian_fashion_mnist: Path = Path("/usr/share/datasets/fashion-mnist")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.home / "data"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'cnnlab.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
