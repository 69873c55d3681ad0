"""Alembic migrations of the SQL store, shipped with the package.

Run them with :func:`flask_passkey.default_plugins.sql_store.upgrade_database`; the store does
so itself when it starts. Each revision only adds to the schema: an upgrade never drops data.
"""
