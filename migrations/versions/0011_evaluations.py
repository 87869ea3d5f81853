"""Evaluations, comparisons and batch predictions as jobs: a job's kind, the model it scores,
its result, its receipt (environment) and signature, its name, notes and tags; a batch's input
archive and result rows; model versions' receipt and signature.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:04:20.707508
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch_prediction_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(length=1000), nullable=False),
        sa.Column("class_name", sa.String(length=200), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("top_k", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_batch_prediction_rows_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_prediction_rows")),
        sa.UniqueConstraint("job_id", "index", name=op.f("uq_batch_prediction_rows_job_id_index")),
    )
    op.create_table(
        "job_inputs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_inputs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_inputs")),
    )
    op.create_table(
        "job_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_tags_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_tags")),
        sa.UniqueConstraint("job_id", "tag", name=op.f("uq_job_tags_job_id_tag")),
    )
    with op.batch_alter_table("job_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_tags_tag"), ["tag"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="train", nullable=False)
        )
        batch_op.add_column(sa.Column("model_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("environment", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.String(length=5000), nullable=True))
        batch_op.create_index("ix_jobs_model_kind", ["model_id", "kind"], unique=False)
        batch_op.create_index(
            "ix_jobs_owner_kind_created", ["owner_id", "kind", "created_at", "id"], unique=False
        )

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("environment")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_owner_kind_created")
        batch_op.drop_index("ix_jobs_model_kind")
        batch_op.drop_column("notes")
        batch_op.drop_column("name")
        batch_op.drop_column("signature")
        batch_op.drop_column("environment")
        batch_op.drop_column("result")
        batch_op.drop_column("model_id")
        batch_op.drop_column("kind")

    with op.batch_alter_table("job_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_tags_tag"))

    op.drop_table("job_tags")
    op.drop_table("job_inputs")
    op.drop_table("batch_prediction_rows")
