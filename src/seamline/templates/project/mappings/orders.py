"""What the field rules cannot say: computed values. Called after the rules, per delivery."""

from typing import Any


def finish(event: dict[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
    mapped["line_count"] = len(mapped.get("lines", []))
    return mapped
