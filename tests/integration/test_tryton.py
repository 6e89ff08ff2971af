"""The Tryton connector against a real Tryton 8.2 (SQLite, loopback), started once per session.

Run with `-p tests.tryton_fixtures`. Every case uses its own references, SKUs and emails, so
the cases share one database without seeing each other.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest

from seamline.connectors.http.client import HttpClient, NoAnswer, Response
from seamline.connectors.registry import connector
from seamline.connectors.tryton import cancellation, reader
from seamline.connectors.tryton.client import TrytonClient, decode, dumps, encode
from seamline.connectors.tryton.connector import TrytonOptions
from seamline.connectors.tryton.sink import TrytonSink
from seamline.errors import PermanentError, TransientError, UnknownOutcomeError
from seamline.sandbox.tryton import LocalTryton
from seamline.settings import Secret

pytestmark = pytest.mark.timeout(300)


def run(case: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(case())


def with_sink(options: TrytonOptions, case: Callable[[TrytonSink], Awaitable[None]]) -> None:
    """Run `case` with a sink on the session's Tryton, closed afterwards."""

    async def wrapped() -> None:
        sink = TrytonSink("erp", options)
        try:
            await case(sink)
        finally:
            await sink.close()

    asyncio.run(wrapped())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def order(number: str, *lines: tuple[str, int, str], email: str | None = None) -> dict[str, Any]:
    address = {
        "name": "Zoë Martens",
        "line1": "Veldstraat 12",
        "city": "Gent",
        "postal_code": "9000",
        "country_code": "BE",
    }
    return {
        "id": number.lower(),
        "number": number,
        "created_at": "2026-11-20T10:00:00+01:00",
        "currency": "EUR",
        "email": email or f"{number.lower()}@example.com",
        "customer": {"id": "c1", "first_name": "Zoë", "last_name": "Martens"},
        "billing_address": address,
        "shipping_address": address,
        "lines": [
            {
                "id": str(n),
                "sku": sku,
                "title": sku,
                "quantity": quantity,
                "unit_price": money(price),
                "discount": money("0.00"),
            }
            for n, (sku, quantity, price) in enumerate(lines)
        ],
        "shipping_lines": [{"title": "Standard", "price": money("4.95")}],
    }


async def sale_rows(sink: TrytonSink, reference: str) -> list[dict[str, Any]]:
    rows = await sink.client.model(
        "sale.sale",
        "search_read",
        [["reference", "=", reference]],
        0,
        None,
        None,
        ["state", "sale_date", "total_amount", "lines"],
    )
    return list(rows)


async def new_product(sink: TrytonSink, price: str = "10.00") -> str:
    sku = unique("SKU")
    await sink.upsert_product({"sku": sku, "name": f"Product {sku}", "list_price": money(price)})
    return sku


class LosingAnswers:
    """Sends every request for real, but loses the answer of the first one matching `lost`:
    the request was applied, the caller never hears so."""

    def __init__(self, real: HttpClient, lost: bytes) -> None:
        self.real = real
        self.lost = lost
        self.dropped = 0

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes
    ) -> Response:
        response = await self.real.request(method, path, headers=headers, body=body)
        if self.lost in body and not self.dropped:
            self.dropped += 1
            raise NoAnswer("connection reset before the answer (simulated)")
        return response

    async def close(self) -> None:
        await self.real.close()


# --- the wire ------------------------------------------------------------------------------


