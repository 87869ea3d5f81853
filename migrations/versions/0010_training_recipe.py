"""Training recipe: each epoch's learning rate, and the epoch early stopping ended a job at.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("epoch_metrics") as batch:
        batch.add_column(sa.Column("lr", sa.Float(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("stopped_early_at", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stopped_early_at")
    with op.batch_alter_table("epoch_metrics") as batch:
        batch.drop_column("lr")
