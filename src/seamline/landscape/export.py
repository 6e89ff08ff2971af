"""The register as Markdown (one page: the map, the top risks, one contract per integration)
and as JSON (the same facts, for other tools)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from seamline.landscape.register import Integration, Register
from seamline.landscape.risk import Risk

TOP = 5


def as_json(register: Register, risks: Mapping[str, Risk]) -> dict[str, Any]:
    return {
        "systems": [
            {
                "name": s.name,
                "kind": s.kind,
                "owner": s.owner,
                "criticality": s.criticality,
                "description": s.description,
                "api_version": s.api_version,
            }
            for s in register.systems.values()
        ],
        "integrations": [
            {
                "name": i.name,
                "kind": i.kind,
                "monitored": i.monitored,
                "source": i.source,
                "target": i.target,
                "owner": i.owner,
                "criticality": i.criticality,
                "trigger": i.trigger,
                "sla": i.sla,
                "purpose": i.purpose,
                "file": i.file,
                "changed_at": _date(i.changed_at),
                "checked_by": list(i.checked_by),
                "api_versions": dict(i.api_versions),
                "contract": dict(i.contract),
                "risk": {"score": risks[i.name].score, "reasons": list(risks[i.name].reasons)},
            }
            for i in register.integrations.values()
        ],
    }


def as_markdown(register: Register, risks: Mapping[str, Risk], *, title: str) -> str:
    out = [f"# Integration landscape: {title}", ""]
    out += ["## Systems", "", "| system | kind | owner | criticality | API version |"]
    out.append("|---|---|---|---|---|")
    for s in register.systems.values():
        out.append(
            f"| {s.name} | {s.kind} | {s.owner or '**none**'} | {s.criticality} | "
            f"{s.api_version or '-'} |"
        )
    out += ["", "## Integrations", ""]
    out.append("| integration | from → to | trigger | owner | criticality | SLA | risk |")
    out.append("|---|---|---|---|---|---|---|")
    by_risk = sorted(register.integrations.values(), key=lambda i: -risks[i.name].score)
    for i in by_risk:
        where = "" if i.monitored else " (outside the hub)"
        out.append(
            f"| [{i.name}](#{i.name}){where} | {i.source} → {i.target} | {i.trigger} | "
            f"{i.owner or '**none**'} | {i.criticality} | {i.sla or '**none**'} | "
            f"{risks[i.name].score} |"
        )
    risky = [i for i in by_risk if risks[i.name].reasons][:TOP]
    if risky:
        out += ["", "## Top risks", ""]
        for n, i in enumerate(risky, 1):
            out.append(
                f"{n}. **{i.name}** ({risks[i.name].score}): " + "; ".join(risks[i.name].reasons)
            )
    for i in register.integrations.values():
        out += ["", *_contract(i, risks[i.name])]
    return "\n".join(out) + "\n"


def _contract(i: Integration, risk: Risk) -> list[str]:
    lines = [f"## {i.name}", ""]
    if i.purpose:
        lines += [i.purpose, ""]
    facts = [
        ("runs", "in the hub" if i.monitored else "outside the hub, unmonitored"),
        ("from → to", f"{i.source} → {i.target}"),
        ("trigger", i.trigger),
        ("owner", i.owner or "none"),
        ("criticality", i.criticality),
        ("SLA", i.sla or "none"),
        ("checked by", ", ".join(i.checked_by) or "no check"),
        ("vendor APIs", ", ".join(f"{k} {v}" for k, v in i.api_versions.items()) or "-"),
        ("last changed", _date(i.changed_at) or "unknown"),
        ("file", f"`{i.file}`"),
        ("risk", f"{risk.score} ({risk.level})"),
    ]
    c = i.contract
    if c:
        facts += [
            ("events", ", ".join(c["events"])),
            ("only when", ", ".join(f"{k} = {v}" for k, v in c["filter"].items()) or "always"),
            ("operation", c["operation"]),
            ("fields", ", ".join(c["fields"]) or "-"),
            ("mapping code", c["function"] or "-"),
            ("ordering", f"per {c['ordering']}" if c["ordering"] else "none"),
            (
                "retries",
                f"{c['retry']['attempts']} attempts within {c['retry']['max_age']} "
                f"({', '.join(c['retry']['schedule'])})",
            ),
            ("version", f"`{c['version']}`"),
        ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts)]
    for name, values in (c.get("value_maps") or {}).items():
        pairs = ", ".join(f"{k} → {v}" for k, v in values.items())
        lines += ["", f"Value map `{name}`: {pairs}"]
    if risk.reasons:
        lines += ["", "Risks: " + "; ".join(risk.reasons) + "."]
    return lines


def _date(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.datetime.fromtimestamp(when, datetime.UTC).date().isoformat()
