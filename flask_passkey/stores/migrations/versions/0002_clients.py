"""Clients registered at run time (``flask passkey clients add``), their secrets as hashes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("client_secret_hash", sa.String),
        sa.Column("app_type", sa.String, nullable=False),
        sa.Column("is_first_party", sa.Boolean, nullable=False),
        sa.Column("oidc_conformant", sa.Boolean, nullable=False),
        sa.Column("grant_types", sa.JSON, nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String, nullable=False),
        sa.Column("organization_usage", sa.String, nullable=False),
        sa.Column("connections", sa.JSON, nullable=False),
        sa.Column("default_connection", sa.String),
        sa.Column("web_origins", sa.JSON, nullable=False),
        sa.Column("android_apps", sa.JSON, nullable=False),
        sa.Column("ios_apps", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_clients"),
    )


def downgrade() -> None:
    op.drop_table("clients")
