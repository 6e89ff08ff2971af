"""A real Tryton ERP for the test session (load with `-p tests.tryton_fixtures`, or import
its fixtures in `conftest.py`).

The first run installs Tryton into `~/.cache/seamline/tryton-8.2` and builds the template
database (about a minute); later runs copy the template in and start in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seamline.connectors.tryton.connector import TrytonOptions
from seamline.sandbox.tryton import LocalTryton
from seamline.settings import Secret


@pytest.fixture(scope="session")
def tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTryton]:
    """One trytond on loopback for the whole run, owned by it, removed afterwards."""
    server = LocalTryton(tmp_path_factory.mktemp("tryton")).start(timeout=120)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def tryton_options(tryton: LocalTryton) -> TrytonOptions:
    return TrytonOptions(
        url=tryton.url,
        database=tryton.database,
        username=tryton.user,
        password=Secret(tryton.password),
        timeout=60.0,
    )
