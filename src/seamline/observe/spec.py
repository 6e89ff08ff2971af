"""The shapes of `alerts:` in a flow file and `notifiers:` in `seamline.yaml`.

```yaml
# flows/orders-to-erp.yaml
alerts:
  notify: [ops-slack, oncall]       # notifier names; none given: every notifier
  dead_letters: true                # any rule: false turns it off, a mapping tunes it
  failure_rate: {above: 10%, window: 15m, min_settled: 10}
  sla: {}                           # oldest open past the SLA (or `within: 10m`)
  backlog: {above: 500}             # default: more than the recent pace clears within the SLA
  silence: {after: 25m, days: mon-fri, hours: "08:00-20:00", timezone: Europe/Amsterdam,
            label: trading hours}   # off unless written
  volume: {below: 30%, above: 300%, weeks: 4, min: 20}
  circuit: true                     # the target's circuit is open
  deprecation: true                 # a vendor said a call or version is going away
  rejected: true                    # the source sent messages that broke its contract

# seamline.yaml
notifiers:
  ops-slack:
    kind: slack
    url: ${SLACK_WEBHOOK_URL}         # a reference: the URL holds a token
  pager:
    kind: webhook
    url: https://alerts.example.com/in
    secret: {file: secrets/pager.whsec}   # Standard Webhooks signing, whsec_...
  oncall:
    kind: email
    host: smtp.example.com            # port 587 and STARTTLS unless told otherwise
    username: alerts
    password: ${SMTP_PASSWORD}
    sender: hub@example.com
    to: [oncall@example.com]
```
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PlainValidator, field_validator, model_validator

from seamline.settings import Duration, Secret, SecretRef, Strict

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _fraction(value: Any) -> Any:
    """`10%` or `0.1`."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"{value!r} is not a percentage: write 10% or 0.1") from None
    return value


Fraction = Annotated[float, PlainValidator(lambda v: float(_number(_fraction(v))))]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number: write 10% or 0.1")
    if value < 0:
        raise ValueError("cannot be negative")
    return float(value)


class Rule(Strict):
    """An alert rule: `true`/`false` switches it, a mapping tunes it (and switches it on)."""

    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        if value is None:
            return {}
        return value


class FailureRateRule(Rule):
    above: Fraction = 0.1
    """Share of settled deliveries that went dead within the window."""
    window: Duration = Field(default=900.0, gt=0)
    min_settled: int = Field(default=10, ge=1)
    """Fewer settled deliveries in the window say nothing about a rate."""


class SlaRule(Rule):
    within: Duration | None = None
    """Fire when the oldest open delivery waited longer than this (default: the flow's SLA)."""


class BacklogRule(Rule):
    above: int | None = Field(default=None, ge=1)
    """Open deliveries that fire it. Default: more than `min` open, and more than the pace of
    the last `window` delivers within the SLA."""
    min: int = Field(default=100, ge=1)
    window: Duration = Field(default=600.0, gt=0)


class SilenceRule(Rule):
    after: Duration = Field(default=1800.0, gt=0)
    """No new deliveries for this long, within the schedule, fires it."""
    days: list[str] = Field(default_factory=lambda: list(DAYS))
    hours: str = "00:00-24:00"
    timezone: str = "UTC"
    label: str = ""
    """How the schedule reads in the alert: "trading hours" gives "... in trading hours"."""

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            first, sep, last = value.lower().partition("-")
            if first in DAYS and (not sep or last in DAYS):
                start, end = DAYS.index(first), DAYS.index(last if sep else first)
                return [DAYS[(start + i) % 7] for i in range((end - start) % 7 + 1)]
            raise ValueError(f"{value!r}: write days like mon-fri or [sat, sun]")
        if isinstance(value, list):
            bad = [d for d in value if str(d).lower() not in DAYS]
            if bad or not value:
                raise ValueError(f"days are {', '.join(DAYS)}; not {bad or 'empty'}")
            return [str(d).lower() for d in value]
        raise ValueError("write days like mon-fri or [sat, sun]")

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        hours(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: write one like Europe/Amsterdam"
            ) from None
        return value


