"""Shop time: REST timestamps in the shop's time zone with an offset, GraphQL's in UTC.

Shopify writes REST and webhook times at second resolution with the shop's UTC offset
(``2026-11-22T05:00:00-05:00``) and GraphQL ``DateTime`` values in UTC (``...T10:00:00Z``).
Two changes within one second share an ``updated_at``, as they do on Shopify.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone


class Clock:
    """Wall-clock time in the shop's zone, whole seconds."""

    def __init__(self, utc_offset: timedelta = timedelta(hours=-5)) -> None:
        self.zone = timezone(utc_offset)

    def now(self) -> datetime:
        return datetime.now(self.zone).replace(microsecond=0)

    def iso(self, when: datetime | None = None) -> str:
        """``when`` (default: now) as Shopify's REST writes it."""
        moment = self.now() if when is None else when.astimezone(self.zone).replace(microsecond=0)
        return moment.isoformat()


def parse(text: str) -> datetime:
    """An ISO-8601 time, date or date-time, ``Z`` or offset; no zone means UTC."""
    when = datetime.fromisoformat(text.strip())
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def utc_z(text: str) -> str:
    """A REST time as GraphQL writes it: ``2026-11-22T10:00:00Z``."""
    return parse(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def triggered_at() -> str:
    """``X-Shopify-Triggered-At``: UTC with fractional seconds, as Shopify sends it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
