"""Alembic environment: runs the migrations on the connection ``upgrade_database`` hands over.

That connection is already inside the transaction (and holds the lock) that makes the whole
upgrade atomic, so nothing here begins, commits or configures logging.
"""

from __future__ import annotations

from alembic import context

from flask_passkey.stores.sql_schema import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
