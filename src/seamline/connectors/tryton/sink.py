"""Operations on a Tryton ERP over JSON-RPC, each safe to repeat.

| operation         | idempotent because                                                      |
|-------------------|-------------------------------------------------------------------------|
| `upsert_customer` | the party is found by email (else name) first; an address is added     |
|                   | only if the party has none with the same street, postal code and city   |
| `upsert_product`  | the product is found by SKU (`code`) first; name and price are set      |
| `create_sale`     | the sale is found by `reference` (the shop's order number) first, and  |
|                   | then only moved on: draft → quote → confirm                             |
| `cancel_sale`     | a cancelled sale is left as it is; a processed one is called off by     |
|                   | cancelling what is still open and ignoring it (`cancellation.py`)       |
| `ship_sale`       | the parcel's tracking number is the shipment's `reference`: a parcel    |
|                   | recorded before is found and only moved on to done (`shipment.py`)      |

So a sale whose create answer was lost (an unknown outcome) is found by the retry, not made
twice. One attempt makes several calls (search, then writes); the Exchange records them all.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from seamline.connectors.base import Exchange
from seamline.connectors.tryton import cancellation, shipment
from seamline.connectors.tryton.client import Call, TrytonClient
from seamline.connectors.tryton.connector import (
    OPERATIONS,
    CreateSale,
    TrytonOptions,
    UpsertProduct,
)
from seamline.errors import ContractError, PermanentError, SeamlineError, TransientError

PRICE = Decimal("0.0001")
"""Tryton's default price digits (sale line `unit_price`)."""


