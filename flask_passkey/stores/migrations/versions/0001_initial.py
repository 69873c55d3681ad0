"""Initial schema: users, credentials, organization members, auth sessions, refresh tokens and
signing keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("connection", sa.String, nullable=False),
        sa.Column("user_handle", sa.LargeBinary, nullable=False),
        sa.Column("email", sa.String),
        sa.Column("phone_number", sa.String),
        sa.Column("username", sa.String),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("user_metadata", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("user_handle", name="uq_users_user_handle"),
        sa.UniqueConstraint("connection", "email", name="uq_users_connection_email"),
        sa.UniqueConstraint("connection", "phone_number", name="uq_users_connection_phone_number"),
        sa.UniqueConstraint("connection", "username", name="uq_users_connection_username"),
    )
    op.create_index("ix_users_created_at", "users", ["created_at"])

    op.create_table(
        "credentials",
        sa.Column("id", sa.LargeBinary, nullable=False),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("backup_eligible", sa.Boolean, nullable=False),
        sa.Column("backed_up", sa.Boolean, nullable=False),
        sa.Column("transports", sa.JSON, nullable=False),
        sa.Column("aaguid", sa.String, nullable=False),
        sa.Column("rp_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_used_at", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_credentials"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_credentials_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_credentials_user_id_created_at", "credentials", ["user_id", "created_at"])

    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.String, nullable=False),
        sa.Column("user_id", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name="pk_organization_members"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_organization_members_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_organization_members_user_id", "organization_members", ["user_id"])

    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
    )
    op.create_index("ix_auth_sessions_expires_at", "auth_sessions", ["expires_at"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String, nullable=False),
        sa.Column("user_id", sa.String, nullable=False),
        sa.Column("client_id", sa.String, nullable=False),
        sa.Column("scope", sa.JSON, nullable=False),
        sa.Column("audience", sa.String),
        sa.Column("organization_id", sa.String),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("auth_time", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_refresh_tokens_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String, nullable=False),
        sa.Column("private_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )


def downgrade() -> None:
    for table in (
        "signing_keys",
        "refresh_tokens",
        "auth_sessions",
        "organization_members",
        "credentials",
        "users",
    ):
        op.drop_table(table)
