"""The canonical model: what connectors may build, what mappings read, and how it travels as JSON.

Cases are data: each valid case is a JSON-like dict a connector would build; each invalid case
is one change to a valid order and the fragment the error must name.
"""

from __future__ import annotations

import copy
import json
import operator
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from seamline.engine.mapping import MappingSpec, compile_mapping
from seamline.errors import ContractError
from seamline.model import (
    EVENTS,
    MODEL_VERSION,
    Address,
    CanonicalModel,
    CurrencyMismatchError,
    Customer,
    Discount,
    Entity,
    Fulfillment,
    FulfillmentLine,
    InventoryLevel,
    Money,
    Order,
    OrderLine,
    OrderTotals,
    Price,
    Product,
    Refund,
    RefundLine,
    Shipment,
    ShippingLine,
    TaxLine,
    UnknownEventError,
    Variant,
    event_model,
    schema,
)

DOC = Path(__file__).parents[2] / "docs" / "model.md"


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


ADDRESS: dict[str, Any] = {
    "name": "Zoë Martens",
    "first_name": "Zoë",
    "last_name": "Martens",
    "line1": "Veldstraat 12",
    "city": "Gent",
    "postal_code": "9000",
    "country": "Belgium",
    "country_code": "BE",
}

ORDER: dict[str, Any] = {
    "id": 450789469,
    "number": "#1001",
    "created_at": "2024-05-02T10:00:00+02:00",
    "updated_at": "2024-05-02T10:05:00+02:00",
    "channel": "web",
    "currency": "EUR",
    "taxes_included": True,
    "email": "zoe@example.com",
    "customer": {"id": "207119551", "email": "zoe@example.com", "first_name": "Zoë"},
    "billing_address": ADDRESS,
    "shipping_address": ADDRESS,
    "lines": [
        {
            "id": "466157049",
            "sku": "TS-BLK-M",
            "variant_id": "39072856",
            "product_id": "632910392",
            "title": "T-shirt",
            "variant_title": "Black / M",
            "quantity": 2,
            "unit_price": eur("24.99"),
            "discount": eur("5.00"),
            "taxes": [{"title": "BTW 21%", "rate": "0.21", "amount": eur("7.81")}],
        },
        {
            "id": "466157050",
            "sku": None,
            "title": "Tip",
            "quantity": 1,
            "unit_price": eur("5.00"),
            "discount": eur("0.00"),
            "requires_shipping": False,
        },
    ],
    "shipping_lines": [
        {
            "title": "Standard shipping",
            "price": eur("4.95"),
            "taxes": [{"title": "BTW 21%", "rate": "0.21", "amount": eur("0.86")}],
        }
    ],
    "discounts": [{"code": "SPRING5", "kind": "fixed_amount", "amount": eur("5.00")}],
    "taxes": [{"title": "BTW 21%", "rate": "0.21", "amount": eur("8.67")}],
    "totals": {
        "subtotal": eur("54.98"),
        "discounts": eur("5.00"),
        "shipping": eur("4.95"),
        "tax": eur("8.67"),
        "total": eur("54.93"),
    },
    "financial_status": "paid",
    "fulfillment_status": "unfulfilled",
    "tags": ["gift"],
    "attributes": {"gift_wrap": "yes"},
}

