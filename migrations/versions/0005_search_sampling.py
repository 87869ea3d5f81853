"""Sampled searches: a search's space, sampler, trial count, seed, pruner, concurrency, whether
it is paused, and the model name its best trial is registered as. Existing searches are grids
(sampler "grid"), never paused.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("space", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("sampler", sa.String(length=8), nullable=False, server_default="grid")
        )
        batch_op.add_column(sa.Column("num_trials", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("seed", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("pruner", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("max_concurrent_trials", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("register_best_as", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("searches", schema=None) as batch_op:
        for column in (
            "register_best_as",
            "paused",
            "max_concurrent_trials",
            "pruner",
            "seed",
            "num_trials",
            "sampler",
            "space",
        ):
            batch_op.drop_column(column)
