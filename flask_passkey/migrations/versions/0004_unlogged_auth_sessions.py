"""On PostgreSQL, auth sessions live in an UNLOGGED table.

A challenge's session is written once and read once within minutes. Logged, every challenge
waits for a WAL flush at commit (half the insert's time, measured in bench/RESULTS.md); unlogged,
nothing is written to the WAL, and a crash empties the table instead of replaying it, so a taken
session can never come back: the challenges in flight are lost and their users start again.
Unlogged tables are not copied to streaming replicas; after a failover the same holds.
SQLite (synchronous=NORMAL in WAL mode already) is left as it is.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE auth_sessions SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE auth_sessions SET LOGGED")
