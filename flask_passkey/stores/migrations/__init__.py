"""Alembic migrations of the SQL store, shipped with the package.

Run them with :func:`flask_passkey.stores.sql.upgrade_database`; the store does
so itself when it starts (unless ``PASSKEY_AUTO_MIGRATE`` is off). Each revision only adds to
the schema: an upgrade never drops data.

The history is a line: ``versions/NNNN_<what>.py`` is revision ``NNNN`` and revises the one
numbered before it. :data:`REVISIONS` is read from those file names, without Alembic (importing
Alembic logs a line per plugin it sets up, which a start with nothing to migrate has no reason
to print); a test checks it against Alembic's own reading of the scripts.
"""

from __future__ import annotations

import re
from importlib.resources import files

_SCRIPT = re.compile(r"(\d{4})_\w+\.py")

#: Every shipped revision, oldest first.
REVISIONS: tuple[str, ...] = tuple(
    sorted(
        match[1]
        for entry in files(__name__).joinpath("versions").iterdir()
        if (match := _SCRIPT.fullmatch(entry.name))
    )
)
#: The newest revision: the schema this version of flask-passkey reads and writes.
HEAD: str = REVISIONS[-1]


def pending_migrations(revision: str | None, target: str = HEAD) -> tuple[str, ...]:
    """The revisions a database at ``revision`` (None: no schema yet) lacks to be at ``target``.

    Empty when it is there already, past it, or at a revision this version does not know (one
    a newer version of flask-passkey made: its schema only adds to ours).
    """
    if revision is not None and revision not in REVISIONS:
        return ()
    start = 0 if revision is None else REVISIONS.index(revision) + 1
    return REVISIONS[start : REVISIONS.index(target) + 1]
