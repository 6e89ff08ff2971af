"""What a journal's writer may be told about gathering larger groups."""

from __future__ import annotations

import pytest

from seamline.journal.group_commit import GATHER, Gathering


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"after": 0}, "1 <= after <= target"),
        ({"after": 65, "target": 64}, "1 <= after <= target"),
        ({"pause": 0.0}, "pause and longest > 0"),
        ({"longest": -1.0}, "pause and longest > 0"),
    ],
)
def test_a_gathering_that_could_not_work_is_refused(
    fields: dict[str, float], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint.replace("+", r"\+")):
        Gathering(**fields)  # type: ignore[arg-type]


def test_the_default_waits_at_most_a_few_milliseconds() -> None:
    # far below any sender's timeout and the journal's own ack timeout (seconds)
    assert GATHER.longest <= 0.005
    assert GATHER.pause <= GATHER.longest
