"""Chaos scenarios: faults played at set times during a load run, each named in one word.

A scenario is written `FAULT[:SYSTEM][:LENGTH][@START][,OPTION=VALUE...]`:

    erp-down:20s@30s              the ERP unreachable for 20 s, 30 s in (`down:erp:20s@30s`)
    throttle:shop:15s@10s         15 s of 429s with Retry-After from the shop's API
    throttle:shop:15s@10s,retry-after=2s
    errors:erp:10s@5s,status=502  10 s of 502s
    slow:erp:10s@5s,delay=35s     answers held past the client's timeout (default: timeout + 1 s)
    reset:shop:5s@20s             connections reset before the request gets there
    lose-answer:erp:10s@5s        the target applies the write, its answer never comes
    duplicate:shop:30s@0s,rate=0.3   webhooks sent twice (the same event id)
    reorder:shop:30s@0s,rate=0.3     webhooks held back until a later one went
    malformed:shop:30s@0s,rate=0.1   bodies cut in half or without their id
    malformed:shop@5s,count=1        the next order's webhook broken, once
    kill-hub@40s                  kill -9 of the hub, restarted at once on the same journal
    kill-hub:5s@40s               ... and left dead for 5 s first

LENGTH and START are durations (`250ms`, `20s`, `2m`); START defaults to 0. Faults on HTTP
answers (`throttle`, `errors`, `slow`, `reset`, `lose-answer`) play on a fault proxy in front
of an HTTP system; `slow` and `lose-answer` hit only requests that write unless `on=all`.
`down` cuts the TCP proxy in front of any system. Webhook faults play on a Shopify simulator.
Scenarios compose: any number, overlapping or not.

`parse_scenario` checks the words; `Chaos.check` checks them against a project's systems;
`Chaos.tick` plays them on the running landscape through its `Levers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from seamline.errors import SeamlineError
from seamline.sandbox.http_faults import HttpFaultProxy, Kind
from seamline.sandbox.shopify import ShopifySimulator
from seamline.settings import parse_duration

HTTP_FAULTS: Final[Mapping[str, Kind]] = {
    "throttle": "throttle",
    "errors": "fail",
    "slow": "slow",
    "reset": "reset",
    "lose-answer": "lose_answer",
}
WEBHOOK_FAULTS: Final = {
    "duplicate": "duplicate_rate",
    "reorder": "reorder_rate",
    "malformed": "malformed_rate",
}
FAULTS: Final = ("down", *HTTP_FAULTS, *WEBHOOK_FAULTS, "kill-hub")
OPTIONS: Final[Mapping[str, frozenset[str]]] = {
    "down": frozenset(),
    "throttle": frozenset({"retry-after"}),
    "errors": frozenset({"status"}),
    "slow": frozenset({"delay", "on"}),
    "reset": frozenset(),
    "lose-answer": frozenset({"on"}),
    "duplicate": frozenset({"rate"}),
    "reorder": frozenset({"rate"}),
    "malformed": frozenset({"rate", "count"}),
    "kill-hub": frozenset(),
}
DEFAULT_RATE: Final = 0.3
HTTP_KINDS: Final = frozenset({"shopify", "tryton", "http"})
WEBHOOK_KINDS: Final = frozenset({"shopify"})
WRITES: Final[Mapping[str, bytes]] = {
    # Bytes only a writing request to each kind holds: a Tryton create, a Shopify mutation.
    "tryton": b'.create"',
    "shopify": b"mutation",
}
_LENGTH = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)?$")
_SYSTEM = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
SYNTAX: Final = "FAULT[:SYSTEM][:LENGTH][@START][,OPTION=VALUE...], e.g. erp-down:20s@30s"


class ScenarioError(SeamlineError):
    """A scenario that cannot be played, and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One fault, when it starts and how long it lasts (seconds into the run)."""

    fault: str
    system: str | None = None
    start: float = 0.0
    length: float = 0.0
    retry_after: float = 1.0
    status: int = 503
    delay: float | None = None
    """`slow`: how long an answer is held; None: the system's timeout plus a second."""
    writes_only: bool = True
    rate: float = DEFAULT_RATE
    count: int | None = None
    """`malformed`: break the webhooks of this many new orders, at `start`, instead of a rate."""
    text: str = ""

    @property
    def end(self) -> float:
        return self.start + self.length

    def __str__(self) -> str:
        return self.text or self.fault


