"""What a journal's writer may be told about gathering larger groups."""

from __future__ import annotations

import pytest

from seamline.journal.group_commit import Gathering


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