def test_the_codec_round_trips_tryton_values() -> None:
    values = {
        "price": Decimal("19.90"),
        "day": datetime.date(2026, 11, 22),
        "at": datetime.datetime(2026, 11, 22, 9, 30, 5, 12, tzinfo=datetime.UTC),
        "blob": b"\x00\xffbytes",
        "nested": [{"qty": Decimal("-0.10")}],
    }

    wire = dumps(values)

    assert b'{"__class__":"Decimal","decimal":"19.90"}' in wire
    assert b'"__class__":"date","year":2026,"month":11,"day":22' in wire
    back = decode(wire)
    assert back == values
    assert str(back["price"]) == "19.90"
    local = datetime.datetime(
        2026, 11, 22, 10, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert encode(local)["hour"] == 9, "aware datetimes go to Tryton as naive UTC"


def test_decimals_and_dates_survive_a_round_trip_through_tryton(
    tryton_options: TrytonOptions,
) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given a product priced with four decimals and a sale dated in the past
        sku = unique("SKU")
        product = await sink.upsert_product(
            {"sku": sku, "name": "Precise", "list_price": "12.3456"}
        )
        reference = unique("#R")
        body = order(reference, (sku, 1, "12.3456"))
        body["processed_at"] = "2026-11-03T23:30:00+00:00"
        await sink.create_sale(body)

        # When they are read back
        (row,) = await sink.client.model(
            "product.product", "read", [product], ["template.list_price", "create_date"]
        )
        (sale,) = await sale_rows(sink, reference)

        # Then they come back typed and exact
        assert row["template."]["list_price"] == Decimal("12.3456")
        assert isinstance(row["create_date"], datetime.datetime)
        assert row["create_date"].tzinfo is datetime.UTC
        assert sale["sale_date"] == datetime.date(2026, 11, 3)
        assert sale["total_amount"] == Decimal("17.30"), "the total is rounded to the cent"

    with_sink(tryton_options, case)


def test_an_expired_session_is_renewed_once_and_the_call_repeated(
    tryton_options: TrytonOptions,
) -> None:
    async def case() -> None:
        client = TrytonClient("erp", tryton_options)
        try:
            # Given a logged-in client whose session the server then ends
            assert await client.model("party.party", "search_count", []) >= 0
            assert client.logins == 1
            await client.logout()

            # When it calls again
            count = await client.model("party.party", "search_count", [])

            # Then it logged in again and the call answered
            assert count >= 0
            assert client.logins == 2
        finally:
            await client.close()

    run(case)


def test_a_wrong_password_is_a_permanent_error(tryton_options: TrytonOptions) -> None:
    async def case() -> None:
        client = TrytonClient(
            "erp", tryton_options.model_copy(update={"password": Secret("wrong")})
        )
        try:
            with pytest.raises(PermanentError, match="refused the login"):
                await client.model("party.party", "search_count", [])
        finally:
            await client.close()

    run(case)


def test_a_user_error_is_permanent_and_carries_trytons_message(
    tryton_options: TrytonOptions, tryton: LocalTryton
) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given a product with a SKU
        sku = await new_product(sink)

        # When another product is created with the same code
        with pytest.raises(PermanentError) as refused:
            await sink.client.model(
                "product.template",
                "create",
                [
                    {
                        "name": "Twin",
                        "type": "goods",
                        "default_uom": tryton.ids["unit"],
                        "products": [["create", [{"suffix_code": sku}]]],
                    }
                ],
                write=True,
            )

        # Then Tryton's own words are in the error
        assert "Code of active product must be unique" in str(refused.value)

    with_sink(tryton_options, case)


# --- operations ----------------------------------------------------------------------------


def test_create_sale_twice_makes_one_confirmed_sale(tryton_options: TrytonOptions) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given an order for a product Tryton knows
        sku = await new_product(sink, "19.90")
        reference = unique("#1001")
        body = order(reference, (sku, 3, "19.90"))

        # When it is sent twice
        first = await sink.send("create_sale", body, options={}, idempotency_key="k")
        second = await sink.send("create_sale", body, options={}, idempotency_key="k")

        # Then there is one sale, confirmed (and processed), and both name it
        assert first.error is None and second.error is None
        rows = await sale_rows(sink, reference)
        assert len(rows) == 1
        assert rows[0]["state"] == "processing"
        assert first.refs == second.refs == {"sale": str(rows[0]["id"])}
        assert rows[0]["total_amount"] == Decimal("59.70") + Decimal("4.95")
        assert b"sale.sale.create" in first.request
        assert b"sale.sale.create" not in second.request

    with_sink(tryton_options, case)


def test_after_a_lost_answer_the_retry_finds_the_sale(tryton_options: TrytonOptions) -> None:
    async def case(sink: TrytonSink) -> None:
        sku = await new_product(sink)
        reference = unique("#1002")
        body = order(reference, (sku, 1, "10.00"))
        # Given the answer to the sale's create is lost on the way back
        losing = LosingAnswers(sink.client.http(), lost=b'"method":"model.sale.sale.create"')
        sink.client._http = losing  # type: ignore[assignment]  # a test double on the seam

        # When the operation is attempted, then retried
        first = await sink.send("create_sale", body, options={}, idempotency_key="k")
        second = await sink.send("create_sale", body, options={}, idempotency_key="k")

        # Then the first is an unknown outcome, and the retry found and confirmed its sale
        assert losing.dropped == 1
        assert isinstance(first.error, UnknownOutcomeError)
        assert second.error is None
        rows = await sale_rows(sink, reference)
        assert len(rows) == 1
        assert rows[0]["state"] == "processing"
        assert second.refs == {"sale": str(rows[0]["id"])}

    with_sink(tryton_options, case)


def test_a_missing_sku_refuses_the_order_and_names_it(tryton_options: TrytonOptions) -> None:
    async def case(sink: TrytonSink) -> None:
        known = await new_product(sink)
        missing = unique("NOPE")
        reference = unique("#1003")

        refused = await sink.send(
            "create_sale",
            order(reference, (known, 1, "1.00"), (missing, 1, "1.00")),
            options={},
            idempotency_key="k",
        )
        allowed = await sink.send(
            "create_sale",
            order(reference, (known, 1, "1.00"), (missing, 1, "1.00")),
            options={"create_products": True},
            idempotency_key="k",
        )

        assert isinstance(refused.error, PermanentError)
        assert missing in str(refused.error)
        assert allowed.error is None
        assert len(await sale_rows(sink, reference)) == 1

    with_sink(tryton_options, case)


def test_cancel_sale_is_idempotent(tryton_options: TrytonOptions) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given a quoted (not confirmed) sale
        sku = await new_product(sink)
        reference = unique("#1004")
        made = await sink.send(
            "create_sale",
            order(reference, (sku, 1, "10.00")),
            options={"confirm": False},
            idempotency_key="k",
        )
        assert (await sale_rows(sink, reference))[0]["state"] == "quotation"
        sale = int(made.refs["sale"])
        assert not await cancellation.cancelled_in_effect(sink.client, sale)

        # When it is cancelled twice
        first = await sink.send(
            "cancel_sale", {"reference": reference}, options={}, idempotency_key="c"
        )
        second = await sink.send(
            "cancel_sale", {"reference": reference}, options={}, idempotency_key="c"
        )

        # Then it is cancelled, once, and a later create does not revive it
        assert first.error is None and second.error is None
        assert first.refs == second.refs == made.refs
        assert b"sale.sale.cancel" not in second.request
        assert (await sale_rows(sink, reference))[0]["state"] == "cancelled"
        # (called off before it was processed: no shipment, and still called off)
        assert await cancellation.cancelled_in_effect(sink.client, sale)
        again = await sink.send(
            "create_sale", order(reference, (sku, 1, "10.00")), options={}, idempotency_key="k"
        )
        assert isinstance(again.error, PermanentError)
        assert "cancelled" in str(again.error)

    with_sink(tryton_options, case)


async def shipment_rows(sink: TrytonSink, reference: str) -> list[dict[str, Any]]:
    (sale,) = await sink.client.model(
        "sale.sale", "search_read", [["reference", "=", reference]], 0, 1, None, ["shipments"]
    )
    rows = await sink.client.model(
        "stock.shipment.out", "read", sale["shipments"], ["state", "reference", "outgoing_moves"]
    )
    for row in rows:
        moves = await sink.client.model(
            "stock.move", "read", row["outgoing_moves"], ["product.code", "quantity"]
        )
        row["lines"] = sorted((m["product."]["code"], m["quantity"]) for m in moves)
    return sorted(rows, key=lambda r: int(r["id"]))


def parcel(reference: str, tracking: str, *lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "reference": reference,
        "tracking_number": tracking,
        "shipped_at": "2026-11-21T15:00:00+00:00",
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
    }


def test_parcels_ship_a_sale_in_parts_and_a_repeat_changes_nothing(
    tryton_options: TrytonOptions,
) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given a processed sale of 3 A and 2 B
        a, b = await new_product(sink), await new_product(sink)
        reference = unique("#1101")
        await sink.create_sale(order(reference, (a, 3, "10.00"), (b, 2, "5.00")))

        # When the warehouse ships 2 A, then the same parcel again, then the rest
        first = await sink.send(
            "ship_sale", parcel(reference, "T1", (a, 2)), options={}, idempotency_key="1"
        )
        repeat = await sink.send(
            "ship_sale", parcel(reference, "T1", (a, 2)), options={}, idempotency_key="1"
        )
        after_first = await shipment_rows(sink, reference)
        rest = await sink.send(
            "ship_sale",
            parcel(reference, "T2", (b, 2), (a, 1)),
            options={},
            idempotency_key="2",
        )

        # Then the first parcel is one done shipment, the rest a back order until T2
        assert first.error is None and repeat.error is None and rest.error is None
        assert first.refs == repeat.refs
        assert b"stock.shipment.out.write" not in repeat.request
        assert [(r["state"], r["reference"], r["lines"]) for r in after_first] == [
            ("done", "T1", [(a, 2.0)]),
            ("waiting", None, sorted([(a, 1.0), (b, 2.0)])),
        ]
        shipments = await shipment_rows(sink, reference)
        assert [(r["state"], r["reference"]) for r in shipments] == [
            ("done", "T1"),
            ("done", "T2"),
        ]
        (sale,) = await sink.client.model(
            "sale.sale",
            "search_read",
            [["reference", "=", reference]],
            0,
            1,
            None,
            ["shipment_state"],
        )
        assert sale["shipment_state"] == "sent"

    with_sink(tryton_options, case)


def test_a_parcel_interrupted_half_way_is_finished_by_the_retry(
    tryton_options: TrytonOptions,
) -> None:
    async def case(sink: TrytonSink) -> None:
        sku = await new_product(sink)
        reference = unique("#1102")
        await sink.create_sale(order(reference, (sku, 2, "10.00")))
        # Given the answer to the shipment's `pick` is lost on the way back
        losing = LosingAnswers(sink.client.http(), lost=b'"method":"model.stock.shipment.out.pick"')
        sink.client._http = losing  # type: ignore[assignment]  # a test double on the seam

        first = await sink.send(
            "ship_sale", parcel(reference, "T9", (sku, 2)), options={}, idempotency_key="k"
        )
        second = await sink.send(
            "ship_sale", parcel(reference, "T9", (sku, 2)), options={}, idempotency_key="k"
        )

        # Then the retry found the half-done shipment and finished it, once
        assert isinstance(first.error, UnknownOutcomeError)
        assert second.error is None
        shipments = await shipment_rows(sink, reference)
        assert [(r["state"], r["reference"], r["lines"]) for r in shipments] == [
            ("done", "T9", [(sku, 2.0)])
        ]

    with_sink(tryton_options, case)


PARCEL_REFUSALS = [
    # (what the parcel carries beside the ordered SKU, quantity of the ordered SKU, error has)
    pytest.param([], 5, "3 x {sku}", id="more than ordered"),
    pytest.param([("OTHER", 1)], 1, "1 x OTHER", id="a SKU the sale does not have"),
]


@pytest.mark.parametrize(("extra", "quantity", "expected"), PARCEL_REFUSALS)
def test_a_parcel_the_sale_does_not_expect_is_refused_and_named(
    tryton_options: TrytonOptions, extra: list[tuple[str, int]], quantity: int, expected: str
) -> None:
    async def case(sink: TrytonSink) -> None:
        sku = await new_product(sink)
        reference = unique("#1103")
        await sink.create_sale(order(reference, (sku, 2, "10.00")))

        refused = await sink.send(
            "ship_sale",
            parcel(reference, "T3", (sku, quantity), *extra),
            options={},
            idempotency_key="k",
        )

        assert isinstance(refused.error, PermanentError)
        assert expected.format(sku=sku) in str(refused.error)
        shipments = await shipment_rows(sink, reference)
        assert [(r["state"], r["reference"]) for r in shipments] == [("waiting", None)]

    with_sink(tryton_options, case)


def test_a_parcel_or_cancellation_for_a_sale_not_there_yet_is_retried(
    tryton_options: TrytonOptions,
) -> None:
    async def case(sink: TrytonSink) -> None:
        reference = unique("#1104")
        shipped = await sink.send(
            "ship_sale", parcel(reference, "T4", ("X", 1)), options={}, idempotency_key="k"
        )
        cancelled = await sink.send(
            "cancel_sale", {"reference": reference}, options={}, idempotency_key="c"
        )
        for exchange in (shipped, cancelled):
            assert isinstance(exchange.error, TransientError)
            assert not isinstance(exchange.error, UnknownOutcomeError)
            assert reference in str(exchange.error)

    with_sink(tryton_options, case)


def test_cancelling_a_processed_sale_calls_off_its_shipment_and_invoice(
    tryton_options: TrytonOptions,
) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given a processed sale (a waiting shipment, a draft invoice)
        sku = await new_product(sink)
        reference = unique("#1105")
        sale = await sink.create_sale(order(reference, (sku, 2, "10.00")))

        # When it is cancelled twice
        first = await sink.send(
            "cancel_sale", {"reference": reference}, options={}, idempotency_key="c"
        )
        second = await sink.send(
            "cancel_sale", {"reference": reference}, options={}, idempotency_key="c"
        )

        # Then nothing of it is left to ship or invoice, and the second changed nothing
        assert first.error is None and second.error is None
        assert b"stock.shipment.out.cancel" in first.request
        assert b".cancel" not in second.request and b".execute" not in second.request
        (row,) = await sink.client.model(
            "sale.sale", "read", [sale], ["state", "shipment_state", "invoice_state"]
        )
        assert row["shipment_state"] != "exception" and row["invoice_state"] != "exception"
        assert await cancellation.cancelled_in_effect(sink.client, sale)
        # and a parcel for it afterwards is refused, not shipped
        late = await sink.send(
            "ship_sale", parcel(reference, "T5", (sku, 2)), options={}, idempotency_key="s"
        )
        assert isinstance(late.error, PermanentError)

    with_sink(tryton_options, case)


def test_a_shipped_sale_is_not_cancelled(tryton_options: TrytonOptions) -> None:
    async def case(sink: TrytonSink) -> None:
        sku = await new_product(sink)
        reference = unique("#1106")
        sale = await sink.create_sale(order(reference, (sku, 2, "10.00")))
        await sink.ship_sale(parcel(reference, "T6", (sku, 1)))

        refused = await sink.send(
            "cancel_sale", {"reference": reference}, options={}, idempotency_key="c"
        )

        assert isinstance(refused.error, PermanentError)
        assert "return" in str(refused.error)
        assert not await cancellation.cancelled_in_effect(sink.client, sale)
        states = [r["state"] for r in await shipment_rows(sink, reference)]
        assert states == ["done", "waiting"]

    with_sink(tryton_options, case)


def test_stock_is_read_per_warehouse_and_sku(
    tryton_options: TrytonOptions, tryton: LocalTryton
) -> None:
    async def case(sink: TrytonSink) -> None:
        # Given 7 units of a new product counted in at the warehouse's storage
        sku = await new_product(sink)
        product = await sink.upsert_product({"sku": sku, "name": f"Product {sku}"})
        (inventory,) = await sink.client.model(
            "stock.inventory",
            "create",
            [
                {
                    "location": tryton.ids["storage"],
                    "lines": [["create", [{"product": product, "quantity": 7.0}]]],
                }
            ],
            write=True,
        )
        await sink.client.model("stock.inventory", "confirm", [inventory], write=True)

        # When 2 are sold, and stock is read
        reference = unique("#1005")
        await sink.create_sale(order(reference, (sku, 2, "10.00")))
        levels = await reader.stock(sink.client, [sku, "DEMO-1", unique("NONE")])

        # Then the warehouse holds 7, 5 of them not promised; unknown SKUs are absent
        assert levels[sku].quantity == 7
        assert levels[sku].forecast == 5
        assert levels[sku].warehouse == "WH"
        assert "DEMO-1" in levels
        assert len(levels) == 2
        (shipment,) = await reader.shipments(sink.client, reference)
        assert shipment.state in ("waiting", "assigned")
        assert [(line.sku, line.quantity) for line in shipment.lines] == [(sku, 2)]
        assert await reader.shipments(sink.client, unique("#NONE")) == []

    with_sink(tryton_options, case)


def test_upsert_customer_and_product_are_idempotent(tryton_options: TrytonOptions) -> None:
    async def case(sink: TrytonSink) -> None:
        email = f"{unique('zoe')}@example.com"
        customer = {
            "id": "c9",
            "email": email,
            "first_name": "Zoë",
            "last_name": "Ünal-Øster",
            "default_address": {
                "line1": "Rue Haute 1",
                "city": "Bruxelles",
                "postal_code": "1000",
                "country_code": "BE",
            },
        }
        first = await sink.send("upsert_customer", customer, options={}, idempotency_key="a")
        second = await sink.send("upsert_customer", customer, options={}, idempotency_key="a")
        assert first.error is None and second.error is None
        assert first.refs == second.refs
        party = int(first.refs["party"])
        assert (
            await sink.client.model(
                "party.contact_mechanism", "search_count", [["value", "=", email]]
            )
            == 1
        )
        addresses = await sink.client.model(
            "party.address",
            "search_read",
            [["party", "=", party]],
            0,
            None,
            None,
            ["city", "country.code"],
        )
        assert [(a["city"], a["country."]["code"]) for a in addresses] == [("Bruxelles", "BE")]
        (name,) = await sink.client.model("party.party", "read", [party], ["name"])
        assert name["name"] == "Zoë Ünal-Øster"

        sku = unique("SKU")
        body = {"sku": sku, "name": "Mug", "list_price": money("9.90")}
        one = await sink.send("upsert_product", body, options={}, idempotency_key="p")
        two = await sink.send("upsert_product", body, options={}, idempotency_key="p")
        repriced = await sink.send(
            "upsert_product",
            {**body, "list_price": money("11.00")},
            options={},
            idempotency_key="q",
        )
        assert one.refs == two.refs == repriced.refs
        assert b"product.template.write" not in two.request
        assert await sink.client.model("product.product", "search_count", [["code", "=", sku]]) == 1
        (row,) = await sink.client.model(
            "product.product", "read", [int(one.refs["product"])], ["template.list_price"]
        )
        assert row["template."]["list_price"] == Decimal("11.00")

    with_sink(tryton_options, case)


def test_the_kind_is_registered_and_check_asks_for_a_password(tryton: LocalTryton) -> None:
    kind = connector("tryton")
    assert kind is not None
    options = TrytonOptions(url=tryton.url, database=tryton.database, username="admin")
    assert kind.check(options, role="target")[0][0] == "which has no password"
    with pytest.raises(ValueError, match="secrets"):
        TrytonOptions.model_validate(
            {"url": tryton.url, "database": "x", "username": "a", "password": "plain"}
        )


def test_a_lost_answer_to_a_read_is_transient_and_a_crash_is_transient(
    tryton_options: TrytonOptions,
) -> None:
    async def case() -> None:
        client = TrytonClient("erp", tryton_options)
        try:
            await client.login()
            losing = LosingAnswers(client.http(), lost=b'"method":"model.party.party.search"')
            client._http = losing  # type: ignore[assignment]  # a test double on the seam

            with pytest.raises(TransientError) as lost:
                await client.model("party.party", "search", [], 0, 1, None)
            with pytest.raises(TransientError) as crashed:
                await client.model("party.party", "read", [1], ["no_such_field"])

            assert not isinstance(lost.value, UnknownOutcomeError), "nothing was written"
            assert not isinstance(crashed.value, UnknownOutcomeError)
            assert "no_such_field" in str(crashed.value)
        finally:
            await client.close()

    run(case)