def parse_scenario(text: str) -> Scenario:
    """The scenario `text` names; `ScenarioError` saying what is wrong and how to write it."""
    spec = text.strip()
    if not spec:
        raise ScenarioError(f"an empty scenario; write {SYNTAX}")
    head, *option_texts = spec.split(",")
    when, at, start_text = head.partition("@")
    fault, *parts = when.split(":")
    system: str | None = None
    if fault.endswith("-down") and fault not in FAULTS and len(fault) > 5:
        fault, system = "down", fault[: -len("-down")]
    if fault not in FAULTS:
        raise ScenarioError(
            f"{spec!r}: unknown fault {fault!r}; known: {', '.join(FAULTS)}, or SYSTEM-down"
        )
    length_text: str | None = None
    for part in parts:
        if _LENGTH.match(part):
            if length_text is not None:
                raise ScenarioError(f"{spec!r}: two lengths ({length_text}, {part})")
            length_text = part
        elif _SYSTEM.match(part):
            if system is not None or length_text is not None:
                raise ScenarioError(
                    f"{spec!r}: {part!r} out of place; write {SYNTAX}"
                    if length_text is not None
                    else f"{spec!r}: two systems ({system}, {part})"
                )
            system = part
        else:
            raise ScenarioError(
                f"{spec!r}: {part!r} is neither a system nor a length like 20s; write {SYNTAX}"
            )
    start = _duration(spec, "start", start_text) if at else 0.0
    length = _duration(spec, "length", length_text) if length_text is not None else None
    options = _options(spec, fault, option_texts)
    values: dict[str, object] = {}
    if "retry-after" in options:
        values["retry_after"] = _duration(spec, "retry-after", options["retry-after"])
    if "delay" in options:
        values["delay"] = _duration(spec, "delay", options["delay"])
    if "status" in options:
        values["status"] = _status(spec, options["status"])
    if "on" in options:
        if options["on"] not in ("writes", "all"):
            raise ScenarioError(f"{spec!r}: on= is `writes` or `all`, not {options['on']!r}")
        values["writes_only"] = options["on"] == "writes"
    if "rate" in options:
        values["rate"] = _rate(spec, options["rate"])
    if "count" in options:
        values["count"] = _count(spec, options["count"])

    if fault == "kill-hub":
        if system is not None:
            raise ScenarioError(f"{spec!r}: kill-hub names no system (there is one hub)")
        length = length or 0.0
    elif fault == "malformed" and "count" in values:
        if length is not None or "rate" in values:
            raise ScenarioError(f"{spec!r}: malformed takes count=N or a length with a rate")
        length = 0.0
    elif length is None:
        raise ScenarioError(f"{spec!r}: {fault} needs a length, e.g. {fault}:SYSTEM:10s@5s")
    elif length <= 0:
        raise ScenarioError(f"{spec!r}: a length of 0 plays nothing")
    if fault != "kill-hub" and system is None:
        raise ScenarioError(f"{spec!r}: {fault} needs a system, e.g. {fault}:erp:10s@5s")
    return Scenario(fault=fault, system=system, start=start, length=length, text=spec, **values)  # type: ignore[arg-type]  # the values are typed by the checks above


def parse_scenarios(texts: Iterable[str]) -> list[Scenario]:
    return [parse_scenario(t) for t in texts]


def _duration(spec: str, what: str, text: str) -> float:
    try:
        return parse_duration(text.strip())
    except ValueError:
        raise ScenarioError(
            f"{spec!r}: {what} {text!r} is not a duration like 250ms, 20s, 2m"
        ) from None


