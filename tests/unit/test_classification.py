"""HTTP answers become decisions in one place; source versions become sortable numbers."""

from __future__ import annotations

import email.utils

import pytest

from seamline.connectors.base import error_for_status, retry_after
from seamline.engine.router import source_version
from seamline.errors import ContractError, PermanentError, ThrottledError, TransientError

# (status, headers, decision, retry_after)
STATUSES = [
    (200, {}, None, None),
    (201, {}, None, None),
    (204, {}, None, None),
    (400, {}, PermanentError, None),
    (401, {}, PermanentError, None),
    (403, {}, PermanentError, None),
    (404, {}, PermanentError, None),
    (409, {}, PermanentError, None),
    (422, {}, PermanentError, None),
    (408, {}, TransientError, None),
    (425, {}, TransientError, None),
    (429, {"retry-after": "2.5"}, ThrottledError, 2.5),
    (429, {}, ThrottledError, None),
    (500, {}, TransientError, None),
    (502, {}, TransientError, None),
    (503, {"Retry-After": "30"}, TransientError, 30.0),
    (504, {}, TransientError, None),
    (599, {}, TransientError, None),
]


@pytest.mark.parametrize(("status", "headers", "decision", "wait"), STATUSES)
def test_status_to_decision(
    status: int, headers: dict[str, str], decision: type | None, wait: float | None
) -> None:
    error = error_for_status(status, headers, "body")
    if decision is None:
        assert error is None
        return
    assert type(error) is decision
    assert str(status) in str(error)
    if isinstance(error, TransientError):
        assert error.retry_after == wait


def test_retry_after_as_an_http_date() -> None:
    header = email.utils.formatdate(1_000_060.0, usegmt=True)
    assert retry_after({"retry-after": header}, now=1_000_000.0) == pytest.approx(60.0)


@pytest.mark.parametrize("value", ["soon", "", "-", "inf", "nan", "1e999"])
def test_unreadable_retry_after_is_ignored(value: str) -> None:
    assert retry_after({"retry-after": value}) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (7, 7.0),
        ("12", 12.0),
        ("2026-11-22T10:00:00Z", 1795341600.0),
        ("2026-11-22T11:00:00+01:00", 1795341600.0),
        ("2026-11-22T10:00:00", 1795341600.0),  # no offset: taken as UTC
    ],
)
def test_source_versions_compare_across_offsets(raw: object, expected: float) -> None:
    assert source_version(raw) == expected


@pytest.mark.parametrize("raw", [True, "yesterday", None, [1]])
def test_unreadable_source_version_is_a_contract_error(raw: object) -> None:
    with pytest.raises(ContractError):
        source_version(raw)
