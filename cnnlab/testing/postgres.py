"""PostgreSQL databases made and dropped on a server, for the tests' throwaway databases and the
benchmarks' stacks."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _connect(server: str) -> psycopg.Connection:
    return psycopg.connect(server, autocommit=True, connect_timeout=3)


def create_database(name: str, server: str = SERVER) -> str:
    """A new empty database ``name`` (one left of that name is dropped first) on the server
    that ``server`` (a libpq DSN or URL of an admin database) reaches; its SQLAlchemy URL.
    Raises :class:`psycopg.OperationalError` where no server answers."""
    with _connect(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    params = {k: str(v) for k, v in conninfo_to_dict(server).items() if v is not None}
    port = params.get("port")
    url = URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        password=params.get("password"),
        host=params.get("host"),
        port=int(port) if port else None,
        database=name,
    )
    return url.render_as_string(hide_password=False)


def drop_database(name: str, server: str = SERVER) -> None:
    with _connect(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
