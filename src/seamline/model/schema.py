"""The canonical model's JSON Schemas: one file per entity, committed beside this module.

`python -m seamline.model.schema` rewrites `schema/*.json`; `check()` names the files that are
out of date (a test keeps them current). Each schema is the validation schema of one entity
(JSON Schema 2020-12), with `$id` `https://seamline.dev/schema/v<MODEL_VERSION>/<entity>.json`.
Files are written with sorted keys, a 2-space indent and a trailing newline, so that the same
model always gives the same bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from seamline.model.address import Address
from seamline.model.base import MODEL_VERSION, Entity
from seamline.model.catalog import Price, Product, Variant
from seamline.model.customer import Customer
from seamline.model.fulfillment import Fulfillment
from seamline.model.inventory import InventoryLevel
from seamline.model.order import Order
from seamline.model.refund import Refund

__all__ = ["ENTITIES", "SCHEMA_DIR", "check", "export", "render", "schema_of"]

ENTITIES: Final[tuple[type[Entity], ...]] = (
    Order,
    Customer,
    Address,
    Product,
    Variant,
    Price,
    InventoryLevel,
    Fulfillment,
    Refund,
)
"""Every entity that has its own schema file."""

SCHEMA_DIR: Final = Path(__file__).parent / "schema"
"""Where the committed schema files live (package data)."""

_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def schema_of(model: type[Entity]) -> dict[str, Any]:
    """The JSON Schema of one entity, with its `$id`, `$schema` and `title`."""
    schema = model.model_json_schema(mode="validation")
    schema["$id"] = f"https://seamline.dev/schema/v{MODEL_VERSION}/{model.entity}.json"
    schema["$schema"] = _DIALECT
    schema["title"] = model.__name__
    return schema


def render(model: type[Entity]) -> str:
    """The exact text of an entity's schema file."""
    return json.dumps(schema_of(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _expected() -> dict[str, str]:
    return {f"{model.entity}.json": render(model) for model in ENTITIES}


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every entity's schema file into `directory` and delete other `*.json` there.

    Returns the paths written, in `ENTITIES` order.
    """
    directory.mkdir(parents=True, exist_ok=True)
    expected = _expected()
    for stale in sorted(directory.glob("*.json")):
        if stale.name not in expected:
            stale.unlink()
    written = []
    for name, text in expected.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of the schema files in `directory` that differ from the model, are missing, or
    belong to no entity; empty when all are current."""
    expected = _expected()
    present = {path.name: path for path in directory.glob("*.json")}
    out_of_date = [
        name
        for name, text in expected.items()
        if name not in present or present[name].read_text(encoding="utf-8") != text
    ]
    return sorted(out_of_date + [name for name in present if name not in expected])


def main() -> int:
    """Rewrite the committed schema files and list them."""
    for path in export():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
