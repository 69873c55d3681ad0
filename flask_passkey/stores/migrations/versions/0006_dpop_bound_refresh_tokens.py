"""DPoP (RFC 9449): a public client's refresh token remembers the key it is bound to, and the
proofs seen are remembered until they are too old to be accepted anyway.

``markers`` holds :meth:`flask_passkey.sessions.SessionStore.put_marker`'s keys. Like
``auth_sessions`` (0004) it is UNLOGGED on PostgreSQL: its rows live a minute or two, and a
crash that empties it only forgets proofs that are about to be too old.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: refresh tokens issued before this revision stay unbound.
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String, nullable=True))
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "markers",
        sa.Column("key", sa.String, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_markers"),
        prefixes=unlogged,
    )
    op.create_index("ix_markers_expires_at", "markers", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_markers_expires_at", table_name="markers")
    op.drop_table("markers")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("dpop_jkt")
