"""Comparing two key-sorted streams: every difference found and classified, nothing else."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seamline.checks.compare import EXACT, Finding, Row, Tally, Tolerance, compare
from seamline.checks.spool import Spool


def rows(*items: tuple[str, dict[str, Any]]) -> list[Row]:
    return [Row((key,), values) for key, values in items]


CASES = [
    pytest.param(
        rows(("A", {"qty": 5}), ("B", {"qty": 2})),
        rows(("A", {"qty": 5}), ("B", {"qty": 2})),
        [],
        id="equal sets",
    ),
    pytest.param(
        rows(("A", {"qty": 5}), ("C", {"qty": 1})),
        rows(("B", {"qty": 2}), ("C", {"qty": 1})),
        [("missing_right", "A"), ("missing_left", "B")],
        id="a key on one side only",
    ),
    pytest.param(
        rows(("A", {"qty": 5})),
        rows(("A", {"qty": 4})),
        [("mismatch", "A")],
        id="a value differs",
    ),
    pytest.param(
        rows(("A", {"qty": 5}), ("A", {"qty": 6}), ("B", {"qty": 1})),
        rows(("A", {"qty": 5}), ("B", {"qty": 1})),
        [("duplicate", "A")],
        id="a key twice on one side",
    ),
    pytest.param(
        rows(("A", {"qty": "5"})),
        rows(("A", {"qty": 5.0})),
        [],
        id="numbers compare as numbers",
    ),
    pytest.param(
        rows(("A", {"qty": 5})),
        rows(("A", {})),
        [("mismatch", "A")],
        id="a missing field is a mismatch",
    ),
    pytest.param([], rows(("A", {"qty": 1})), [("missing_left", "A")], id="an empty side"),
]


@pytest.mark.parametrize(("left", "right", "expected"), CASES)
def test_each_difference_is_found_and_classified(
    left: list[Row], right: list[Row], expected: list[tuple[str, str]]
) -> None:
    found = list(compare(left, right, {"qty": EXACT}))

    assert [(f.kind, f.key[0]) for f in found] == expected


TOLERANCES = [
    # (tolerance, left, right, agree)
    (Tolerance(absolute=Decimal(2)), 10, 12, True),
    (Tolerance(absolute=Decimal(2)), 10, 13, False),
    (Tolerance(relative=Decimal("0.01")), "100.00", "100.99", True),
    (Tolerance(relative=Decimal("0.01")), "100.00", "101.50", False),
    (Tolerance(fold_case=True), "Ada@Example.com ", "ada@example.com", True),
    (EXACT, "Ada@Example.com", "ada@example.com", False),
    (EXACT, None, None, True),
    (EXACT, None, 0, False),
    (EXACT, True, 1, False),
]


@pytest.mark.parametrize(("tolerance", "left", "right", "agree"), TOLERANCES)
def test_tolerances_say_when_values_agree(
    tolerance: Tolerance, left: Any, right: Any, agree: bool
) -> None:
    assert tolerance.agrees(left, right) is agree
    assert tolerance.agrees(right, left) is agree


ABSENT_CASES = [
    # (left rows, right rows, findings): stock not listed is stock at 0
    pytest.param(rows(("A", {"qty": 0})), [], [], id="0 against not listed agrees"),
    pytest.param(rows(("A", {"qty": 3})), [], [("missing_right", "A")], id="3 against not listed"),
    pytest.param([], rows(("A", {"qty": 2})), [("missing_left", "A")], id="not listed against 2"),
]


@pytest.mark.parametrize(("left", "right", "expected"), ABSENT_CASES)
def test_a_row_missing_where_absence_means_zero(
    left: list[Row], right: list[Row], expected: list[tuple[str, str]]
) -> None:
    merged = compare(left, right, {"qty": EXACT}, absent={"qty": 0})
    with Spool() as spool:
        spool.extend("left", left)
        spool.extend("right", right)
        spooled = list(spool.findings({"qty": EXACT}, absent={"qty": 0}))

    assert [(f.kind, f.key[0]) for f in merged] == expected
    assert [(f.kind, f.key[0]) for f in spooled] == expected


def test_a_stream_out_of_order_is_an_error_naming_side_and_key() -> None:
    with pytest.raises(ValueError, match="right side is not sorted by key: A came after B"):
        list(compare(rows(("A", {})), rows(("B", {}), ("A", {})), {}))


def test_a_finding_says_what_differs_in_words() -> None:
    (finding,) = compare(
        [Row(("SKU-1", "WH"), {"qty": 5, "price": 1})],
        [Row(("SKU-1", "WH"), {"qty": 3, "price": 1})],
        {"qty": EXACT, "price": EXACT},
    )

    assert finding.describe() == "SKU-1/WH: qty 5 vs 3"
    assert finding.fields == ("qty",)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.sets(st.text(alphabet="ABCdef-_.0123456789é", min_size=1, max_size=6), max_size=60),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_injected_drift_is_found_and_nothing_else(keys: set[str], seed: int) -> None:
    # Given one set of stock rows, and a copy with drift injected at random keys
    rng = random.Random(seed)
    truth = {key: rng.randrange(100) for key in keys}
    left = dict(truth)
    right = dict(truth)
    injected: dict[str, str] = {}
    for key in sorted(keys):
        kind = rng.choice(["none", "none", "missing_left", "missing_right", "mismatch"])
        if kind == "missing_left":
            del left[key]
        elif kind == "missing_right":
            del right[key]
        elif kind == "mismatch":
            right[key] += 1
        if kind != "none":
            injected[key] = kind

    # When they are compared sorted, and in any order through a spool (a small one, so that
    # partitions are split again)
    tally = Tally()
    merged = {
        f.key[0]: f.kind
        for f in compare(
            [Row((k,), {"qty": v}) for k, v in sorted(left.items())],
            [Row((k,), {"qty": v}) for k, v in sorted(right.items())],
            {"qty": EXACT},
            tally=tally,
        )
    }
    # on disk only, with the left side held in memory (some right rows come before the left
    # is done, the rest are judged as they come), and held until it outgrows the memory
    lefts = [Row((k,), {"qty": v}) for k, v in rng.sample(sorted(left.items()), len(left))]
    rights = [Row((k,), {"qty": v}) for k, v in rng.sample(sorted(right.items()), len(right))]
    early = len(rights) // 3
    spooled: dict[int, tuple[dict[str, str], Tally]] = {}
    for memory in (0, 10**9, 400):
        with Spool(partitions=3, max_bytes=60, memory=memory) as spool:
            spool.extend("left", lefts[: len(lefts) // 2])
            spool.extend("right", rights[:early])
            spool.extend("left", lefts[len(lefts) // 2 :])
            spool.done("left")
            spool.extend("right", rights[early:])
            spooled_tally = Tally()
            kinds = {f.key[0]: str(f.kind) for f in spool.findings({"qty": EXACT}, spooled_tally)}
            spooled[memory] = kinds, spooled_tally

    # Then exactly the injected differences are reported, every way, and the counts add up
    assert merged == injected
    for memory, (found, spooled_tally) in spooled.items():
        assert found == injected, memory
        assert tally == spooled_tally, memory
    assert tally.left == len(left) and tally.right == len(right)
    assert tally.agreed == len(keys) - len(injected)


@settings(max_examples=80, deadline=None)
@given(
    left=st.lists(st.tuples(st.sampled_from("ABCDEFGH"), st.integers(0, 2)), max_size=12),
    right=st.lists(st.tuples(st.sampled_from("ABCDEFGHIJ"), st.integers(0, 2)), max_size=14),
    early=st.integers(0, 14),
    cut=st.integers(0, 12),
)
def test_a_spool_finds_the_same_whatever_memory_it_holds_rows_in(
    left: list[tuple[str, int]], right: list[tuple[str, int]], early: int, cut: int
) -> None:
    # Given: rows with keys repeated on both sides, right rows arriving before the left side
    # is done and after it, in one order
    def run(memory: int) -> tuple[list[tuple[object, ...]], Tally]:
        tally = Tally()
        with Spool(partitions=3, max_bytes=80, memory=memory) as spool:
            spool.extend("left", rows(*((k, {"qty": v}) for k, v in left[:cut])))
            spool.extend("right", rows(*((k, {"qty": v}) for k, v in right[:early])))
            spool.extend("left", rows(*((k, {"qty": v}) for k, v in left[cut:])))
            spool.done("left")
            spool.extend("right", rows(*((k, {"qty": v}) for k, v in right[early:])))
            found = [
                (f.kind, f.key, f.left, f.right, f.fields, f.first)
                for f in spool.findings({"qty": EXACT}, tally)
            ]
        return sorted(found, key=repr), tally

    # When: compared on disk only, held in memory, and held until the memory runs out
    on_disk, held, spilled = run(0), run(10**9), run(300)

    # Then: the same findings (which row of a repeated key is the duplicate included), and
    # the same counts
    assert held == on_disk
    assert spilled == on_disk


def spooled_peak(fill: Callable[[Spool], None]) -> tuple[int, dict[str, int]]:
    """Peak memory while `fill` gives a spool (500 kB to hold rows in, partitions of at most
    10 kB) its rows and its findings are read; and what it found."""
    tally = Tally()
    with Spool(max_bytes=10_000, memory=500_000) as spool:
        tracemalloc.start()
        try:
            fill(spool)
            for _ in spool.findings({"n": EXACT}, tally):
                pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak, tally.found


def right_early_peak(n: int) -> tuple[int, dict[str, int]]:
    """Peak memory while `n` right rows the left lacks come before a one-row left is done."""

    def fill(spool: Spool) -> None:
        spool.extend("right", (Row((f"K{i:07d}",), {"n": i}) for i in range(n)))
        spool.extend("left", [Row(("K0000000",), {"n": 0})])
        spool.done("left")

    return spooled_peak(fill)


def test_right_rows_the_held_left_lacks_keep_memory_flat() -> None:
    small_peak, small_found = right_early_peak(40_000)
    large_peak, large_found = right_early_peak(200_000)

    assert small_found["missing_left"] == 40_000 - 1
    assert large_found["missing_left"] == 200_000 - 1
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)


def stock(n: int, drift_every: int, side: str) -> Iterator[Row]:
    for i in range(n):
        qty = i % 50
        if side == "right" and i % drift_every == 0:
            qty += 1
        yield Row((f"SKU-{i:08d}", "WH"), {"qty": qty})


def peak_while_comparing(n: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        tally = Tally()
        for _ in compare(
            stock(n, 1000, "left"), stock(n, 1000, "right"), {"qty": EXACT}, tally=tally
        ):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, tally.found["mismatch"]


def test_memory_stays_flat_however_large_the_sets() -> None:
    # When sets of 10k and of 200k rows per side (0.1% drift) stream through a comparison
    small_peak, small_found = peak_while_comparing(10_000)
    large_peak, large_found = peak_while_comparing(200_000)

    # Then every drift is found, and 20 times the rows take no more memory than a little more
    assert (small_found, large_found) == (10, 200)
    assert large_peak < small_peak * 1.5 + 64 * 1024, (small_peak, large_peak)


def spool_peak(n: int) -> tuple[int, dict[str, int]]:
    """Peak memory while two sets of `n` rows in random order are compared through a spool."""
    order = random.Random(1).sample(range(n), n)  # a list of ints: outside the measurement

    def fill(spool: Spool) -> None:
        spool.extend("left", (Row((f"K{i:07d}",), {"n": i}) for i in order))
        spool.done("left")
        spool.extend("right", (Row((f"K{i:07d}",), {"n": i + (i % 1000 == 0)}) for i in order))

    return spooled_peak(fill)


def test_a_spool_compares_sets_in_any_order_with_memory_flat() -> None:
    # When sets of 40k and of 200k rows in random order are compared (1 in 1000 differs),
    # with 500 kB to hold rows in (both outgrow it) and partitions of at most 10 kB (about
    # 400 rows: both split theirs again)
    small_peak, small_found = spool_peak(40_000)
    large_peak, large_found = spool_peak(200_000)

    # Then every difference is found, and five times the rows take about the same memory
    assert small_found["mismatch"] == 40 and large_found["mismatch"] == 200
    assert sum(large_found.values()) == 200
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)


@pytest.mark.parametrize("memory", [0, 10**6], ids=["on disk", "held"])
def test_duplicates_are_found_on_either_side_of_a_spool(memory: int) -> None:
    with Spool(memory=memory) as spool:
        spool.extend("left", rows(("A", {"qty": 1}), ("A", {"qty": 2}), ("B", {"qty": 1})))
        spool.done("left")
        spool.extend("right", rows(("B", {"qty": 1}), ("A", {"qty": 1}), ("B", {"qty": 3})))
        found = [(f.kind, f.key[0], f.fields, f.first) for f in spool.findings({"qty": EXACT})]

    assert sorted(found) == [
        ("duplicate", "A", ("left",), {"qty": 1}),
        ("duplicate", "B", ("right",), None),
    ]


def test_a_finding_is_plain_data() -> None:
    finding = Finding("missing_left", ("A",), right={"qty": 1})
    assert finding.describe() == "A: only on the right"
