"""On PostgreSQL, auth sessions live in an UNLOGGED table.

A challenge's session is written once and read once within minutes. Logged, every challenge
waits for a WAL flush at commit (bench/RESULTS.md has the measurement); unlogged, nothing is
written to the WAL, and a crash empties the table
instead of replaying it, so a taken session can never come back: the challenges in flight are
lost and their users start again.
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


# SET [UN]LOGGED rewrites the table under an exclusive lock. Queued behind a long transaction,
# it would stall every challenge behind it: give up instead (the app retries on first use).
LOCK_TIMEOUT = "SET LOCAL lock_timeout = '10s'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LOCK_TIMEOUT)
        op.execute("ALTER TABLE auth_sessions SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LOCK_TIMEOUT)
        op.execute("ALTER TABLE auth_sessions SET LOGGED")
