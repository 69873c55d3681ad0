"""Clients' ``challenge_without_secret``: a confidential client may start a passkey ceremony
without its secret. Existing clients keep needing it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column(
                "challenge_without_secret", sa.Boolean, nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("clients") as batch:
        # The default only filled the existing rows: the code always writes the column.
        batch.alter_column(
            "challenge_without_secret", existing_type=sa.Boolean, server_default=None
        )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("challenge_without_secret")
