"""Webhook secrets encrypted at rest: the ``secret`` column holds a Fernet token (longer than
the plain secret it replaces). Secrets already stored stay readable as they are.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=64), type_=sa.String(length=255)
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column(
            "secret", existing_type=sa.String(length=255), type_=sa.String(length=64)
        )
