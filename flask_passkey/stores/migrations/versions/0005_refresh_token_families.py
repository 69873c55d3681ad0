"""Refresh-token families: rotation with reuse detection, inactivity expiry, revocation; and
per-client refresh-token policies (Auth0's Multi-Resource Refresh Token).

Every token issued before this revision becomes a family of its own (its hash is the family
id), unused and without an inactivity expiry, so it keeps working until it expires.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("family_id", sa.String, nullable=True))
        batch.add_column(sa.Column("idle_expires_at", sa.Double, nullable=True))
        batch.add_column(sa.Column("used_at", sa.Double, nullable=True))
    op.execute("UPDATE refresh_tokens SET family_id = token_hash")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.alter_column("family_id", existing_type=sa.String, nullable=False)
        batch.create_index("ix_refresh_tokens_family_id", ["family_id"])
    op.create_table(
        "refresh_token_revocations",
        sa.Column("family_id", sa.String, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("family_id", name="pk_refresh_token_revocations"),
    )
    op.create_index(
        "ix_refresh_token_revocations_expires_at", "refresh_token_revocations", ["expires_at"]
    )
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("refresh_token_policies", sa.JSON, nullable=False, server_default="[]")
        )
    with op.batch_alter_table("clients") as batch:
        # The default only filled the existing rows: the code always writes the column.
        batch.alter_column("refresh_token_policies", existing_type=sa.JSON, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("refresh_token_policies")
    op.drop_index("ix_refresh_token_revocations_expires_at", "refresh_token_revocations")
    op.drop_table("refresh_token_revocations")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_index("ix_refresh_tokens_family_id")
        batch.drop_column("used_at")
        batch.drop_column("idle_expires_at")
        batch.drop_column("family_id")
