"""The error tree. Every failure in Seamline is one of these, and the class carries the decision.

```
SeamlineError
├── ProjectError       a project file is wrong: found by `seamline check` or at start
├── JournalError       the journal cannot be used: wrong pragmas, disk full, another hub on it
│   └── JournalBusy        more is waiting for the journal than it may queue: answer 503, retry
├── ContractError      data broke an agreement: bad signature, schema violation, unmapped value
│   └── SignatureError     the request is not from the system it claims (forged, stale, unsigned)
├── TransientError     may succeed later: timeout, refused, 408/425/429/5xx; carries retry_after
│   ├── ThrottledError     the target asked us to slow down: hold, burn no attempt
│   └── UnknownOutcomeError  the request may have been applied (timeout after send); retry only
│                            where the target honours an idempotency key, else needs review
└── PermanentError     will not succeed as sent: 400/401/403/404/409/422
Skip                   not an error: this flow ignores the message, and says why
```

An exception that is none of these, raised by our own code or a mapping function, is a *bug*:
the worker keeps the traceback and retries on the flow's schedule (a fix and a restart usually
follow), without tripping the target's circuit breaker.
"""

from __future__ import annotations

from dataclasses import dataclass


class SeamlineError(Exception):
    """Base of every error Seamline raises on purpose."""


class ProjectError(SeamlineError):
    """A project file is wrong. Carries every problem found, each with file, line and a fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a project: where it is and what to do about it."""

    file: str
    line: int | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" + (f" ({self.fix})" if self.fix else "")


class JournalError(SeamlineError):
    """The journal cannot be used safely; the hub refuses to start or to acknowledge."""


class JournalBusy(JournalError):
    """The journal's queue is full or a commit is overdue; nothing was acknowledged."""


class ContractError(SeamlineError):
    """Data broke an agreement: the source's payload contract, a target's, or a value map."""


class SignatureError(ContractError):
    """A webhook's authenticity could not be established. The request is refused, not journaled."""


class TransientError(SeamlineError):
    """May succeed later. ``retry_after`` (seconds) is the target's own hint, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """The target is over its budget: wait ``retry_after`` without burning an attempt."""


class UnknownOutcomeError(TransientError):
    """The request left us and no answer came back: it may or may not have been applied."""


class PermanentError(SeamlineError):
    """Will not succeed as sent. The delivery goes to dead letters with this message."""


class Skip(Exception):
    """This flow does not apply the message; ``reason`` says why and is recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
