"""The mapping of a flow: compiled once from its spec, applied to every event.

Cases as data live in `mapping_cases/` (apply.yaml, problems.yaml); mapping functions, which
need files, are tested here with files written to `tmp_path`.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml

from seamline.engine.mapping import (
    Mapping,
    MappingSpec,
    compile_mapping,
    read_path,
    uncovered_values,
)
from seamline.errors import ContractError, ProjectError, Skip

CASES = Path(__file__).parent / "mapping_cases"


def load_cases(name: str) -> list[Any]:
    cases: list[dict[str, Any]] = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["name"]) for case in cases]


def compile_fields(
    fields: dict[str, Any],
    value_maps: dict[str, dict[str, Any]] | None = None,
    *,
    function: str | None = None,
    project_dir: Path = Path("."),
) -> Mapping:
    spec = MappingSpec(fields=fields, function=function, value_maps=value_maps or {})
    return compile_mapping(spec, project_dir=project_dir, where="flows/orders.yaml")


def problems_of(
    fields: dict[str, Any],
    value_maps: dict[str, dict[str, Any]] | None = None,
    *,
    function: str | None = None,
    project_dir: Path = Path("."),
) -> list[str]:
    with pytest.raises(ProjectError) as raised:
        compile_fields(fields, value_maps, function=function, project_dir=project_dir)
    assert all(p.file == "flows/orders.yaml" for p in raised.value.problems)
    return [str(p) for p in raised.value.problems]


# --- field rules, as data ---------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("apply.yaml"))
def test_apply_case(case: dict[str, Any]) -> None:
    # Given a mapping compiled from the case's fields and value maps
    mapping = compile_fields(case["fields"], case.get("value_maps"))

    if "expect" in case:
        # When the event is applied, Then the target body is the expected one
        assert mapping.apply(case["event"]) == case["expect"]
    else:
        # When the event is applied, Then a ContractError says what and where
        with pytest.raises(ContractError) as raised:
            mapping.apply(case["event"])
        for fragment in case["error"]:
            assert fragment in str(raised.value)


@pytest.mark.parametrize("case", load_cases("problems.yaml"))
def test_spec_problem_case(case: dict[str, Any]) -> None:
    # Given a spec with mistakes
    # When it is compiled
    found = problems_of(case["fields"], case.get("value_maps"))

    # Then every mistake is one problem, in spec order, with its dotted path and a fix
    assert len(found) == len(case["problems"]), found
    for message, fragments in zip(found, case["problems"], strict=True):
        for fragment in fragments:
            assert fragment in message


def test_identity_mapping_returns_the_event_itself() -> None:
    # Given a mapping with neither fields nor a function
    mapping = compile_fields({})
    event = {"id": 1}

    # When an event is applied, Then the very same event comes back
    assert mapping.apply(event) is event


def test_constant_object_is_fresh_for_every_event() -> None:
    # Given a constant object field, and a first result that a later step changed
    mapping = compile_fields({"meta": {"value": {"tags": ["a"]}}})
    mapping.apply({})["meta"]["tags"].append("changed")

    # When the next event is applied, Then its constant is as the spec wrote it
    assert mapping.apply({}) == {"meta": {"tags": ["a"]}}


def test_compiled_mapping_does_not_read_the_spec_again() -> None:
    # Given a compiled mapping whose spec dict is changed afterwards
    fields: dict[str, Any] = {"order_id": "id"}
    mapping = compile_fields(fields)
    fields["order_id"] = "other"
    fields["extra"] = {"value": 1}

    # When an event is applied, Then the rules compiled at first still hold
    assert mapping.apply({"id": 7, "other": 8}) == {"order_id": 7}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("id", 7, id="top level"),
        pytest.param("order.number", "A-1", id="dotted"),
        pytest.param("line_items.1.sku", "B", id="list index"),
        pytest.param("line_items.2.sku", None, id="index past the end"),
        pytest.param("order.missing", None, id="absent"),
        pytest.param("note", None, id="null"),
        pytest.param("id.deeper", None, id="through a scalar"),
    ],
)
def test_read_path(path: str, expected: Any) -> None:
    # Given an event
    event = {"id": 7, "note": None, "order": {"number": "A-1"}, "line_items": [{}, {"sku": "B"}]}

    # When a path is read, Then it is the value there, or None when absent or null
    assert read_path(event, path) == expected


# --- value maps ---------------------------------------------------------------------------------


def test_value_maps_used_lists_every_mapped_path() -> None:
    # Given value-mapped fields at the top, inside each, and inside each inside each
    fields = {
        "order_type": {"from": "source_name", "map": "order_types"},
        "status": "financial_status",
        "lines": {
            "each": "line_items",
            "fields": {
                "kind": {"from": "fulfillment.status", "map": "kinds"},
                "parts": {
                    "each": "components",
                    "fields": {"kind": {"from": "type", "map": "kinds"}},
                },
            },
        },
    }
    maps = {"order_types": {"web": "B2C"}, "kinds": {"x": "X"}}

    # When it is compiled
    mapping = compile_fields(fields, maps)

    # Then each mapped source path is listed with its map, `each` paths written with []
    assert mapping.value_maps_used == [
        ("source_name", "order_types"),
        ("line_items[].fulfillment.status", "kinds"),
        ("line_items[].components[].type", "kinds"),
    ]


@pytest.mark.parametrize(
    ("value_map", "enumeration", "expected"),
    [
        pytest.param({"web": "B2C", "pos": "R"}, ["web", "pos"], [], id="all covered"),
        pytest.param(
            {"web": "B2C"}, ["web", "pos", "marketplace"], ["pos", "marketplace"], id="missing"
        ),
        pytest.param({"web": "B2C", "*": "OTHER"}, ["web", "pos"], [], id="catch-all covers all"),
        pytest.param({True: "Y", 2: "two"}, ["true", "2", "false"], ["false"], id="YAML keys"),
        pytest.param({}, ["a", "a", "b"], ["a", "b"], id="each missing value once"),
    ],
)
def test_uncovered_values(
    value_map: dict[str, Any], enumeration: list[str], expected: list[str]
) -> None:
    # Given a value map and the values a connector declares for its source path
    # When the uncovered values are asked for
    # Then they are the declared values the map does not map, in declared order
    assert uncovered_values(value_map, enumeration) == expected


# --- mapping functions --------------------------------------------------------------------------


def write_function(project: Path, body: str, file: str = "mappings/orders.py") -> None:
    path = project / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(body), encoding="utf-8")


FUNCTIONS = """
    from seamline.errors import ContractError, Skip

    def transform(event, mapped):
        return {**mapped, "lines": len(event["line_items"])}

    def echo(event, mapped):
        return {"mapped": mapped}

    def skip_tests(event, mapped):
        raise Skip("test order")

    def refuse(event, mapped):
        raise ContractError("no customer")

    def broken(event, mapped):
        return event["missing"]

    def forgets_return(event, mapped):
        mapped["x"] = 1

    def one_argument(event):
        return event
