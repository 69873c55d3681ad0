"""Credentials' ``hardware_attested``: registered with an attestation the policy trusted, from
an authenticator whose metadata puts its keys in hardware (the ``amr`` ``hwk`` of its sign-ins).
Existing credentials were never attested so.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(
            sa.Column("hardware_attested", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("credentials") as batch:
        # The default only filled the existing rows: the code always writes the column.
        batch.alter_column("hardware_attested", existing_type=sa.Boolean, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("hardware_attested")
