"""Migration scripts, oldest first by revision id; Alembic loads them by file."""
