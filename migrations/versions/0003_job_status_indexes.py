"""Indexes for the queries that look for live jobs among all of them: the sweeper's (running jobs
whose lease expired, queued jobs never claimed) and the active-job quota's (one owner's queued
and running jobs). Ended jobs pile up; these queries must not read them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_status_lease", "jobs", ["status", "lease_expires_at"])
    op.create_index("ix_jobs_owner_status", "jobs", ["owner_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_status", table_name="jobs")
    op.drop_index("ix_jobs_status_lease", table_name="jobs")
