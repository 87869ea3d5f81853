"""A job's ``progress`` while it runs: an evaluation's or comparison's images scored so far and
their total (``{"done", "total"}``), written by its worker. A batch prediction's archive is a
blob (``job_inputs.checksum``; ``data`` only for inputs stored before).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 23:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
    with op.batch_alter_table("job_inputs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checksum", sa.String(length=64), nullable=True))
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM job_inputs WHERE data IS NULL")
    with op.batch_alter_table("job_inputs", schema=None) as batch_op:
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("checksum")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("progress")