def hours(text: str) -> tuple[int, int]:
    """`08:00-20:00` as minutes of the day, start inclusive, end exclusive."""
    match = _HOURS.match(text)
    if not match:
        raise ValueError(f"{text!r}: write hours like 08:00-20:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60 or start >= end:
        raise ValueError(f"{text!r}: write hours like 08:00-20:00, start before end")
    return start, end


class VolumeRule(Rule):
    below: Fraction = 0.3
    """Fire when an hour had less than this share of the same hour's average in past weeks."""
    above: Fraction | None = 3.0
    weeks: int = Field(default=4, ge=1, le=8)
    min: int = Field(default=20, ge=1)
    """Past weeks' average for that hour below this: too few to judge."""


class AlertsSpec(Strict):
    """A flow's `alerts:`; every rule is on by default (silence: off) with SLA-derived limits."""

    notify: list[str] | None = None
    dead_letters: Rule = Rule()
    failure_rate: FailureRateRule = FailureRateRule()
    sla: SlaRule = SlaRule()
    backlog: BacklogRule = BacklogRule()
    silence: SilenceRule = SilenceRule(enabled=False)
    volume: VolumeRule = VolumeRule()
    circuit: Rule = Rule()
    deprecation: Rule = Rule()
    rejected: Rule = Rule()

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if value is False:
            return {name: False for name in RULES}
        return {} if value is None or value is True else value


RULES = (
    "dead_letters",
    "failure_rate",
    "sla",
    "backlog",
    "silence",
    "volume",
    "circuit",
    "deprecation",
    "rejected",
)


def _secret_or_text(value: Any) -> Secret | str:
    if isinstance(value, Secret | str):
        return value
    raise ValueError("write a URL, or ${VARIABLE} / {file: path} to keep it out of the file")


SecretOrText = Annotated[Secret | str, PlainValidator(_secret_or_text)]


def reveal(value: Secret | str) -> str:
    return value.reveal() if isinstance(value, Secret) else value


class NotifierBase(Strict):
    retries: int = Field(default=3, ge=0, le=10)
    """Further tries after a failed send, waiting `backoff`, then twice that, and so on."""
    backoff: Duration = 1.0
    timeout: Duration = 10.0


class WebhookNotifier(NotifierBase):
    """A JSON POST; signed as Standard Webhooks when `secret` (`whsec_...`) is given."""

    kind: Literal["webhook"]
    url: SecretOrText
    secret: SecretRef | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class SlackNotifier(NotifierBase):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat)."""

    kind: Literal["slack"]
    url: SecretOrText
    blocks: bool = True


class EmailNotifier(NotifierBase):
    kind: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool | None = None
    """Upgrade the plain connection with STARTTLS (default: yes, unless `tls`)."""
    tls: bool = False
    """Implicit TLS from the first byte (port 465)."""
    ca_file: str | None = None
    """A CA bundle to trust besides the system's (a relay with an internal certificate)."""
    username: str | None = None
    password: SecretRef | None = None
    sender: str
    to: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_tls(self) -> EmailNotifier:
        if self.tls and self.starttls:
            raise ValueError("tls (implicit, port 465) and starttls exclude each other")
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together, or neither")
        return self

    @property
    def use_starttls(self) -> bool:
        return not self.tls if self.starttls is None else self.starttls


NotifierSpec = Annotated[
    WebhookNotifier | SlackNotifier | EmailNotifier, Field(discriminator="kind")
]

NOTIFIER_KINDS: dict[str, type[WebhookNotifier | SlackNotifier | EmailNotifier]] = {
    "webhook": WebhookNotifier,
    "slack": SlackNotifier,
    "email": EmailNotifier,
}