VALID: list[tuple[type[CanonicalModel], dict[str, Any]]] = [
    (Money, eur("19.99")),
    (Money, {"amount": 20, "currency": "USD"}),
    (Money, {"amount": Decimal("-3.5"), "currency": "JPY"}),
    (Address, {}),
    (Address, ADDRESS),
    (Customer, {"id": 207119551}),
    (Customer, {"id": "gid://shopify/Customer/1", "addresses": [ADDRESS], "tags": ["vip"]}),
    (Order, ORDER),
    (
        Product,
        {
            "id": "632910392",
            "title": "T-shirt",
            "status": "active",
            "variants": [
                {
                    "id": "39072856",
                    "product_id": "632910392",
                    "sku": "TS-BLK-M",
                    "title": "Black / M",
                    "price": eur("24.99"),
                    "compare_at_price": eur("29.99"),
                    "weight": "0.25",
                    "weight_unit": "kg",
                    "options": {"Colour": "Black", "Size": "M"},
                }
            ],
        },
    ),
    (Price, {"sku": "TS-BLK-M", "price": eur("24.99")}),
    (InventoryLevel, {"inventory_item_id": 808950810, "location_id": "WH-1", "available": 12}),
    (InventoryLevel, {"inventory_item_id": "8", "location_id": "WH-1", "available": -3}),
    (
        Fulfillment,
        {
            "id": "255858046",
            "order_id": "450789469",
            "status": "success",
            "tracking_numbers": ["323155012345678"],
            "lines": [{"line_id": "466157049", "sku": "TS-BLK-M", "quantity": 2}],
        },
    ),
    (
        Refund,
        {
            "id": "509562969",
            "order_id": "450789469",
            "created_at": "2024-05-06T11:00:00Z",
            "lines": [
                {"line_id": "466157049", "quantity": 1, "restock": True, "subtotal": eur("19.99")}
            ],
            "amount": eur("24.94"),
            "shipping_refund": eur("4.95"),
        },
    ),
]


