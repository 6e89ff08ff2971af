"""Hub settings: `seamline.yaml`, overridden by `SEAMLINE_*` variables.

This is the only module that reads the process environment. Secrets in project files are
references (`${NAME}` or `{file: path}`), resolved here into `Secret` values that never print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, model_validator

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SIZES = {"": 1, "b": 1, "kib": 1024, "kb": 1000, "mib": 1024**2, "mb": 1000**2, "gib": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


def is_postgres(url: str) -> bool:
    """A journal URL that names a PostgreSQL database (anything else is a SQLite file)."""
    return url.startswith(("postgresql://", "postgres://"))


class Secret:
    """A credential. Its text is reachable only through `reveal()`; repr and str hide it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _require_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    raise ValueError("write secrets as ${VARIABLE} or {file: path}, never as text in the file")


SecretRef = Annotated[Secret, PlainValidator(_require_secret)]
"""A credential in a connector's options: resolved by the project loader from `${VAR}` or
`{file: path}`; literal text is refused."""


class SecretMissing(Exception):
    """A secret reference could not be resolved; the message says which and how to fix it."""


def is_secret_ref(value: object) -> bool:
    """True if `value` is written as a secret reference rather than literal text."""
    if isinstance(value, str):
        return bool(_ENV_REF.match(value))
    return isinstance(value, dict) and set(value) == {"file"}


def resolve_secret(
    ref: object, *, base_dir: Path, environ: Mapping[str, str] | None = None
) -> Secret:
    """Resolve `${NAME}` from the environment or `{file: path}` (relative to the project)."""
    env = os.environ if environ is None else environ
    if isinstance(ref, str):
        match = _ENV_REF.match(ref)
        if not match:
            raise SecretMissing(
                "a secret must be a reference, not literal text: write ${VARIABLE} or {file: path}"
            )
        name = match.group(1)
        if name not in env or not env[name]:
            raise SecretMissing(f"environment variable {name} is not set")
        return Secret(env[name])
    if isinstance(ref, dict) and set(ref) == {"file"}:
        path = Path(str(ref["file"]))
        path = path if path.is_absolute() else base_dir / path
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretMissing(f"secret file {path} cannot be read ({exc.strerror})") from None
        if not text:
            raise SecretMissing(f"secret file {path} is empty")
        return Secret(text)
    raise SecretMissing("a secret must be ${VARIABLE} or {file: path}")


def parse_duration(value: object) -> float:
    """Seconds from `10`, `1.5`, `250ms`, `10s`, `5m`, `2h`, `30d`."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 10s, 5m, 2h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration: write seconds or text like 10s, 5m, 2h, 7d")


def parse_size(value: object) -> int:
    """Bytes from `1048576`, `1MiB`, `512KiB`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match and match.group(2).lower() in _SIZES:
            return int(match.group(1)) * _SIZES[match.group(2).lower()]
    raise ValueError(f"{value!r} is not a size: write bytes or text like 512KiB, 1MiB")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class Strict(BaseModel):
    """Every settings and project model rejects keys it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Retention(Strict):
    payloads: Duration = Field(default=30 * 86400.0, gt=0)
    """Bodies, headers and attempt bodies older than this are purged; ids, keys, outcomes stay."""


class IngestSettings(Strict):
    max_body: Size = Field(default=1024 * 1024, gt=0)
    max_pending: int = Field(default=20_000, gt=0)
    """Messages waiting for the journal before ingest answers 503 instead of queueing more."""
    ack_timeout: Duration = 5.0
    """Longest a webhook waits for its commit before it is answered 503 (and is safe to resend)."""


class WorkerSettings(Strict):
    batch: int = Field(default=100, gt=0, le=1000)
    lease: Duration = Field(default=60.0, gt=0)
    loops: int = Field(default=2, gt=0, le=16)
    """Claim-deliver-ack loops per target system, so journal work overlaps network waits."""
    processes: int = Field(default=0, ge=0, le=16)
    """Deliver from this many processes of their own, which `seamline run` starts, wakes and
    restarts (0: deliver in the hub's process). On a machine with two or more cores, 1 lets
    ingest and delivery each have a core. A SQLite journal takes at most 1: the budgets of the
    target systems are kept in the one process that delivers."""


class ConsoleSettings(Strict):
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+/?$")
    """The console's address as people reach it (`https://hub.example.com`) when a proxy in front
    terminates HTTPS: its origin passes the CSRF check and session cookies are `Secure`."""


class TraceSettings(Strict):
    endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    """An OTLP/HTTP collector (`http://127.0.0.1:4318`): each delivery attempt becomes a span.
    Without it, an incoming `traceparent` is still carried on to the targets."""
    service: str | None = None
    """The service name on the spans (default: the hub's `name`)."""


class TelemetrySettings(Strict):
    traces: TraceSettings = TraceSettings()


class HubSettings(Strict):
    """`seamline.yaml`."""

    name: str = "seamline"
    journal: str = "journal.db"
    listen: str = "127.0.0.1:8000"
    retention: Retention = Retention()
    ingest: IngestSettings = IngestSettings()
    worker: WorkerSettings = WorkerSettings()
    console: ConsoleSettings = ConsoleSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    log_level: str = "info"

    @model_validator(mode="after")
    def _one_delivering_process_on_sqlite(self) -> HubSettings:
        if self.worker.processes > 1 and not is_postgres(self.journal):
            raise ValueError(
                f"worker.processes is {self.worker.processes}, but a SQLite journal takes at most "
                "1 (the rate budgets and circuits of the targets are kept in the process that "
                "delivers); use 1, or a PostgreSQL journal for more"
            )
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "127.0.0.1", int(port)

    def journal_path(self, project_dir: Path) -> Path:
        """The SQLite file: `sqlite:///abs`, `sqlite:rel` or a path relative to the project."""
        url = self.journal
        for prefix in ("sqlite:///", "sqlite://", "sqlite:"):
            if url.startswith(prefix):
                url = ("/" if prefix == "sqlite:///" else "") + url[len(prefix) :]
                break
        path = Path(url)
        return path if path.is_absolute() else project_dir / path


ENV_OVERRIDES = {
    "SEAMLINE_JOURNAL_URL": "journal",
    "SEAMLINE_LISTEN": "listen",
    "SEAMLINE_LOG_LEVEL": "log_level",
}


def environment_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings given as `SEAMLINE_*` variables; they win over `seamline.yaml`."""
    env = os.environ if environ is None else environ
    return {key: env[var] for var, key in ENV_OVERRIDES.items() if env.get(var)}


def default_project_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("SEAMLINE_PROJECT", "."))


def operator_name(environ: Mapping[str, str] | None = None) -> str:
    """Who runs an operator command, for the audit log."""
    env = os.environ if environ is None else environ
    return env.get("SEAMLINE_ACTOR") or env.get("SUDO_USER") or env.get("USER") or "unknown"


def editor(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("VISUAL") or env.get("EDITOR") or "vi"