def _options(spec: str, fault: str, texts: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    allowed = OPTIONS[fault]
    for text in texts:
        name, eq, value = text.partition("=")
        name = name.strip()
        if not eq or not name or not value.strip():
            raise ScenarioError(f"{spec!r}: option {text!r} is not NAME=VALUE")
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "none"
            raise ScenarioError(f"{spec!r}: {fault} has no option {name!r} (it takes: {takes})")
        if name in found:
            raise ScenarioError(f"{spec!r}: option {name} given twice")
        found[name] = value.strip()
    return found


def _status(spec: str, text: str) -> int:
    if not text.isdigit() or not 400 <= int(text) <= 599:
        raise ScenarioError(f"{spec!r}: status is an HTTP error status (400-599), not {text!r}")
    return int(text)


def _rate(spec: str, text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 < rate <= 1.0:
        raise ScenarioError(f"{spec!r}: rate is a share above 0 and at most 1, not {text!r}")
    return rate


def _count(spec: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ScenarioError(f"{spec!r}: count is a whole number of at least 1, not {text!r}")
    return int(text)


class Levers(Protocol):
    """What a running landscape lets chaos pull."""

    async def cut(self, system: str) -> None: ...

    def restore(self, system: str) -> None: ...

    def http_faults(self, system: str) -> HttpFaultProxy: ...

    def shop(self, system: str) -> ShopifySimulator: ...

    def timeout(self, system: str) -> float: ...

    def write_marker(self, system: str) -> bytes | None:
        """Bytes only the system's writing requests hold (None: every request writes)."""
        ...

    def send_malformed(self, system: str, count: int) -> None: ...

    async def kill_hub(self) -> None: ...

    async def start_hub(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChaosEvent:
    at: float
    scenario: str
    what: str


@dataclass
class Chaos:
    """Scenarios in play: `check` them against the systems, then `tick` them as time passes."""

    scenarios: Sequence[Scenario]
    events: list[ChaosEvent] = field(default_factory=list)
    _started: set[int] = field(default_factory=set)
    _ended: set[int] = field(default_factory=set)

    @property
    def kills_hub(self) -> bool:
        return any(s.fault == "kill-hub" for s in self.scenarios)

    @property
    def last_end(self) -> float:
        return max((s.end for s in self.scenarios), default=0.0)

    def check(self, kinds: Mapping[str, str]) -> None:
        """Every scenario's system exists and is of a kind its fault plays on."""
        for s in self.scenarios:
            if s.system is None:
                continue
            kind = kinds.get(s.system)
            if kind is None:
                raise ScenarioError(
                    f"{s}: no system {s.system!r} in the project (it has: {', '.join(kinds)})"
                )
            if s.fault in HTTP_FAULTS and kind not in HTTP_KINDS:
                raise ScenarioError(
                    f"{s}: {s.fault} plays on HTTP answers; {s.system} is {kind} "
                    f"(use {s.system}-down, or one of: "
                    f"{', '.join(n for n, k in kinds.items() if k in HTTP_KINDS)})"
                )
            if s.fault in WEBHOOK_FAULTS and kind not in WEBHOOK_KINDS:
                raise ScenarioError(
                    f"{s}: {s.fault} plays on webhooks a simulator sends; {s.system} is {kind}"
                )

    def active(self, elapsed: float) -> list[Scenario]:
        return [
            s
            for i, s in enumerate(self.scenarios)
            if i in self._started and (i not in self._ended or s.start <= elapsed < s.end)
        ]

    async def tick(self, elapsed: float, levers: Levers) -> None:
        """Begin what is due, end what is over."""
        for i, s in enumerate(self.scenarios):
            if i not in self._started and elapsed >= s.start:
                self._started.add(i)
                await self._begin(s, levers, elapsed)
            if i in self._started and i not in self._ended and elapsed >= s.end:
                self._ended.add(i)
                await self._end(s, levers, elapsed)

    async def finish(self, levers: Levers, elapsed: float) -> None:
        """End every scenario still in play (the run stops early, or drains)."""
        for i, s in enumerate(self.scenarios):
            if i in self._started and i not in self._ended:
                self._ended.add(i)
                await self._end(s, levers, elapsed)

    def _log(self, at: float, s: Scenario, what: str) -> None:
        self.events.append(ChaosEvent(round(at, 2), str(s), what))

    async def _begin(self, s: Scenario, levers: Levers, at: float) -> None:
        system = s.system or ""
        if s.fault == "down":
            await levers.cut(system)
            self._log(at, s, f"{system} cut off for {s.length:g} s")
        elif s.fault in HTTP_FAULTS:
            kind = HTTP_FAULTS[s.fault]
            proxy = levers.http_faults(system)
            writes = s.fault in ("slow", "lose-answer") and s.writes_only
            match = levers.write_marker(system) if writes else None
            if s.fault == "throttle":
                proxy.inject(kind, seconds=s.length, retry_after=s.retry_after)
            elif s.fault == "errors":
                proxy.inject(kind, seconds=s.length, status=s.status)
            elif s.fault == "slow":
                delay = s.delay if s.delay is not None else levers.timeout(system) + 1.0
                proxy.inject(kind, seconds=s.length, delay=delay, match=match)
            else:
                proxy.inject(kind, seconds=s.length, match=match)
            self._log(at, s, f"{system}: {s.fault} for {s.length:g} s")
        elif s.fault in WEBHOOK_FAULTS:
            if s.count is not None:
                levers.send_malformed(system, s.count)
                self._log(at, s, f"{system}: {s.count} malformed webhook(s) sent")
            else:
                levers.shop(system).set_faults(**{WEBHOOK_FAULTS[s.fault]: s.rate})
                self._log(at, s, f"{system}: {s.rate:.0%} {s.fault} webhooks for {s.length:g} s")
        elif s.fault == "kill-hub":
            await levers.kill_hub()
            self._log(at, s, "hub killed (SIGKILL)")
            if s.length == 0:
                await levers.start_hub()
                self._log(at, s, "hub restarted on the same journal")

    async def _end(self, s: Scenario, levers: Levers, at: float) -> None:
        system = s.system or ""
        others = [
            o
            for i, o in enumerate(self.scenarios)
            if o is not s and i in self._started and i not in self._ended
        ]
        same = [o for o in others if o.fault == s.fault and o.system == s.system]
        if s.fault == "down" and not same:
            levers.restore(system)
            self._log(at, s, f"{system} reachable again")
        elif s.fault in WEBHOOK_FAULTS and s.count is None:
            rate = max((o.rate for o in same if o.count is None), default=0.0)
            levers.shop(system).set_faults(**{WEBHOOK_FAULTS[s.fault]: rate})
        elif s.fault == "kill-hub" and s.length > 0:
            await levers.start_hub()
            self._log(at, s, "hub restarted on the same journal")
