"""Admin API versions: which are served, and what an unsupported one falls forward to.

Shopify releases a version each quarter (``YYYY-01/04/07/10``) and supports each for at least
12 months. A request for a version that is no longer supported is answered by the oldest
supported one ("falls forward"); ``X-Shopify-API-Version`` always names the version used.
``unstable`` and the next release candidate are served as themselves.
"""

from __future__ import annotations

import re
from typing import Final

SUPPORTED: Final = ("2025-07", "2025-10", "2026-01", "2026-04", "2026-07")
RELEASE_CANDIDATE: Final = "2026-10"
UNSTABLE: Final = "unstable"
LATEST: Final = SUPPORTED[-1]
OLDEST: Final = SUPPORTED[0]

_RELEASE = re.compile(r"^(\d{4})-(01|04|07|10)$")


def resolve(requested: str) -> str | None:
    """The version that answers a request for ``requested``, or None (Shopify: 404).

    Older releases fall forward to `OLDEST`; a name that is no release at all
    (``2025-08``, ``latest``) or a release not yet out is not found.
    """
    if requested in SUPPORTED or requested in (UNSTABLE, RELEASE_CANDIDATE):
        return requested
    if _RELEASE.match(requested) and requested < OLDEST:
        return OLDEST
    return None
