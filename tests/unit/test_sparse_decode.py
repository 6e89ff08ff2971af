"""Reading only some fields of a webhook: the same verdict and values as decoding it whole,
and the data's bytes as the source wrote them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seamline.connectors.http.connector import HttpOptions
from seamline.connectors.http.signature import generate_secret
from seamline.connectors.http.source import HttpSource
from seamline.errors import ContractError
from seamline.settings import Secret

SOURCE = HttpSource(
    "shop",
    HttpOptions(
        secrets=[Secret(generate_secret())],
        keys={"order": "order_number", "customer": "customer.id"},
        events=["order.paid"],
    ),
)
ROUTING = frozenset({"id", "updated_at"})

# (case, body, the data's bytes as sent, or None where both readings refuse the body)
CASES: list[tuple[str, bytes, bytes | None]] = [
    (
        "an order",
        b'{"type":"order.paid","data":{"id":7,"order_number":1001,"lines":[{"sku":"A"}]}}',
        b'{"id":7,"order_number":1001,"lines":[{"sku":"A"}]}',
    ),
    (
        "spaces and numbers stay as written",
        b'{ "type" : "order.paid" , "data" :  {"id": 7, "total": 12.50, "x": 1E2 } }',
        b'{"id": 7, "total": 12.50, "x": 1E2 }',
    ),
    (
        "text beyond ASCII",
        '{"type":"order.paid","data":{"id":7,"note":"Café ☕","customer":{"id":"c-9"}}}'.encode(),
        '{"id":7,"note":"Café ☕","customer":{"id":"c-9"}}'.encode(),
    ),
    (
        "a field given twice: the last one counts",
        b'{"type":"order.paid","data":{"id":1,"id":2}}',
        b'{"id":1,"id":2}',
    ),
    (
        "the data first, extra fields",
        b'{"data":{"id":3},"type":"order.paid","v":[1,{}]}',
        b'{"id":3}',
    ),
    (
        "nested 900 levels deep",
        b'{"type":"order.paid","data":{"id":1,"deep":' + b"[" * 900 + b"]" * 900 + b"}}",
        b'{"id":1,"deep":' + b"[" * 900 + b"]" * 900 + b"}",
    ),
    (
        "an id beyond 64 bits: read whole, as a float like orjson does",
        b'{"type":"order.paid","data":{"id":123456789012345678901234567890}}',
        orjson.dumps({"id": 123456789012345678901234567890.0}),
    ),
    ("invalid UTF-8 in a field routing skips", b'{"type":"order.paid","data":{"n":"\xff"}}', None),
    ("a broken array in a skipped field", b'{"type":"order.paid","data":{"n":[1,}}', None),
    ("not JSON", b"order 1001 paid", None),
    ("a list, not an object", b'[{"type":"order.paid"}]', None),
    ("no event name", b'{"data":{"id":1}}', None),
    ("an event the system does not send", b'{"type":"order.lost","data":{"id":1}}', None),
    ("data is a list", b'{"type":"order.paid","data":[1]}', None),
    ("no data", b'{"type":"order.paid"}', None),
    ("trailing bytes", b'{"type":"order.paid","data":{"id":1}} x', None),
]


def whole(body: bytes) -> Any:
    try:
        return SOURCE.decode({}, body)
    except ContractError as exc:
        return str(exc)


@pytest.mark.parametrize(("case", "body", "raw"), CASES, ids=[c[0] for c in CASES])
def test_a_sparse_reading_agrees_with_the_whole_one(
    case: str, body: bytes, raw: bytes | None
) -> None:
    expected = whole(body)
    if raw is None:
        assert isinstance(expected, str)
        with pytest.raises(ContractError) as refused:
            SOURCE.decode_sparse({}, body, ROUTING)
        assert str(refused.value) == expected  # the same reason, word for word
        return
    event, data = SOURCE.decode_sparse({}, body, ROUTING)
    assert data == raw
    assert (event.name, event.keys) == (expected.name, expected.keys)
    assert event.data == {
        k: v for k, v in expected.data.items() if k in ROUTING | {"order_number", "customer"}
    }
    assert orjson.loads(data) == expected.data


def test_a_number_beyond_a_double_in_a_skipped_field_is_forwarded_as_written() -> None:
    # The one place the readings differ: the sparse one does not convert what it skips.
    body = b'{"type":"order.paid","data":{"id":1,"big":1e999}}'
    assert "infinity" in whole(body)
    event, data = SOURCE.decode_sparse({}, body, ROUTING)
    assert event.data == {"id": 1} and data == b'{"id":1,"big":1e999}'


def test_data_nested_past_what_can_be_read_sparsely_or_written_is_a_contract_error() -> None:
    # orjson reads 1,024 levels and writes 255; msgspec reads ~1,000: between them, a clear
    # refusal rather than a crash.
    body = b'{"type":"order.paid","data":{"id":1,"deep":' + b"[" * 1010 + b"]" * 1010 + b"}}"
    assert SOURCE.decode({}, body).data["id"] == 1
    with pytest.raises(ContractError, match="cannot be sent as JSON"):
        SOURCE.decode_sparse({}, body, ROUTING)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(st.sampled_from(["id", "a", "b", "é", "x.y", ""]), json_values),
    fields=st.frozensets(st.sampled_from(["id", "a", "é", "x.y", "", "missing"])),
)
def test_the_fields_asked_for_read_as_in_the_whole(
    data: dict[str, Any], fields: frozenset[str]
) -> None:
    body = orjson.dumps({"type": "order.paid", "data": data})
    event, raw = SOURCE.decode_sparse({}, body, fields)
    assert orjson.loads(raw) == data
    assert {k: v for k, v in event.data.items() if k in fields} == {
        k: v for k, v in data.items() if k in fields
    }
    assert event.keys == SOURCE.decode({}, body).keys
