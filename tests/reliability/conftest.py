from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import Landscape, landscape


@pytest.fixture
def land(tmp_path: Path) -> Iterator[Landscape]:
    """A sink and a hub (not yet started) on loopback; both stopped afterwards."""
    running = landscape(tmp_path)
    try:
        yield running
    finally:
        running.stop()
