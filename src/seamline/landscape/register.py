"""The register: every system and every integration, from the project files.

Integrations are the hub's flows and the ones declared outside it (`landscape/*.yaml`).
Each entry says what an auditor or a new colleague asks first: who owns it, how critical it
is, which way data goes and what starts it, what it promises (SLA), which vendor API version
it speaks, whether a check watches it, and when it last changed.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamline.checks.spec import CheckSpec
from seamline.landscape.external import Criticality, ExternalSpec
from seamline.project import Flow, Project, System

CRITICALITY: tuple[Criticality, ...] = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class SystemEntry:
    name: str
    kind: str
    """The connector kind, or `external` for a system named only in `landscape/`."""
    owner: str | None
    criticality: Criticality
    description: str = ""
    api_version: str | None = None


@dataclass(frozen=True, slots=True)
class Integration:
    name: str
    kind: str
    """`flow` (runs in the hub, monitored) or `external` (declared, not monitored)."""
    source: str
    target: str
    owner: str | None
    criticality: Criticality
    trigger: str
    sla: str | None
    """The promise in words; None when the file makes none."""
    purpose: str
    file: str
    changed_at: float | None
    checked_by: tuple[str, ...] = ()
    api_versions: Mapping[str, str] = field(default_factory=dict)
    contract: Mapping[str, Any] = field(default_factory=dict)
    """For a flow: events, operation, mapping fields, value maps, ordering, retry."""

    @property
    def monitored(self) -> bool:
        return self.kind == "flow"


@dataclass(frozen=True, slots=True)
class Register:
    systems: dict[str, SystemEntry]
    integrations: dict[str, Integration]


def build(
    project: Project,
    *,
    externals: Mapping[str, ExternalSpec] | None = None,
    checks: Mapping[str, CheckSpec] | None = None,
    changed: Callable[[Path], float | None] | None = None,
) -> Register:
    """The register of `project`, with the integrations outside it and the checks on it."""
    changed = changed or last_change
    externals = externals or {}
    checks = checks or {}
    systems = {name: _system(system) for name, system in project.systems.items()}
    integrations: dict[str, Integration] = {}
    for name, flow in sorted(project.flows.items()):
        integrations[name] = _flow(name, flow, project, checks, changed)
    for name, spec in sorted(externals.items()):
        for system in (spec.source, spec.target):
            systems.setdefault(system, SystemEntry(system, "external", None, spec.criticality))
        path = project.dir / "landscape" / f"{name}.yaml"
        when = (
            datetime.datetime.combine(spec.changed, datetime.time(), datetime.UTC).timestamp()
            if spec.changed
            else None
        )
        integrations[name] = Integration(
            name=name,
            kind="external",
            source=spec.source,
            target=spec.target,
            owner=spec.owner,
            criticality=spec.criticality,
            trigger=spec.trigger,
            sla=spec.sla,
            purpose=spec.purpose,
            file=str(path.relative_to(project.dir)),
            changed_at=when,
            checked_by=_checked_by(spec.source, spec.target, checks),
        )
    return Register(systems, integrations)


def last_change(path: Path) -> float | None:
    """When the file last changed: its last commit in git if it has one, else its mtime."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip().isdigit():
        return float(out.stdout.strip())
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _system(system: System) -> SystemEntry:
    version = getattr(system.options, "api_version", None)
    return SystemEntry(
        name=system.name,
        kind=system.spec.kind,
        owner=system.spec.owner,
        criticality=system.spec.criticality,
        description=system.spec.description,
        api_version=str(version) if version else None,
    )


def _flow(
    name: str,
    flow: Flow,
    project: Project,
    checks: Mapping[str, CheckSpec],
    changed: Callable[[Path], float | None],
) -> Integration:
    spec = flow.spec
    source, target = project.systems[spec.source.system], project.systems[spec.target.system]
    criticality = max(source.spec.criticality, target.spec.criticality, key=CRITICALITY.index)
    versions = {
        s.name: str(v) for s in (source, target) if (v := getattr(s.options, "api_version", None))
    }
    sla = None
    if "sla" in spec.model_fields_set:
        sla = f"delivered within {_duration(spec.sla.deliver_within)}"
    path = project.dir / "flows" / f"{name}.yaml"
    return Integration(
        name=name,
        kind="flow",
        source=source.name,
        target=target.name,
        owner=spec.owner,
        criticality=criticality,
        trigger=_trigger(source, spec.source.events),
        sla=sla,
        purpose=" ".join(spec.purpose.split()),
        file=str(path.relative_to(project.dir)),
        changed_at=changed(path),
        checked_by=_checked_by(source.name, target.name, checks),
        api_versions=versions,
        contract={
            "events": list(spec.source.events),
            "filter": dict(spec.source.filter),
            "operation": spec.target.operation,
            "fields": sorted(spec.mapping.fields),
            "function": spec.mapping.function,
            "value_maps": {k: dict(v) for k, v in spec.value_maps.items()},
            "ordering": spec.ordering.key if spec.ordering else None,
            "coalesce": spec.coalesce,
            "retry": {
                "attempts": flow.retry.max_attempts,
                "max_age": _duration(flow.retry.max_age),
                "schedule": [_duration(w) for w in flow.retry.schedule],
            },
            "version": flow.version,
        },
    )


def _trigger(source: System, events: list[str]) -> str:
    poll = getattr(source.options, "poll", None)
    every = f"every {_duration(poll.interval)}" if poll is not None else ""
    what = ", ".join(events)
    if source.spec.kind == "sftp_csv":
        return f"files polled {every} ({what})".replace("  ", " ")
    said = f"webhook ({what})"
    return f"{said}, catch-up poll {every}" if every else said


def _checked_by(a: str, b: str, checks: Mapping[str, CheckSpec]) -> tuple[str, ...]:
    return tuple(
        sorted(
            name
            for name, check in checks.items()
            if {check.left.system, check.right.system} == {a, b}
        )
    )


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
