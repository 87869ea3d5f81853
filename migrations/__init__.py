"""Alembic migration scripts for the cnnlab store (see :mod:`cnnlab.store.migrate`)."""
