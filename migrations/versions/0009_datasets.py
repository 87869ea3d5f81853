"""Uploaded datasets: a user's datasets, their immutable versions (one per upload, ingested by
a worker under a lease), and the content-addressed blobs (in chunks) that hold their bytes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:40:52.953374
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("checksum", name=op.f("pk_blobs")),
    )
    op.create_table(
        "blob_chunks",
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checksum"],
            ["blobs.checksum"],
            name=op.f("fk_blob_chunks_checksum_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("checksum", "index", name=op.f("pk_blob_chunks")),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_datasets_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_datasets_owner_id_name")),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ingesting", "ready", "failed", name="dataset_status", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("archive_bytes", sa.BigInteger(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("image_size", sa.Integer(), nullable=True),
        sa.Column("resize", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("classes", sa.JSON(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("mean", sa.JSON(), nullable=True),
        sa.Column("std", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("decoded_checksum", sa.String(length=64), nullable=True),
        sa.Column("decoded_bytes", sa.BigInteger(), nullable=True),
        sa.Column("samples_checksum", sa.String(length=64), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_versions_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint(
            "dataset_id", "version", name=op.f("uq_dataset_versions_dataset_id_version")
        ),
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_versions_checksum"), ["checksum"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dataset_versions_decoded_checksum"), ["decoded_checksum"], unique=False
        )
        batch_op.create_index(
            "ix_dataset_versions_status_lease", ["status", "lease_expires_at"], unique=False
        )

    # A model version's dataset may be an upload's NAME@V, longer than a built-in's name.
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "dataset", existing_type=sa.String(length=64), type_=sa.String(length=80)
        )


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.alter_column(
            "dataset", existing_type=sa.String(length=80), type_=sa.String(length=64)
        )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_status_lease")
        batch_op.drop_index(batch_op.f("ix_dataset_versions_decoded_checksum"))
        batch_op.drop_index(batch_op.f("ix_dataset_versions_checksum"))

    op.drop_table("dataset_versions")
    op.drop_table("datasets")
    op.drop_table("blob_chunks")
    op.drop_table("blobs")
