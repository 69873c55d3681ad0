"""Clients' allowed origins (CORS): the pages on other origins that may read the API's answers
to the client (Auth0's "Allowed Origins (CORS)").

NULL means the client's ``web_origins`` (flask_passkey.cors), which keeps every existing client
as it was.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("allowed_origins", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("allowed_origins")
