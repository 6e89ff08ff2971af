"""Fixtures shared by every test folder: a real PostgreSQL server for the run, and the two
journals (SQLite on a real file, PostgreSQL on a fresh database) as one parameter."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seamline.journal.group_commit import GroupCommitJournal
from seamline.journal.postgres import PostgresJournal
from seamline.journal.sqlite import SqliteJournal
from seamline.sandbox.postgres import LocalPostgres
from tests.tryton_fixtures import tryton, tryton_options  # noqa: F401  (one real Tryton per session)

_databases = itertools.count(1)


def _server() -> Iterator[LocalPostgres]:
    pg = LocalPostgres().start()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """One cluster on loopback for the whole run, owned by it, removed afterwards."""
    yield from _server()


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A server of the test's own, for tests that stop or crash it."""
    yield from _server()


@pytest.fixture
def postgres_url(postgres: LocalPostgres) -> str:
    """A fresh, empty database on the run's cluster."""
    return postgres.create_database(f"t{next(_databases)}")


@dataclass
class Backend:
    """How a test makes a journal, and reads its tables behind its back."""

    name: str
    make: Callable[..., GroupCommitJournal]
    rows: Callable[[str], list[tuple[Any, ...]]]


def _sqlite(path: Path) -> Backend:
    import sqlite3

    def rows(sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path)
        try:
            return [tuple(r) for r in conn.execute(sql)]
        finally:
            conn.close()

    return Backend("sqlite", lambda **kw: SqliteJournal(path, **kw), rows)


def _postgres(url: str) -> Backend:
    import psycopg

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url) as conn:
            return [
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                for r in conn.execute(sql.encode())
            ]

    return Backend("postgres", lambda **kw: PostgresJournal(url, **kw), rows)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each journal test runs on both journals."""
    if request.param == "sqlite":
        return _sqlite(tmp_path / "journal.db")
    return _postgres(request.getfixturevalue("postgres_url"))


DEMO_SHOP = Path(__file__).parents[1] / "examples" / "demo-shop"
DEMO_SECRETS = ("SHOP_ACCESS_TOKEN", "SHOP_WEBHOOK_SECRET", "ERP_PASSWORD", "WAREHOUSE_PASSWORD")


@pytest.fixture
def demo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo shop's secret variables set (to placeholders: nothing is contacted)."""
    for name in DEMO_SECRETS:
        monkeypatch.setenv(name, "x")


@pytest.fixture
def demo_project(tmp_path: Path, demo_secrets: None) -> Path:
    """A copy of examples/demo-shop to change, its secrets set."""
    import shutil

    root = tmp_path / "demo-shop"
    shutil.copytree(DEMO_SHOP, root, ignore=shutil.ignore_patterns("journal.db*"))
    return root