"""


def test_function_runs_after_the_field_rules(tmp_path: Path) -> None:
    # Given fields and a function in the project's mappings folder
    write_function(tmp_path, FUNCTIONS)
    mapping = compile_fields(
        {"order_id": "id"}, function="mappings/orders.py:transform", project_dir=tmp_path
    )

    # When an event is applied
    result = mapping.apply({"id": 7, "line_items": [{}, {}]})

    # Then the function saw the event and the mapped fields, and its return is the result
    assert result == {"order_id": 7, "lines": 2}


def test_function_alone_gets_empty_mapped(tmp_path: Path) -> None:
    # Given a mapping with only a function
    write_function(tmp_path, FUNCTIONS)
    mapping = compile_fields({}, function="mappings/orders.py:echo", project_dir=tmp_path)

    # When an event is applied, Then `mapped` was an empty dict
    assert mapping.apply({"id": 1}) == {"mapped": {}}


def test_function_is_loaded_once_at_compile_time(tmp_path: Path) -> None:
    # Given a compiled mapping whose function file is then deleted
    write_function(tmp_path, FUNCTIONS)
    mapping = compile_fields({}, function="mappings/orders.py:echo", project_dir=tmp_path)
    (tmp_path / "mappings" / "orders.py").unlink()

    # When events are applied, Then the function loaded at compile time still runs
    assert mapping.apply({}) == {"mapped": {}}
    assert mapping.apply({}) == {"mapped": {}}


def test_two_files_with_the_same_name_stay_apart(tmp_path: Path) -> None:
    # Given two projects, each with its own mappings/orders.py
    write_function(tmp_path / "a", "def f(event, mapped):\n    return {'from': 'a'}\n")
    write_function(tmp_path / "b", "def f(event, mapped):\n    return {'from': 'b'}\n")

    # When both are compiled
    first = compile_fields({}, function="mappings/orders.py:f", project_dir=tmp_path / "a")
    second = compile_fields({}, function="mappings/orders.py:f", project_dir=tmp_path / "b")

    # Then each mapping runs its own function
    assert (first.apply({}), second.apply({})) == ({"from": "a"}, {"from": "b"})


@pytest.mark.parametrize(
    ("name", "raised", "message"),
    [
        pytest.param("skip_tests", Skip, "test order", id="Skip"),
        pytest.param("refuse", ContractError, "no customer", id="ContractError"),
        pytest.param("broken", KeyError, "missing", id="a bug"),
        pytest.param("forgets_return", TypeError, "returned null, not a dict", id="no dict"),
    ],
)
def test_function_exceptions_propagate(
    tmp_path: Path, name: str, raised: type[BaseException], message: str
) -> None:
    # Given a function that raises (or returns no dict)
    write_function(tmp_path, FUNCTIONS)
    mapping = compile_fields({}, function=f"mappings/orders.py:{name}", project_dir=tmp_path)

    # When an event is applied, Then its exception comes out as it was raised
    with pytest.raises(raised, match=message) as caught:
        mapping.apply({"id": 1})
    assert type(caught.value) is raised


@pytest.mark.parametrize(
    ("function", "fragments"),
    [
        pytest.param(
            "mappings/orders.py",
            ["mapping.function: 'mappings/orders.py' is not FILE.py:FUNCTION"],
            id="no function name",
        ),
        pytest.param(
            "mappings/returns.py:transform",
            ["mapping.function: file 'mappings/returns.py' not found in the project"],
            id="file missing",
        ),
        pytest.param(
            "mappings/orders.py:transfrom",
            ["mapping.function: 'mappings/orders.py' has no function 'transfrom'", "transform"],
            id="function missing",
        ),
        pytest.param(
            "mappings/orders.py:one_argument",
            ["mapping.function: 'one_argument' must take two arguments: (event, mapped)"],
            id="wrong arguments",
        ),
        pytest.param(
            "mappings/bad.py:transform",
            ["mapping.function: importing 'mappings/bad.py' failed: SyntaxError"],
            id="does not import",
        ),
    ],
)
def test_function_problems(tmp_path: Path, function: str, fragments: list[str]) -> None:
    # Given a project with a good mappings file and one that is not Python
    write_function(tmp_path, FUNCTIONS)
    write_function(tmp_path, "def transform(event, mapped)\n", file="mappings/bad.py")

    # When a mapping naming the function is compiled
    found = problems_of({}, function=function, project_dir=tmp_path)

    # Then the one problem says what is wrong with it
    assert len(found) == 1, found
    for fragment in fragments:
        assert fragment in found[0]


def test_function_problems_come_with_field_problems(tmp_path: Path) -> None:
    # Given a spec with a field mistake and a missing function file
    # When it is compiled
    found = problems_of(
        {"a": {"from": "a", "type": "number"}},
        function="mappings/none.py:f",
        project_dir=tmp_path,
    )

    # Then both are reported
    assert [message.split(": ")[1] for message in found] == [
        "mapping.fields.a.type",
        "mapping.function",
    ]


# --- a sanity run of a realistic mapping -----------------------------------------------------


def test_ten_fields_and_ten_items_apply_repeatedly() -> None:
    # Given a 10-field mapping with a 10-item each, as an order flow has
    fields: dict[str, Any] = {
        "order_id": "id",
        "number": "order.number",
        "total": {"from": "total_price", "type": "decimal"},
        "currency": {"from": "currency", "default": "EUR"},
        "channel": {"value": "webshop"},
        "order_type": {"from": "source_name", "map": "order_types"},
        "customer.email": "customer.email",
        "customer.name": "customer.name",
        "note": {"from": "note", "optional": True},
        "lines": {
            "each": "line_items",
            "fields": {
                "sku": "sku",
                "qty": {"from": "quantity", "type": "int"},
                "price": {"from": "price", "type": "decimal"},
            },
        },
    }
    mapping = compile_fields(fields, {"order_types": {"web": "B2C", "*": "OTHER"}})
    event = {
        "id": 1,
        "order": {"number": "#1001"},
        "total_price": "99.90",
        "source_name": "web",
        "customer": {"email": "a@b.c", "name": "Ann"},
        "line_items": [{"sku": f"S{i}", "quantity": str(i), "price": "9.99"} for i in range(10)],
    }

    # When it is applied many times
    results = [mapping.apply(event) for _ in range(1000)]

    # Then every result is the same, complete body
    assert all(result == results[0] for result in results)
    assert results[0] == {
        "order_id": 1,
        "number": "#1001",
        "total": "99.90",
        "currency": "EUR",
        "channel": "webshop",
        "order_type": "B2C",
        "customer": {"email": "a@b.c", "name": "Ann"},
        "lines": [{"sku": f"S{i}", "qty": i, "price": "9.99"} for i in range(10)],
    }
