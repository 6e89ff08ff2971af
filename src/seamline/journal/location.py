"""Where the journal is: a SQLite file (the default) or a PostgreSQL database.

`journal:` in `seamline.yaml` (or `SEAMLINE_JOURNAL_URL`) is a path or `sqlite:` URL for SQLite,
or `postgresql://user@host:port/db` for PostgreSQL. A password in the URL is written as a
reference, `postgresql://seamline:${SEAMLINE_DB_PASSWORD}@db/seamline`, resolved from the
environment here and never printed; libpq's own `PGPASSWORD` and passfile work too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from seamline.errors import JournalError
from seamline.journal.group_commit import GroupCommitJournal
from seamline.project import Project
from seamline.settings import is_postgres

__all__ = ["is_postgres", "journal_file", "journal_for", "postgres_url"]

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def postgres_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    """The URL with `${NAME}` references replaced from the environment."""
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not env.get(name):
            raise JournalError(
                f"the journal URL refers to ${{{name}}}, which is not set in the environment"
            )
        return env[name]

    return _REF.sub(value, url)


def journal_for(project: Project, *, exclusive: bool = False) -> GroupCommitJournal:
    """The project's journal, not yet opened. `exclusive`: this process is the only hub on a
    SQLite file (PostgreSQL journals are shared by design)."""
    settings = project.settings
    if is_postgres(settings.journal):
        from seamline.journal.postgres import PostgresJournal

        return PostgresJournal(
            postgres_url(settings.journal),
            max_pending=settings.ingest.max_pending,
            ack_timeout=settings.ingest.ack_timeout,
        )
    from seamline.journal.sqlite import SqliteJournal

    return SqliteJournal(
        settings.journal_path(project.dir),
        max_pending=settings.ingest.max_pending,
        ack_timeout=settings.ingest.ack_timeout,
        exclusive=exclusive,
    )


def journal_file(project: Project) -> Path | None:
    """The SQLite file, or None when the journal is on PostgreSQL."""
    if is_postgres(project.settings.journal):
        return None
    return project.settings.journal_path(project.dir)
