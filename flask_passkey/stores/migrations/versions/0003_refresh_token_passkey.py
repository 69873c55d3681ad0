"""Refresh tokens remember the passkey that signed in, so deleting it ends them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: tokens issued before this revision keep working until they expire.
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("credential_id", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("credential_id")