class TrytonSink:
    def __init__(self, name: str, options: TrytonOptions) -> None:
        self.name = name
        self.options = options
        self.client = TrytonClient(name, options)
        self._ids: dict[tuple[str, str], int] = {}
        """Ids looked up once: units, categories, countries, currencies, the warehouse."""

    def idempotent(self, operation: str, options: Mapping[str, Any]) -> bool:
        return operation in OPERATIONS

    async def close(self) -> None:
        await self.client.close()

    async def send(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        options: Mapping[str, Any],
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        refs: dict[str, str] = {}
        started = time.perf_counter()
        error: SeamlineError | None = None
        with self.client.recording() as calls:
            try:
                if operation == "upsert_customer":
                    refs["party"] = str(await self.upsert_customer(body))
                elif operation == "upsert_product":
                    op = UpsertProduct.model_validate(options or {})
                    refs["product"] = str(await self.upsert_product(body, category=op.category))
                elif operation == "create_sale":
                    sale = await self.create_sale(body, CreateSale.model_validate(options or {}))
                    refs["sale"] = str(sale)
                elif operation == "cancel_sale":
                    refs["sale"] = str(await self.cancel_sale(body))
                elif operation == "ship_sale":
                    shipped = await self.ship_sale(body)
                    refs["shipment"] = ",".join(str(s) for s in shipped)
                else:
                    raise ContractError(
                        f"{self.name}: no operation '{operation}' (known: {', '.join(OPERATIONS)})"
                    )
            except SeamlineError as exc:
                error = exc
        return _exchange(calls, error, refs, time.perf_counter() - started)

    # --- customers ----------------------------------------------------------------------

    async def upsert_customer(
        self, customer: Mapping[str, Any], *, address: Mapping[str, Any] | None = None
    ) -> int:
        """The party's id: found by email (else by name), created if missing; `address` (or
        the customer's default/first address) added if the party has no such one."""
        party, _ = await self._party(customer, address)
        return party

    async def _party(
        self, customer: Mapping[str, Any], address: Mapping[str, Any] | None
    ) -> tuple[int, int | None]:
        email = _text(customer.get("email"))
        address = address or customer.get("default_address") or _first(customer.get("addresses"))
        name = _party_name(customer, address)
        party: int | None = None
        if email:
            found = await self.client.model(
                "party.contact_mechanism",
                "search_read",
                [["type", "=", "email"], ["value", "=", email]],
                0,
                1,
                [["id", "ASC"]],
                ["party"],
            )
            party = int(found[0]["party"]) if found else None
        else:
            ids = await self.client.model(
                "party.party", "search", [["name", "=", name]], 0, 1, [["id", "ASC"]]
            )
            party = int(ids[0]) if ids else None
        values = await self._address_values(address) if address else None
        if party is None:
            mechanisms = []
            if email:
                mechanisms.append({"type": "email", "value": email})
            if _text(customer.get("phone")):
                mechanisms.append({"type": "phone", "value": str(customer["phone"])})
            record: dict[str, Any] = {"name": name, "addresses": [["create", [values or {}]]]}
            if mechanisms:
                record["contact_mechanisms"] = [["create", mechanisms]]
            try:
                (party,) = await self.client.model("party.party", "create", [record], write=True)
            except PermanentError as exc:
                # Tryton numbers parties from a sequence that two transactions can read at once
                # on SQLite; the retry looks the party up again or gets the next number.
                if "must be unique" not in str(exc):
                    raise
                raise TransientError(str(exc)) from None
        return party, await self._address(party, values)

    async def _address(self, party: int, values: dict[str, Any] | None) -> int | None:
        """The party's address matching `values` (added if missing), or its first one."""
        existing = await self.client.model(
            "party.address",
            "search_read",
            [["party", "=", party]],
            0,
            None,
            [["id", "ASC"]],
            ["street", "postal_code", "city"],
        )
        if values is None:
            return int(existing[0]["id"]) if existing else None
        for row in existing:
            if all(
                (row.get(k) or "") == (values.get(k) or "")
                for k in ("street", "postal_code", "city")
            ):
                return int(row["id"])
        (made,) = await self.client.model(
            "party.address", "create", [{"party": party, **values}], write=True
        )
        return int(made)

    async def _address_values(self, address: Mapping[str, Any]) -> dict[str, Any]:
        street = "\n".join(
            t for t in (_text(address.get("line1")), _text(address.get("line2"))) if t
        )
        values: dict[str, Any] = {
            "street": street,
            "postal_code": _text(address.get("postal_code")) or "",
            "city": _text(address.get("city")) or "",
        }
        if _text(address.get("name")) and address.get("company"):
            values["party_name"] = str(address["name"])
        code = _text(address.get("country_code"))
        if code:
            values["country"] = await self._country(code, _text(address.get("country")) or code)
        return values

    async def _country(self, code: str, name: str) -> int:
        found = await self._lookup("country.country", [["code", "=", code]])
        if found is not None:
            return found
        (made,) = await self.client.model(
            "country.country", "create", [{"code": code, "name": name}], write=True
        )
        self._ids["country.country", repr([["code", "=", code]])] = int(made)
        return int(made)

    # --- products -----------------------------------------------------------------------

    async def upsert_product(self, product: Mapping[str, Any], *, category: str = "Goods") -> int:
        """The `product.product` id for `sku`: created if missing, name and price updated."""
        sku = _text(product.get("sku"))
        if not sku:
            raise ContractError("upsert_product needs 'sku' in the mapped body")
        name = _text(product.get("name")) or _text(product.get("title")) or sku
        price = _decimal(product.get("list_price", product.get("price")), "list_price")
        found = await self.client.model(
            "product.product",
            "search_read",
            [["code", "=", sku]],
            0,
            1,
            None,
            ["template", "template.name", "template.list_price"],
        )
        if found:
            row = found[0]
            template = row.get("template.") or {}
            changes: dict[str, Any] = {}
            if template.get("name") != name:
                changes["name"] = name
            if price is not None and template.get("list_price") != price:
                changes["list_price"] = price
            if changes:
                await self.client.model(
                    "product.template", "write", [int(row["template"])], changes, write=True
                )
            return int(row["id"])
        return await self._create_product(sku, name, price or Decimal(0), category)

    async def _create_product(self, sku: str, name: str, price: Decimal, category: str) -> int:
        unit = await self._required("product.uom", [["name", "=", "Unit"]], "unit 'Unit'")
        account = await self._required(
            "product.category",
            [["name", "=", category], ["accounting", "=", True]],
            f"account category {category!r}",
        )
        (template,) = await self.client.model(
            "product.template",
            "create",
            [
                {
                    "name": name,
                    "type": "goods",
                    "salable": True,
                    "default_uom": unit,
                    "sale_uom": unit,
                    "list_price": price,
                    "account_category": account,
                    "products": [["create", [{"suffix_code": sku}]]],
                }
            ],
            write=True,
        )
        ids = await self.client.model(
            "product.product", "search", [["template", "=", template]], 0, 1, None
        )
        return int(ids[0])

    # --- sales --------------------------------------------------------------------------

    async def find_sale(self, reference: str) -> dict[str, Any] | None:
        found = await self.client.model(
            "sale.sale",
            "search_read",
            [["reference", "=", reference]],
            0,
            2,
            [["id", "ASC"]],
            ["state"],
        )
        return found[0] if found else None

    async def create_sale(self, order: Mapping[str, Any], op: CreateSale | None = None) -> int:
        """The sale for `order`, by reference: found or created, then quoted and confirmed."""
        op = op or CreateSale()
        reference = _text(order.get("number")) or _text(order.get("id"))
        if not reference:
            raise ContractError("create_sale needs the order's 'number' in the mapped body")
        sale = await self.find_sale(reference)
        if sale is None:
            sale = {"id": await self._new_sale(reference, order, op), "state": "draft"}
        return await self._advance(int(sale["id"]), str(sale["state"]), reference, op)

    async def _advance(self, sale: int, state: str, reference: str, op: CreateSale) -> int:
        if state == "cancelled":
            raise PermanentError(f"{self.name}: sale {reference} is cancelled in Tryton")
        if state == "draft":
            await self.client.model("sale.sale", "quote", [sale], write=True)
            state = "quotation"
        if state == "quotation" and op.confirm:
            await self.client.model("sale.sale", "confirm", [sale], write=True)
        return sale

    async def _new_sale(self, reference: str, order: Mapping[str, Any], op: CreateSale) -> int:
        lines = [line for line in order.get("lines") or [] if isinstance(line, Mapping)]
        if not lines:
            raise ContractError(f"create_sale: order {reference} has no lines")
        products = await self._products(lines, op)
        customer = dict(order.get("customer") or {})
        if not customer.get("email"):
            customer["email"] = order.get("email")
        billing = order.get("billing_address") or order.get("shipping_address")
        shipping = order.get("shipping_address") or billing
        party, invoice_address = await self._party(customer, billing)
        shipment_address = invoice_address
        if shipping and shipping != billing:
            shipment_address = await self._address(party, await self._address_values(shipping))
        if invoice_address is None:
            invoice_address = shipment_address = await self._address(party, {})
        record: dict[str, Any] = {
            "party": party,
            "invoice_address": invoice_address,
            "shipment_address": shipment_address,
            "reference": reference,
            "sale_date": _date(order.get("processed_at") or order.get("created_at")),
            "warehouse": await self._required(
                "stock.location",
                [["code", "=", self.options.warehouse], ["type", "=", "warehouse"]],
                f"warehouse with code {self.options.warehouse!r}",
            ),
            "lines": [["create", self._lines(lines, products, order)]],
        }
        currency = _text(order.get("currency"))
        if currency:
            record["currency"] = await self._required(
                "currency.currency", [["code", "=", currency]], f"currency {currency}"
            )
        if _text(order.get("note")):
            record["comment"] = str(order["note"])
        if _text(order.get("description")):
            record["description"] = str(order["description"])
        (sale,) = await self.client.model("sale.sale", "create", [record], write=True)
        return int(sale)

    async def _products(
        self, lines: list[Mapping[str, Any]], op: CreateSale
    ) -> dict[str, tuple[int, int]]:
        """(product, sale unit) by SKU; a missing SKU is refused, or created if allowed."""
        skus = sorted({str(line["sku"]) for line in lines if line.get("sku")})
        if not skus:
            return {}
        fields = ["code", "template.sale_uom"]
        found = await self.client.model(
            "product.product", "search_read", [["code", "in", skus]], 0, None, None, fields
        )
        products = {str(row["code"]): (int(row["id"]), _sale_unit(row)) for row in found}
        missing = [sku for sku in skus if sku not in products]
        if missing and not op.create_products:
            raise PermanentError(
                f"{self.name}: no product with SKU {', '.join(missing)} in Tryton "
                "(upsert the products first, or set create_products: true)"
            )
        for sku in missing:
            line = next(line for line in lines if line.get("sku") == sku)
            price = _money(line.get("unit_price"), "unit_price") or Decimal(0)
            made = await self._create_product(
                sku, _text(line.get("title")) or sku, price, op.category
            )
            (row,) = await self.client.model(
                "product.product", "read", [made], ["template.sale_uom"]
            )
            products[sku] = (made, _sale_unit(row))
        return products

    def _lines(
        self,
        lines: list[Mapping[str, Any]],
        products: Mapping[str, tuple[int, int]],
        order: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        result = []
        # Tryton's unit prices are net: of the line's discount and, when the shop's prices
        # include tax, of that tax (Tryton adds its own taxes from the product's category).
        included = bool(order.get("taxes_included"))
        for line in lines:
            quantity = int(line.get("quantity") or 0)
            if quantity <= 0:
                continue
            price = _money(line.get("unit_price"), "unit_price") or Decimal(0)
            discount = _money(line.get("discount"), "discount") or Decimal(0)
            tax = _tax(line) if included else Decimal(0)
            net = ((price * quantity - discount - tax) / quantity).quantize(PRICE)
            values: dict[str, Any] = {
                "type": "line",
                "quantity": float(quantity),
                "unit_price": net,
                "description": _text(line.get("title")) or "",
            }
            sku = line.get("sku")
            if sku:
                values["product"], values["unit"] = products[str(sku)]
            result.append(values)
        for shipping in order.get("shipping_lines") or []:
            price = _money(shipping.get("price"), "shipping_lines.price") or Decimal(0)
            if included:
                price -= _tax(shipping)
            if price:
                result.append(
                    {
                        "type": "line",
                        "quantity": 1.0,
                        "unit_price": price.quantize(PRICE),
                        "description": f"Shipping: {shipping.get('title') or ''}".strip(),
                    }
                )
        # An order discount the shop did not spread over the lines (a code for the whole
        # order) is a line of its own, or Tryton would book it as revenue.
        spread = sum(
            (_money(line.get("discount"), "discount") or Decimal(0) for line in lines), Decimal(0)
        )
        totals = order.get("totals") or {}
        rest = (_money(totals.get("discounts"), "totals.discounts") or Decimal(0)) - spread
        if rest > 0:
            codes = ", ".join(
                str(d.get("code") or d.get("title") or "")
                for d in order.get("discounts") or []
                if d.get("code") or d.get("title")
            )
            result.append(
                {
                    "type": "line",
                    "quantity": 1.0,
                    "unit_price": (-rest).quantize(PRICE),
                    "description": f"Discount: {codes}" if codes else "Order discount",
                }
            )
        return result

    async def cancel_sale(self, body: Mapping[str, Any]) -> int:
        """Cancel the sale with `reference` (or the order `number`); a cancelled one is left,
        a processed one is called off as a Tryton user would (`cancellation.py`)."""
        reference = _reference(body, "cancel_sale")
        sale = await self._existing_sale(reference)
        sale_id, state = int(sale["id"]), str(sale["state"])
        if state == "cancelled":
            return sale_id
        if state == "confirmed":
            await self.client.model("sale.sale", "draft", [sale_id], write=True)
            state = "draft"
        if state in ("draft", "quotation"):
            await self.client.model("sale.sale", "cancel", [sale_id], write=True)
        else:
            await cancellation.cancel_processing(self.client, sale_id, reference)
        return sale_id

    async def ship_sale(self, body: Mapping[str, Any]) -> list[int]:
        """Record a parcel the warehouse shipped on the sale's shipments (`shipment.py`)."""
        reference = _reference(body, "ship_sale")
        parcel = shipment.Parcel.from_body(body)
        sale = await self._existing_sale(reference)
        if sale["state"] in ("draft", "quotation", "confirmed", "cancelled"):
            raise PermanentError(
                f"{self.name}: sale {reference} is {sale['state']} in Tryton, so it has no "
                f"shipment for parcel {parcel.tracking}"
            )
        return await shipment.ship(self.client, int(sale["id"]), reference, parcel)

    async def _existing_sale(self, reference: str) -> dict[str, Any]:
        sale = await self.find_sale(reference)
        if sale is None:
            # Transient: the order may not have reached the ERP yet (its own flow retries it
            # during an outage); the retry schedule bounds how long this waits.
            raise TransientError(f"{self.name}: no sale with reference {reference} in Tryton (yet)")
        return sale

    # --- look-ups -----------------------------------------------------------------------

    async def _lookup(self, model: str, domain: list[Any]) -> int | None:
        key = (model, repr(domain))
        if key not in self._ids:
            ids = await self.client.model(model, "search", domain, 0, 1, [["id", "ASC"]])
            if not ids:
                return None
            self._ids[key] = int(ids[0])
        return self._ids[key]

    async def _required(self, model: str, domain: list[Any], what: str) -> int:
        found = await self._lookup(model, domain)
        if found is None:
            raise PermanentError(f"{self.name}: Tryton has no {what} ({model})")
        return found


def _exchange(
    calls: list[Call], error: SeamlineError | None, refs: dict[str, str], duration: float
) -> Exchange:
    last = calls[-1] if calls else None
    return Exchange(
        b"\n\n".join(c.request for c in calls),
        last.status if last else None,
        b"\n\n".join(c.body for c in calls),
        duration,
        error,
        refs if error is None else {},
    )


def _reference(body: Mapping[str, Any], operation: str) -> str:
    reference = _text(body.get("reference")) or _text(body.get("number"))
    if not reference:
        raise ContractError(f"{operation} needs 'reference' (or the order 'number')")
    return reference


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _sale_unit(row: Mapping[str, Any]) -> int:
    return int((row.get("template.") or {})["sale_uom"])


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


def _party_name(customer: Mapping[str, Any], address: Mapping[str, Any] | None) -> str:
    names = [_text(customer.get("first_name")), _text(customer.get("last_name"))]
    name = " ".join(n for n in names if n)
    if not name and address:
        name = _text(address.get("name")) or _text(address.get("company")) or ""
    return name or _text(customer.get("email")) or _text(customer.get("id")) or ""


def _decimal(value: Any, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        value = value.get("amount")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ContractError(f"{what} is not a decimal: {value!r}") from None


def _money(value: Any, what: str) -> Decimal | None:
    return _decimal(value, what)


def _tax(line: Mapping[str, Any]) -> Decimal:
    """The tax charged on a line or a shipping line (its `taxes` summed)."""
    return sum(
        (_money(t.get("amount"), "taxes.amount") or Decimal(0) for t in line.get("taxes") or []),
        Decimal(0),
    )


def _date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, str) and value:
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        except ValueError:
            raise ContractError(f"not an ISO 8601 datetime: {value!r}") from None
    return datetime.datetime.now(datetime.UTC).date()
