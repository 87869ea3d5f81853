"""The API fixtures (real app over httpx, SQLite and PostgreSQL, users, a trained model)."""

from __future__ import annotations

from tests.api.conftest import alice, bob, client, db_url, mnist, owned, trained

__all__ = ["alice", "bob", "client", "db_url", "mnist", "owned", "trained"]
