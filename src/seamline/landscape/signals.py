"""What the journal says about each integration lately, and the risk that follows from it.

`seamline landscape` and the console's landscape page both read the signals here: dead letters
waiting, attempts and failures of the last day, and the drift the integration's checks found
on their last two runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from seamline.checks.run import drift_in
from seamline.journal.base import ConsoleJournal
from seamline.landscape.register import Register
from seamline.landscape.risk import Risk, Signals, assess

DAY = 86400.0


async def read(journal: ConsoleJournal, register: Register, *, now: float) -> dict[str, Signals]:
    """Per integration of `register`: dead letters, failures of the last day, check drift
    (an integration outside the hub has none of these: quiet signals)."""
    dead: dict[str, int] = {}
    for row in await journal.flow_counts():
        if row.state == "dead":
            dead[row.flow] = dead.get(row.flow, 0) + row.count
    attempts = await journal.flow_attempts(since=now - DAY)
    drift: dict[str, tuple[int, int | None]] = {}
    for name, integration in register.integrations.items():
        for check in integration.checked_by:
            runs = await journal.check_runs(check, limit=2)
            if runs:
                before = drift_in(runs[1]) if len(runs) > 1 else None
                drift[name] = (drift_in(runs[0]), before)
    return {
        name: Signals(
            dead=dead.get(name, 0),
            attempts=attempts.get(name, (0, 0))[0],
            failed=attempts.get(name, (0, 0))[1],
            drift=drift.get(name, (0, None))[0],
            drift_before=drift.get(name, (0, None))[1],
        )
        for name in register.integrations
    }


def risks(register: Register, found: Mapping[str, Signals], *, now: float) -> dict[str, Risk]:
    """The risk of every integration, from its signals (quiet ones when there are none)."""
    return {
        name: assess(integration, found.get(name) or Signals(), now=now)
        for name, integration in register.integrations.items()
    }
