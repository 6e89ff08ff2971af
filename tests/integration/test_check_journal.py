"""Check runs, their findings and flow versions, kept by both journals."""

from __future__ import annotations

import asyncio
from typing import Any

from seamline.journal.check_verbs import FINDINGS_KEPT
from tests.conftest import Backend


def test_a_run_keeps_its_counts_and_first_findings(backend: Backend) -> None:
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        journal = backend.make()
        await journal.open()
        try:
            many = (
                ("mismatch", (f"SKU-{n:05d}",), ("available",), {"available": n}, {"available": 0})
                for n in range(FINDINGS_KEPT + 5)
            )
            first = await journal.record_check_run(
                "stock", started_at=100.0, seconds=1.5, actor="scheduler",
                counts={"left": 20_000, "right": 20_001, "agreed": 9_995,
                        "mismatch": FINDINGS_KEPT + 5},
                findings=many,
            )  # fmt: skip
            second = await journal.record_check_run(
                "stock", started_at=200.0, seconds=0.5, actor="ada",
                counts={"left": 3, "right": 2, "agreed": 2, "missing_right": 1},
                findings=[("missing_right", ("A", "WH"), (), {"available": 4}, None)],
            )  # fmt: skip
            await journal.record_check_run(
                "prices", started_at=300.0, seconds=0.1, actor="ada", counts={},
                findings=[], error="shop: no answer within 10 s",
            )  # fmt: skip
            runs = await journal.check_runs("stock")
            assert [r["id"] for r in runs] == [second, first]
            kept = await journal.check_findings(first, limit=FINDINGS_KEPT + 10)
            latest = await journal.check_findings(second)
            everything = await journal.check_runs()
            return runs, kept + latest, everything
        finally:
            await journal.close()

    runs, findings, everything = asyncio.run(go())

    assert runs[1]["mismatch"] == FINDINGS_KEPT + 5 and runs[1]["left_rows"] == 20_000
    assert runs[0]["actor"] == "ada" and runs[0]["missing_right"] == 1
    assert len(findings) == FINDINGS_KEPT + 1
    assert findings[-1] == {
        "kind": "missing_right", "key": "A/WH", "fields": "",
        "left_values": {"available": 4}, "right_values": None,
    }  # fmt: skip
    assert [r["check_name"] for r in everything] == ["prices", "stock", "stock"]
    assert everything[0]["error"] == "shop: no answer within 10 s"


def test_a_flow_version_is_kept_once_with_its_files(backend: Backend) -> None:
    async def go() -> tuple[int, int, list[dict[str, Any]], bytes | None]:
        journal = backend.make()
        await journal.open()
        try:
            new = await journal.record_flow_versions(
                [("orders", "v1", b"flow: 1"), ("stock", "s1", b"flow: s")], actor="hub", now=1.0
            )
            again = await journal.record_flow_versions(
                [("orders", "v1", b"flow: 1"), ("orders", "v2", b"flow: 2")], actor="ada", now=2.0
            )
            versions = await journal.flow_versions("orders")
            return new, again, versions, await journal.flow_version_content("orders", "v1")
        finally:
            await journal.close()

    new, again, versions, content = asyncio.run(go())

    assert (new, again) == (2, 2)
    # v1 went live again with v2: both at 2.0, first kept by who deployed it first
    assert {(v["version"], v["deployed_by"], v["last_live"]) for v in versions} == {
        ("v2", "ada", 2.0),
        ("v1", "hub", 2.0),
    }
    assert content == b"flow: 1"
