"""What every registered connector declares, checked the same way for each kind."""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from seamline.connectors.base import Connector
from seamline.connectors.registry import CONNECTORS
from seamline.project import BudgetSpec

ENTITIES = {"stock", "price", "orders", "customers"}
KINDS = sorted(CONNECTORS)


@pytest.mark.parametrize("kind", KINDS)
def test_a_connector_declares_its_kind_options_operations_and_budget(kind: str) -> None:
    found: Connector = CONNECTORS[kind]

    assert found.kind == kind
    assert issubclass(found.options, BaseModel) and inspect.getdoc(found.options)
    assert found.operations, f"{kind} has no operation"
    for name, options in found.operations.items():
        assert name.isidentifier() and name == name.lower()
        assert issubclass(options, BaseModel)
        assert inspect.getdoc(options), f"{kind}.{name}: say what the operation does"
    BudgetSpec.model_validate(dict(found.default_budget))  # only keys a budget has


@pytest.mark.parametrize("kind", KINDS)
def test_a_connector_reads_only_entities_checks_know(kind: str) -> None:
    found = CONNECTORS[kind]
    options = _minimal_options(kind)
    if options is None:
        pytest.skip(f"{kind}: no minimal connection to build")
    reader = found.reader(kind, options)
    if reader is not None:
        assert set(reader.entities) <= ENTITIES, reader.entities
        assert reader.entities, f"{kind}: a reader lists something"


@pytest.mark.parametrize("kind", KINDS)
def test_check_says_what_a_connection_lacks_with_a_fix(kind: str) -> None:
    options = _minimal_options(kind)
    if options is None:
        pytest.skip(f"{kind}: no minimal connection to build")
    for role in ("source", "target"):
        for problem, fix in CONNECTORS[kind].check(options, role=role):  # type: ignore[arg-type]
            assert problem and fix, (kind, role, problem, fix)


def _minimal_options(kind: str) -> BaseModel | None:
    minimal = {
        "http": {"base_url": "http://127.0.0.1:9"},
        "shopify": {"shop": "x.myshopify.com"},
        "tryton": {"url": "http://127.0.0.1:9", "database": "d", "username": "u"},
        "sftp_csv": {"host": "127.0.0.1", "username": "u", "insecure_accept_any_host_key": True},
    }
    if kind not in minimal:
        return None
    return CONNECTORS[kind].options.model_validate(minimal[kind])
