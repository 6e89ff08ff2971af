"""What a flow would send for an event, worked out the way the hub does, and nothing sent.

The same steps as a real delivery, in order: the flow's filter (an event it leaves out is
`not_routed`), its ordering key and stale version (missing: `rejected`), its mapping and
mapping function (`Skip`: `skipped`; a contract violation: `rejected`). Whatever passes is
`send`: the operation and the body the target's connector would get. Flow tests
(`seamline test`) and change previews (`seamline plan`) both stand on this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from seamline.connectors.base import Event
from seamline.engine.router import Router
from seamline.errors import ContractError, Skip
from seamline.project import Flow

Outcome = Literal["send", "skipped", "rejected", "not_routed"]


@dataclass(frozen=True, slots=True)
class Preview:
    outcome: Outcome
    operation: str | None = None
    body: Any = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The shape of an `.expected.json` flow case."""
        if self.outcome == "send":
            return {"operation": self.operation, "body": self.body}
        return {self.outcome: self.reason or ""}


def preview(flow: Flow, router: Router, event: Event) -> Preview:
    if event.name not in flow.spec.source.events:
        reason = f"the flow takes {', '.join(flow.spec.source.events)}, not {event.name}"
        return Preview("not_routed", reason=reason)
    try:
        delivery = router.delivery(flow, event)
    except ContractError as exc:
        return Preview("rejected", reason=str(exc))
    if delivery is None:
        return Preview("not_routed", reason="the flow's filter leaves it out")
    try:
        body = flow.mapping.apply(event.data)
    except Skip as skip:
        return Preview("skipped", reason=skip.reason)
    except ContractError as exc:
        return Preview("rejected", reason=str(exc))
    return Preview("send", operation=flow.spec.target.operation, body=body)