def with_change(path: str, value: Any, base: dict[str, Any] = ORDER) -> dict[str, Any]:
    """A deep copy of `base` with the value at dotted `path` replaced (or added)."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return data


INVALID_ORDERS: list[tuple[str, Any, str]] = [
    ("created_at", "2024-05-02T10:00:00", "timezone"),
    ("lines.0.unit_price.amount", 24.99, "float"),
    ("totals.total.amount", "54,93", "plain notation"),
    ("currency", "eur", "ISO 4217"),
    ("lines.0.unit_price.currency", "EURO", "ISO 4217"),
    ("lines.0.unit_price.currency", "USD", "lines.0.unit_price is in USD"),
    ("totals.total.currency", "USD", "totals.total is in USD"),
    ("lines.0.quantity", -1, "greater than or equal to 0"),
    ("lines.0.quantity", "2", "valid integer"),
    ("lines.0.quantity", True, "valid integer"),
    ("lines.0.fulfillable_quantity", -1, "greater than or equal to 0"),
    ("lines.0.sku", "", "pass None when there is none"),
    ("lines.0.sales_channel", "x", "Extra inputs are not permitted"),
    ("shopify_id", 1, "Extra inputs are not permitted"),
    ("taxes.0.rate", "-0.21", "greater than or equal to 0"),
    ("shipping_address.country_code", "be", "ISO 3166-1"),
    ("shipping_address.country_code", "BEL", "ISO 3166-1"),
    ("financial_status", "settled", "financial_status"),
    ("id", "", "an id cannot be empty"),
]


@pytest.mark.parametrize(
    ("model", "data"), VALID, ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(VALID)]
)
def test_json_like_data_builds_the_model_and_survives_a_json_round_trip(
    model: type[CanonicalModel], data: dict[str, Any]
) -> None:
    # Given data as a connector builds it; When it is validated and sent through JSON
    built = model.model_validate(data)
    again = model.model_validate_json(built.model_dump_json())
    # Then nothing changed on the way
    assert again == built
    assert again.model_dump(mode="json") == built.model_dump(mode="json")


@pytest.mark.parametrize(("path", "value", "fragment"), INVALID_ORDERS)
def test_an_order_breaking_the_contract_is_refused_naming_the_problem(
    path: str, value: Any, fragment: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Order.model_validate(with_change(path, value))
    assert fragment in str(raised.value)


def test_a_naive_datetime_object_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Refund(id="1", order_id="2", created_at=datetime(2024, 5, 6, 11), amount=Money.zero("EUR"))


@pytest.mark.parametrize("amount", [0.1, 19.99, 1.0, True, "1e2", " 19.99", "NaN", Decimal("NaN")])
def test_money_refuses_anything_but_an_exact_decimal(amount: Any) -> None:
    with pytest.raises(ValidationError):
        Money(amount=amount, currency="EUR")


@pytest.mark.parametrize("json_text", ['{"amount": 19.99, "currency": "EUR"}'])
def test_a_json_number_with_a_fraction_is_refused_as_money(json_text: str) -> None:
    with pytest.raises(ValidationError, match="float"):
        Money.model_validate_json(json_text)


@pytest.mark.parametrize("currency", ["eur", "EURO", "EU", "", "€", "E1R", " EUR"])
def test_money_refuses_a_currency_that_is_not_an_iso_4217_code(currency: str) -> None:
    with pytest.raises(ValidationError, match="ISO 4217"):
        Money(amount="1", currency=currency)


@pytest.mark.parametrize(
    ("amount", "json_amount"),
    [("0.10", "0.10"), ("19.990", "19.990"), ("-5", "-5"), (7, "7"), (Decimal("1E+2"), "100")],
)
def test_money_keeps_its_exact_scale_as_a_plain_string_in_json(
    amount: Any, json_amount: str
) -> None:
    money = Money(amount=amount, currency="EUR")
    dumped = json.loads(money.model_dump_json())
    assert dumped == {"amount": json_amount, "currency": "EUR"}
    back = Money.model_validate_json(money.model_dump_json())
    assert str(back.amount) == json_amount
    assert isinstance(back.amount, Decimal)


def test_an_order_keeps_every_amount_exact_through_json() -> None:
    order = Order.model_validate(with_change("totals.discounts.amount", "0.10"))
    text = order.model_dump_json()
    assert json.loads(text)["totals"]["discounts"] == {"amount": "0.10", "currency": "EUR"}
    assert Order.model_validate_json(text).totals.discounts.amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("19.99", "+", "0.01", "20.00"),
        ("0.10", "+", "0.20", "0.30"),
        ("5.00", "-", "7.50", "-2.50"),
    ],
)
def test_money_adds_and_subtracts_exactly(left: str, op: str, right: str, expected: str) -> None:
    a, b = Money(amount=left, currency="EUR"), Money(amount=right, currency="EUR")
    result = a + b if op == "+" else a - b
    assert result.model_dump(mode="json") == eur(expected)


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("1.99", operator.lt, "2", True),
        ("2.00", operator.lt, "2", False),
        ("2.00", operator.le, "2", True),
        ("2.01", operator.gt, "2", True),
        ("1.99", operator.ge, "2", False),
        ("2.0", operator.eq, "2.00", True),
    ],
)
def test_money_compares_by_amount_in_one_currency(
    left: str, op: Any, right: str, expected: bool
) -> None:
    assert op(Money(amount=left, currency="EUR"), Money(amount=right, currency="EUR")) is expected


def test_money_multiplies_and_totals_in_one_currency() -> None:
    price = Money(amount="24.99", currency="EUR")
    assert (price * 2).amount == Decimal("49.98")
    assert 3 * price == Money(amount="74.97", currency="EUR")
    assert price * Decimal("0.5") == Money(amount="12.495", currency="EUR")
    assert Money.total([price, price, -price], currency="EUR") == price
    assert Money.total([], currency="USD") == Money.zero("USD")


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
        lambda a, b: Money.total([a, b], currency="EUR"),
    ],
)
def test_money_of_two_currencies_never_meets(operation: Any) -> None:
    eur_amount, usd_amount = Money(amount="1", currency="EUR"), Money(amount="1", currency="USD")
    with pytest.raises(CurrencyMismatchError, match="EUR and USD"):
        operation(eur_amount, usd_amount)


def test_a_currency_mismatch_is_a_contract_error() -> None:
    assert issubclass(CurrencyMismatchError, ContractError)


def test_money_is_not_multiplied_by_a_float() -> None:
    with pytest.raises(TypeError):
        Money(amount="1", currency="EUR") * 0.5  # type: ignore[operator]


@pytest.mark.parametrize(
    "address",
    [
        {"name": "Zoë Ünal-Øster", "line1": "Rue de l'Église 3", "city": "Liège"},
        {"name": "山田 太郎", "line1": "千代田区丸の内1-1", "city": "東京", "country_code": "JP"},
        {"name": "Łukasz Żółć", "company": "Śnieżka Sp. z o.o.", "city": "Kraków"},
        {"name": "  two spaces kept  ", "line2": "Apt\u00a05", "city": "İstanbul"},
        {"name": "محمد", "city": "دبي", "country_code": "AE"},
    ],
)
def test_unicode_addresses_round_trip_untouched(address: dict[str, str]) -> None:
    built = Address.model_validate(address)
    back = Address.model_validate_json(built.model_dump_json())
    assert back.model_dump(exclude_defaults=True) == address


REFUND_LINE: dict[str, Any] = {"line_id": "3", "quantity": 1, "subtotal": eur("1")}


@pytest.mark.parametrize(
    ("model", "data", "valid"),
    [
        (InventoryLevel, {"inventory_item_id": "1", "location_id": "2", "available": -5}, True),
        (FulfillmentLine, {"quantity": 0}, True),
        (FulfillmentLine, {"quantity": -1}, False),
        (RefundLine, {**REFUND_LINE, "quantity": -1}, False),
        (RefundLine, REFUND_LINE, True),
    ],
)
def test_only_available_stock_may_be_negative(
    model: type[CanonicalModel], data: dict[str, Any], valid: bool
) -> None:
    if valid:
        assert model.model_validate(data).model_dump(mode="json", include=set(data)) == data
    else:
        with pytest.raises(ValidationError, match="greater than or equal to 0"):
            model.model_validate(data)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (InventoryLevel, {"inventory_item_id": "1", "location_id": "2", "available": 1.0}),
        (Customer, {"id": 1.5}),
        (Customer, {"id": True}),
        (Variant, {"id": "1", "product_id": "2", "title": "M", "price": eur("1"), "sku": ""}),
        (
            Variant,
            {
                "id": "1",
                "product_id": "2",
                "title": "M",
                "price": eur("1"),
                "compare_at_price": {"amount": "2", "currency": "USD"},
            },
        ),
        (Price, {"sku": "A", "price": eur("1"), "msrp": eur("2")}),
        (Refund, {"id": "1", "order_id": "2", "created_at": "2024-05-06", "amount": eur("1")}),
        (
            Refund,
            {
                "id": "1",
                "order_id": "2",
                "created_at": "2024-05-06T11:00:00Z",
                "amount": eur("1"),
                "lines": [{**REFUND_LINE, "subtotal": {"amount": "1", "currency": "GBP"}}],
            },
        ),
        (Fulfillment, {"id": "1", "order_id": "2", "status": "shipped"}),
        (Product, {"id": "1", "title": "T", "status": "active"}),
    ],
)
def test_other_entities_refuse_what_breaks_their_contract(
    model: type[CanonicalModel], data: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_vendor_int_ids_become_strings() -> None:
    order = Order.model_validate(ORDER)
    assert order.id == "450789469"
    assert json.loads(order.model_dump_json())["id"] == "450789469"


def test_models_are_frozen() -> None:
    order = Order.model_validate(ORDER)
    with pytest.raises(ValidationError, match="frozen"):
        order.number = "#1002"  # type: ignore[misc]


def test_shipment_is_the_fulfillment_model() -> None:
    assert Shipment is Fulfillment


# --- events -----------------------------------------------------------------------------------

EVENT_NAME = re.compile(r"[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*")


@pytest.mark.parametrize(("name", "model"), EVENTS.items())
def test_every_event_is_named_entity_verb_after_the_entity_it_carries(
    name: str, model: type[Entity]
) -> None:
    assert EVENT_NAME.fullmatch(name)
    assert name.split(".", maxsplit=1)[0] == model.entity
    assert event_model(name) is model


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("order.created", Order),
        ("order.paid", Order),
        ("order.cancelled", Order),
        ("refund.created", Refund),
        ("fulfillment.created", Fulfillment),
        ("product.updated", Product),
        ("inventory.changed", InventoryLevel),
        ("customer.created", Customer),
    ],
)
def test_event_model_finds_the_entity_of_an_event(name: str, model: type[Entity]) -> None:
    assert event_model(name) is model


@pytest.mark.parametrize(
    ("name", "hint"),
    [("order.create", "did you mean 'order.created'"), ("invoice.created", "known events")],
)
def test_an_unknown_event_is_a_key_error_listing_the_known_names(name: str, hint: str) -> None:
    with pytest.raises(KeyError) as raised:
        event_model(name)
    assert isinstance(raised.value, UnknownEventError | ContractError)
    message = str(raised.value)
    assert message.startswith(f"unknown event {name!r}")
    assert hint in message
    assert all(known in message for known in EVENTS)


# --- schemas and versions ---------------------------------------------------------------------


def test_the_committed_json_schemas_are_current() -> None:
    assert schema.check() == [], "run `python -m seamline.model.schema` and commit the files"


@pytest.mark.parametrize("model", schema.ENTITIES, ids=lambda m: m.entity)
def test_each_schema_names_its_entity_and_version(model: type[Entity]) -> None:
    data = json.loads((schema.SCHEMA_DIR / f"{model.entity}.json").read_text(encoding="utf-8"))
    assert data["$id"] == f"https://seamline.dev/schema/v{MODEL_VERSION}/{model.entity}.json"
    assert data["title"] == model.__name__
    assert data["additionalProperties"] is False
    assert all(field.get("description") for field in data["properties"].values())


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "order.json").write_text("{}\n", encoding="utf-8"), ["order.json"]),
        (lambda d: (d / "refund.json").unlink(), ["refund.json"]),
        (lambda d: (d / "invoice.json").write_text("{}\n", encoding="utf-8"), ["invoice.json"]),
    ],
)
def test_check_names_every_schema_file_that_is_out_of_date(
    tmp_path: Path, damage: Any, expected: list[str]
) -> None:
    written = schema.export(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{m.entity}.json" for m in schema.ENTITIES)
    assert schema.check(tmp_path) == []
    damage(tmp_path)
    assert schema.check(tmp_path) == expected
    schema.export(tmp_path)
    assert schema.check(tmp_path) == []


def test_schema_files_are_stable_text() -> None:
    text = schema.render(Order)
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- the mapping author's page ----------------------------------------------------------------

DOCUMENTED: list[tuple[type[CanonicalModel], str, str]] = [
    (Order, "Order", ""),
    (OrderLine, "Order lines", "lines[]."),
    (ShippingLine, "Shipping lines", "shipping_lines[]."),
    (Discount, "Discounts", "discounts[]."),
    (TaxLine, "Taxes", "taxes[]."),
    (OrderTotals, "Totals", "totals."),
    (Customer, "Customer", ""),
    (Address, "Address", ""),
    (Product, "Product", ""),
    (Variant, "Variants", "variants[]."),
    (Price, "Price", ""),
    (InventoryLevel, "InventoryLevel", ""),
    (Fulfillment, "Fulfillment (Shipment)", ""),
    (FulfillmentLine, "Fulfillment lines", "lines[]."),
    (Refund, "Refund", ""),
    (RefundLine, "Refund lines", "lines[]."),
    (Money, "Money", ""),
]


def doc_section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match, f"docs/model.md has no section {title!r}"
    return match.group(1)


@pytest.mark.parametrize(("model", "title", "prefix"), DOCUMENTED, ids=[d[1] for d in DOCUMENTED])
def test_the_page_documents_every_field(
    model: type[CanonicalModel], title: str, prefix: str
) -> None:
    section = doc_section(title)
    missing = [name for name in model.model_fields if f"| `{prefix}{name}` |" not in section]
    assert missing == []


def test_the_page_lists_every_event_with_its_entity() -> None:
    section = doc_section("Events")
    for name, model in EVENTS.items():
        assert re.search(rf"\| `{re.escape(name)}` \| \[?{model.__name__}\b", section), name


def test_the_example_mapping_on_the_page_gives_the_result_it_shows() -> None:
    # Given the flow excerpt and its result as the page shows them
    section = doc_section("Example mapping")
    flow_text, result_text = re.findall(r"```(?:yaml|json)\n(.*?)```", section, re.S)
    flow = yaml.safe_load(flow_text)
    spec = MappingSpec(fields=flow["mapping"]["fields"], value_maps=flow.get("value_maps", {}))
    mapping = compile_mapping(spec, project_dir=Path("."), where="docs/model.md")
    # When it maps the example order as an event carries it
    event = Order.model_validate(ORDER).model_dump(mode="json")
    # Then it gives exactly what the page says
    assert mapping.apply(event) == json.loads(result_text)
