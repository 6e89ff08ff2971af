"""The state of one simulated shop, and every change to it with the webhooks it fires.

Records are REST documents (what ``GET ...json`` and webhooks carry), kept in dicts by
int64 id; fulfillment orders, which REST does not show, are documents of our own shape.
Every change sets the record's ``updated_at`` (whole seconds, as Shopify) and calls ``emit``
once per webhook topic, in the order Shopify fires them; ``emit`` must serialize at once,
since the same documents change later.

A refused change raises `ShopError`, whose ``field`` and ``code`` become ``userErrors``.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from seamline.sandbox.shopify import catalogue, order
from seamline.sandbox.shopify.catalogue import Catalogue, Person
from seamline.sandbox.shopify.clock import Clock
from seamline.sandbox.shopify.ids import Ids, gid
from seamline.sandbox.shopify.money import Bag, Currencies, text
from seamline.sandbox.shopify.order import Money, Taxes

Json = dict[str, Any]
Emit = Callable[[str, Json], None]

PAID_STATES: Final = ("paid", "partially_paid", "partially_refunded")
LEVEL_QUANTITY_LIMIT: Final = 1_000_000_000
CANCEL_REASONS: Final = ("customer", "declined", "fraud", "inventory", "other", "staff")


class ShopError(Exception):
    """A change Shopify would refuse; ``field`` is the input path, ``code`` the error code."""

    def __init__(
        self, message: str, *, field: Sequence[str] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = list(field) if field is not None else None
        self.code = code


@dataclass(slots=True)
class Book:
    """What the simulator knows about an order beyond its document."""

    cur: Currencies
    taxes: Taxes
    location_id: int
    gateway: str
    money: Money = field(default_factory=Money)
    shipping_refunded: bool = False
    fulfilled: dict[int, int] = field(default_factory=dict)
    sale_id: int = 0


class Shop:
    """One shop's records. Not thread-safe: it lives on the simulator's event loop."""

    def __init__(
        self,
        *,
        seed: int,
        domain: str,
        currency: str,
        clock: Clock,
        emit: Emit,
        products: int = 20,
        customers: int = 10,
    ) -> None:
        self.domain = domain
        self.currency = currency
        self.clock = clock
        self.emit = emit
        self.ids = Ids(random.Random(f"{seed}:ids"))
        self.rng = random.Random(f"{seed}:shop")
        self.catalogue = Catalogue(
            ids=self.ids, clock=clock, rng=random.Random(f"{seed}:catalogue"), currency=currency
        )
        self.locations: dict[int, Json] = {}
        self.products: dict[int, Json] = {}
        self.variants: dict[int, Json] = {}
        self.items: dict[int, Json] = {}
        self.levels: dict[tuple[int, int], Json] = {}
        self.committed: dict[tuple[int, int], int] = {}
        self.customers: dict[int, Json] = {}
        self.orders: dict[int, Json] = {}
        self.books: dict[int, Book] = {}
        self.fulfillment_orders: dict[int, Json] = {}
        self.refunds: dict[int, Json] = {}
        self.jobs: dict[str, bool] = {}
        self.order_count = 0
        self.people: list[Person] = list(catalogue.PEOPLE)
        self._seed(products, customers)

    def _seed(self, products: int, customers: int) -> None:
        rng = self.catalogue.rng
        for location in self.catalogue.locations():
            self.locations[location["id"]] = location
        for index in range(products):
            self._add_product(*self.catalogue.product(index, variants=rng.randint(1, 4)))
        for level in self.levels.values():
            level["available"] = rng.choice((0, 3, 12, 25, 40, 80, 150))
        for item_id in self.items:
            self._sync_variant(item_id)
        for _ in range(min(customers, len(self.people))):
            self._add_customer(self.people.pop(0))

    # records -----------------------------------------------------------------------------

    def _touch(self, *records: Json) -> str:
        now = self.clock.iso()
        for record in records:
            record["updated_at"] = now
        return now

    def _add_product(self, product: Json, items: list[Json]) -> None:
        self.products[product["id"]] = product
        for variant in product["variants"]:
            self.variants[variant["id"]] = variant
        for item in items:
            self.items[item["id"]] = item
            for location_id in self.locations:
                self.levels[(item["id"], location_id)] = self._level(item["id"], location_id, 0)

    def _level(self, item_id: int, location_id: int, available: int) -> Json:
        return {
            "inventory_item_id": item_id,
            "location_id": location_id,
            "available": available,
            "updated_at": self.clock.iso(),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location_id}"
            f"?inventory_item_id={item_id}",
        }

    def _add_customer(self, person: Person) -> Json:
        customer = self.catalogue.customer(person)
        self.customers[customer["id"]] = customer
        return customer

    def new_customer(self, person: Person) -> Json:
        """A customer created at checkout (``customers/create``)."""
        customer = self._add_customer(person)
        customer["created_at"] = customer["updated_at"] = self.clock.iso()
        self.emit("customers/create", customer)
        return customer

    def variant_of_item(self, item_id: int) -> Json | None:
        return next((v for v in self.variants.values() if v["inventory_item_id"] == item_id), None)

    # catalogue changes -------------------------------------------------------------------

    def create_product(self, *, title: str | None = None, variants: int = 2) -> Json:
        index = len(self.products)
        product, items = self.catalogue.product(index, title=title, variants=variants)
        now = self.clock.iso()
        for record in [product, *product["variants"], *items]:
            record["created_at"] = record["updated_at"] = now
        product["published_at"] = now
        self._add_product(product, items)
        self.emit("products/create", product)
        return product

    def update_product(
        self,
        product_id: int,
        *,
        title: str | None = None,
        price: Decimal | None = None,
        tags: str | None = None,
    ) -> Json:
        product = self.products.get(product_id)
        if product is None:
            raise ShopError("Product does not exist", field=["id"], code="NOT_FOUND")
        if title is not None:
            product["title"] = title
        if tags is not None:
            product["tags"] = tags
        if price is not None:
            for variant in product["variants"]:
                variant["price"] = text(price)
                variant["presentment_prices"][0]["price"]["amount"] = text(price)
                self._touch(variant)
        self._touch(product)
        self.emit("products/update", product)
        return product

    # inventory ---------------------------------------------------------------------------

    def check_level(self, item_id: int, location_id: int) -> None:
        if item_id not in self.items:
            raise ShopError(
                "The specified inventory item could not be found.",
                field=["inventoryItemId"],
                code="INVALID_INVENTORY_ITEM",
            )
        if location_id not in self.locations:
            raise ShopError(
                "The specified location could not be found.",
                field=["locationId"],
                code="INVALID_LOCATION",
            )

    def set_available(self, item_id: int, location_id: int, available: int) -> tuple[Json, int]:
        """Set ``available`` (connecting the item to the location if needed); (level, delta)."""
        self.check_level(item_id, location_id)
        if abs(available) >= LEVEL_QUANTITY_LIMIT:
            code = "INVALID_QUANTITY_TOO_HIGH" if available > 0 else "INVALID_QUANTITY_TOO_LOW"
            raise ShopError("The quantity is out of range.", field=["quantity"], code=code)
        level = self.levels.get((item_id, location_id))
        if level is None:
            level = self.levels[(item_id, location_id)] = self._level(item_id, location_id, 0)
        delta = available - level["available"]
        self._move(item_id, location_id, available=delta)
        return level, delta

    def _move(
        self, item_id: int, location_id: int, *, available: int = 0, committed: int = 0
    ) -> None:
        key = (item_id, location_id)
        self.committed[key] = self.committed.get(key, 0) + committed
        if available:
            level = self.levels.setdefault(key, self._level(item_id, location_id, 0))
            level["available"] += available
            self._touch(level)
            self._sync_variant(item_id)
            self.emit("inventory_levels/update", level)

    def on_hand(self, item_id: int, location_id: int) -> int:
        level = self.levels.get((item_id, location_id))
        available = level["available"] if level else 0
        return available + self.committed.get((item_id, location_id), 0)

    def _sync_variant(self, item_id: int) -> None:
        variant = self.variant_of_item(item_id)
        if variant is not None:
            variant["old_inventory_quantity"] = variant["inventory_quantity"]
            variant["inventory_quantity"] = sum(
                level["available"] for (item, _), level in self.levels.items() if item == item_id
            )

    def _stock(self, order_doc: Json, line: Json, quantity: int, *, restock: bool) -> None:
        """Reserve (``restock=False``) or give back ``quantity`` of a tracked line's variant."""
        variant = self.variants.get(line["variant_id"] or 0)
        if variant is None or variant["inventory_management"] is None:
            return
        book = self.books[order_doc["id"]]
        sign = 1 if restock else -1
        self._move(
            variant["inventory_item_id"],
            book.location_id,
            available=sign * quantity,
            committed=-sign * quantity,
        )

    # orders ------------------------------------------------------------------------------

    def add_order(self, doc: Json, book: Book, *, customer_created: bool) -> Json:
        """Store a generated order: reserve stock, open its fulfillment order, fire webhooks."""
        self.orders[doc["id"]] = doc
        self.books[doc["id"]] = book
        order.settle(doc, book.cur, book.money, shipping_refunded=False)
        self._open_fulfillment_order(doc, doc["line_items"])
        self.emit("orders/create", doc)
        if doc["financial_status"] == "paid":
            self.emit("orders/paid", doc)
        for line in doc["line_items"]:
            self._stock(doc, line, line["quantity"], restock=False)
        customer = self.customers.get((doc["customer"] or {}).get("id", 0))
        if customer is not None:
            spent = Decimal(customer["total_spent"]) + Decimal(doc["total_price"])
            customer.update(
                orders_count=customer["orders_count"] + 1,
                total_spent=text(spent),
                last_order_id=doc["id"],
                last_order_name=doc["name"],
            )
            self._touch(customer)
            if not customer_created:
                self.emit("customers/update", customer)
        return doc

    # recorded orders (a load run replaying real traffic) -----------------------------------

    def adopt_skus(self, lines: Iterable[Json]) -> list[Json]:
        """Make a tracked variant for each recorded line whose SKU the shop lacks, under the
        recorded variant id where it is free, so adopted orders reserve and fulfil stock as
        the shop's own do. Returns the variants made."""
        made: list[Json] = []
        known = {v["sku"] for v in self.variants.values() if v["sku"]}
        for line in lines:
            sku = line.get("sku")
            if not isinstance(sku, str) or not sku or sku in known:
                continue
            known.add(sku)
            title = str(line.get("title") or sku)
            product, items = self.catalogue.product(len(self.products), title=title, variants=1)
            (variant,), (item,) = product["variants"], items
            recorded = line.get("variant_id")
            if isinstance(recorded, int) and recorded not in self.variants:
                variant["id"] = recorded
                variant["admin_graphql_api_id"] = gid("ProductVariant", recorded)
            price = line.get("price")
            if isinstance(price, str):
                variant["price"] = price
            variant.update(sku=sku, inventory_management="shopify")
            item.update(sku=sku, tracked=True)
            self._add_product(product, items)
            made.append(variant)
        return made

    def adopt(self, doc: Json) -> Json:
        """Hold a recorded order as the shop's own (fulfilments and cancellations then find
        it) without firing a webhook: the recording is what is sent. A later state of an
        order already held replaces its document."""
        held = self.orders.get(doc["id"])
        doc = copy.deepcopy(doc)
        for line in doc.get("line_items") or []:
            # Older API versions lack `current_quantity`; what is left to fulfil is the same.
            line.setdefault("current_quantity", line.get("fulfillable_quantity", line["quantity"]))
            line.setdefault("variant_id", None)
        if held is not None:
            # The recorded state, but what the sandbox did to the order since (fulfilments
            # the hub made through its API) stays.
            before = {line["id"]: line for line in held.get("line_items") or []}
            for line in doc.get("line_items") or []:
                mine = before.get(line.get("id"))
                for name in ("fulfillable_quantity", "fulfillment_status"):
                    if mine is not None and name in mine:
                        line[name] = mine[name]
            for name in ("fulfillments", "fulfillment_status"):
                if name in held:
                    doc[name] = held[name]
            held.clear()
            held.update(doc)
            return held
        shop_currency = str(doc.get("currency") or self.currency)
        cur = Currencies(shop_currency, str(doc.get("presentment_currency") or shop_currency))
        paid = Bag()
        if doc.get("financial_status") == "paid" and isinstance(doc.get("total_price_set"), dict):
            paid = Bag.read(doc["total_price_set"])
        gateways = doc.get("payment_gateway_names") or ["manual"]
        book = Book(
            cur,
            order.NO_TAX,
            # Stock leaves the web location, as for a generated web order.
            min(self.locations),
            str(gateways[0]),
            Money(paid=paid),
            sale_id=self.ids.next("OrderTransaction"),
        )
        self.orders[doc["id"]] = doc
        self.books[doc["id"]] = book
        if doc.get("cancelled_at") is None:
            self._open_fulfillment_order(doc, doc.get("line_items") or [])
            for line in doc.get("line_items") or []:
                self._stock(doc, line, int(line["current_quantity"]), restock=False)
        return doc

    def _open_fulfillment_order(self, doc: Json, lines: Iterable[Json]) -> Json:
        fo_id = self.ids.next("FulfillmentOrder")
        now = self.clock.iso()
        fo_lines = []
        for line in lines:
            foli_id = self.ids.next("FulfillmentOrderLineItem")
            quantity = line["current_quantity"]
            fo_lines.append(
                {
                    "id": foli_id,
                    "admin_graphql_api_id": gid("FulfillmentOrderLineItem", foli_id),
                    "order_id": doc["id"],
                    "line_item_id": line["id"],
                    "total_quantity": quantity,
                    "remaining_quantity": quantity,
                }
            )
        fo = {
            "id": fo_id,
            "admin_graphql_api_id": gid("FulfillmentOrder", fo_id),
            "order_id": doc["id"],
            "assigned_location_id": self.books[doc["id"]].location_id,
            "status": "OPEN",
            "created_at": now,
            "updated_at": now,
            "line_items": fo_lines,
        }
        self.fulfillment_orders[fo_id] = fo
        return fo

    def order_fulfillment_orders(self, order_id: int) -> list[Json]:
        return [fo for fo in self.fulfillment_orders.values() if fo["order_id"] == order_id]

    def line(self, doc: Json, line_id: int) -> Json:
        for line in doc["line_items"]:
            if line["id"] == line_id:
                found: Json = line
                return found
        raise ShopError("Line item does not exist", field=["lineItemId"], code="NOT_FOUND")

    def get_order(self, order_id: int, *, field: str = "id") -> Json:
        doc = self.orders.get(order_id)
        if doc is None:
            raise ShopError("Order does not exist", field=[field], code="NOT_FOUND")
        return doc

    def _resettle(self, doc: Json) -> None:
        book = self.books[doc["id"]]
        order.settle(doc, book.cur, book.money, shipping_refunded=book.shipping_refunded)
        for line in doc["line_items"]:
            line["fulfillable_quantity"] = max(
                0, line["current_quantity"] - book.fulfilled.get(line["id"], 0)
            )
        doc["fulfillment_status"] = order.fulfillment_status(doc)
        if (
            doc["closed_at"] is None
            and doc["fulfillment_status"] == "fulfilled"
            and doc["financial_status"] in ("paid", "partially_refunded", "refunded")
        ):
            doc["closed_at"] = self.clock.iso()

    def _shrink_fulfillment_orders(self, doc: Json, line_id: int, quantity: int) -> None:
        """Take ``quantity`` unfulfilled units of a line off its open fulfillment orders."""
        for fo in self.order_fulfillment_orders(doc["id"]):
            if fo["status"] not in ("OPEN", "IN_PROGRESS"):
                continue
            for fo_line in fo["line_items"]:
                if fo_line["line_item_id"] == line_id and quantity > 0:
                    taken = min(quantity, fo_line["remaining_quantity"])
                    fo_line["remaining_quantity"] -= taken
                    fo_line["total_quantity"] -= taken
                    quantity -= taken
            if all(fl["remaining_quantity"] == 0 for fl in fo["line_items"]):
                fo["status"] = "CLOSED"
            self._touch(fo)

    # fulfillment -------------------------------------------------------------------------

    def fulfill(
        self,
        requests: Sequence[tuple[int, Sequence[tuple[int, int]] | None]],
        *,
        tracking: Json | None = None,
    ) -> Json:
        """Fulfil ``(fulfillment order id, [(fulfillment order line id, quantity)] or None)``.

        None takes every remaining unit of that fulfillment order. Returns the REST
        fulfillment; fires ``fulfillments/create``, ``orders/updated`` and
        ``orders/fulfilled`` or ``orders/partially_fulfilled``.
        """
        if not requests:
            raise ShopError(
                "Line items by fulfillment order can't be blank.", field=["fulfillment"]
            )
        plan: list[tuple[Json, Json, int]] = []
        order_ids = set()
        for n, (fo_id, asked) in enumerate(requests):
            where = ["fulfillment", "lineItemsByFulfillmentOrder", str(n)]
            fo = self.fulfillment_orders.get(fo_id)
            if fo is None:
                raise ShopError(
                    "Fulfillment order does not exist.", field=[*where, "fulfillmentOrderId"]
                )
            if fo["status"] not in ("OPEN", "IN_PROGRESS"):
                raise ShopError(
                    f"Fulfillment order {fo['admin_graphql_api_id']} has an unfulfillable "
                    f"status= {fo['status'].lower()}.",
                    field=[*where, "fulfillmentOrderId"],
                )
            order_ids.add(fo["order_id"])
            by_id = {fl["id"]: fl for fl in fo["line_items"]}
            wanted = asked
            if wanted is None:
                remaining = [(fl["id"], fl["remaining_quantity"]) for fl in fo["line_items"]]
                wanted = [(i, q) for i, q in remaining if q > 0]
            for m, (foli_id, quantity) in enumerate(wanted):
                fo_line = by_id.get(foli_id)
                if fo_line is None:
                    raise ShopError(
                        "Fulfillment order line item does not exist.",
                        field=[*where, "fulfillmentOrderLineItems", str(m), "id"],
                    )
                if quantity <= 0 or quantity > fo_line["remaining_quantity"]:
                    raise ShopError(
                        "Invalid fulfillment order line item quantity requested.",
                        field=[*where, "fulfillmentOrderLineItems", str(m), "quantity"],
                    )
                plan.append((fo, fo_line, quantity))
        if len(order_ids) > 1:
            raise ShopError(
                "All fulfillment orders must belong to the same order.", field=["fulfillment"]
            )
        if not plan:
            raise ShopError("Fulfillment order has no remaining line items.", field=["fulfillment"])
        doc = self.orders[order_ids.pop()]
        fulfillment = self._fulfil(doc, plan, tracking or {})
        self.emit("fulfillments/create", fulfillment)
        self.emit("orders/updated", doc)
        fulfilled = doc["fulfillment_status"] == "fulfilled"
        self.emit("orders/fulfilled" if fulfilled else "orders/partially_fulfilled", doc)
        return fulfillment

    def _fulfil(self, doc: Json, plan: list[tuple[Json, Json, int]], tracking: Json) -> Json:
        book = self.books[doc["id"]]
        fulfilled_lines = []
        for fo, fo_line, quantity in plan:
            fo_line["remaining_quantity"] -= quantity
            done = all(fl["remaining_quantity"] == 0 for fl in fo["line_items"])
            fo["status"] = "CLOSED" if done else "IN_PROGRESS"
            self._touch(fo)
            line = self.line(doc, fo_line["line_item_id"])
            book.fulfilled[line["id"]] = book.fulfilled.get(line["id"], 0) + quantity
            variant = self.variants.get(line["variant_id"] or 0)
            if variant is not None and variant["inventory_management"] is not None:
                self.committed[(variant["inventory_item_id"], book.location_id)] = (
                    self.committed.get((variant["inventory_item_id"], book.location_id), 0)
                    - quantity
                )
            fulfilled_lines.append({**line, "quantity": quantity})
        self._resettle(doc)
        for line in doc["line_items"]:
            if book.fulfilled.get(line["id"]):
                line["fulfillment_status"] = (
                    "fulfilled" if line["fulfillable_quantity"] == 0 else "partial"
                )
        self._resettle(doc)
        fulfillment_id = self.ids.next("Fulfillment")
        now = self._touch(doc)
        number, company, url = tracking.get("number"), tracking.get("company"), tracking.get("url")
        fulfillment = {
            "id": fulfillment_id,
            "admin_graphql_api_id": gid("Fulfillment", fulfillment_id),
            "created_at": now,
            "location_id": book.location_id,
            "name": f"{doc['name']}.{len(doc['fulfillments']) + 1}",
            "order_id": doc["id"],
            "origin_address": {},
            "receipt": {},
            "service": "manual",
            "shipment_status": None,
            "status": "success",
            "tracking_company": company,
            "tracking_number": number,
            "tracking_numbers": [number] if number else [],
            "tracking_url": url,
            "tracking_urls": [url] if url else [],
            "updated_at": now,
            "line_items": fulfilled_lines,
        }
        doc["fulfillments"].append(fulfillment)
        return fulfillment

    def fulfill_order(self, order_id: int, *, tracking: Json | None = None) -> Json:
        """Fulfil everything still open on an order (a convenience of the simulator)."""
        open_fos = [
            (fo["id"], None)
            for fo in self.order_fulfillment_orders(self.get_order(order_id)["id"])
            if fo["status"] in ("OPEN", "IN_PROGRESS")
        ]
        return self.fulfill(open_fos, tracking=tracking)

    # refunds, cancellation, edits, payment ----------------------------------------------

    def refund(
        self,
        order_id: int,
        lines: Sequence[tuple[int, int]],
        *,
        restock: bool = True,
        note: str | None = None,
        shipping: bool = False,
    ) -> Json:
        """Refund ``(line item id, quantity)`` pairs (and shipping); the REST refund."""
        doc = self.get_order(order_id)
        if doc["financial_status"] not in (*PAID_STATES, "refunded"):
            raise ShopError("Order has no payment to refund", field=["orderId"], code="INVALID")
        for line_id, quantity in lines:
            line = self.line(doc, line_id)
            if quantity <= 0 or quantity > line["current_quantity"]:
                raise ShopError(
                    f"Quantity cannot refund more items than were purchased for {line['name']}",
                    field=["refundLineItems"],
                    code="INVALID",
                )
        refund = self._refund(doc, lines, restock=restock, note=note, shipping=shipping)
        self.emit("refunds/create", refund)
        self.emit("orders/updated", doc)
        return refund

    def _refund(
        self,
        doc: Json,
        lines: Sequence[tuple[int, int]],
        *,
        restock: bool,
        note: str | None,
        shipping: bool,
    ) -> Json:
        book, cur = self.books[doc["id"]], self.books[doc["id"]].cur
        refund_id = self.ids.next("Refund")
        now = self.clock.iso()
        refund_lines, refunded = [], Bag()
        for line_id, quantity in lines:
            line = self.line(doc, line_id)
            before = order.line_amounts(line, line["current_quantity"])
            fulfilled = book.fulfilled.get(line_id, 0)
            unfulfilled = max(0, line["current_quantity"] - fulfilled)
            line["current_quantity"] -= quantity
            after = order.line_amounts(line, line["current_quantity"])
            subtotal, tax = before[0] - after[0], before[2] - after[2]
            refunded = refunded + subtotal + (Bag() if doc["taxes_included"] else tax)
            from_open = min(quantity, unfulfilled)
            self._shrink_fulfillment_orders(doc, line_id, from_open)
            if quantity - from_open > 0:
                book.fulfilled[line_id] = fulfilled - (quantity - from_open)
            restock_type = "no_restock"
            if not restock:
                self._release_commitment(doc, line, from_open)
            else:
                restock_type = "cancel" if from_open == quantity else "return"
                self._stock(doc, line, from_open, restock=True)
                returned = quantity - from_open
                variant = self.variants.get(line["variant_id"] or 0)
                if returned and variant is not None and variant["inventory_management"]:
                    self._move(variant["inventory_item_id"], book.location_id, available=returned)
            refund_lines.append(
                {
                    "id": self.ids.next("RefundLineItem"),
                    "line_item_id": line_id,
                    "location_id": book.location_id if restock else None,
                    "quantity": quantity,
                    "restock_type": restock_type,
                    "subtotal": float(subtotal.shop),
                    "subtotal_set": cur.money_set(subtotal),
                    "total_tax": float(tax.shop),
                    "total_tax_set": cur.money_set(tax),
                    "line_item": copy.deepcopy(line),
                }
            )
        adjustments = []
        if shipping and not book.shipping_refunded:
            book.shipping_refunded = True
            ship, ship_tax = order.shipping_amounts(doc)
            refunded = refunded + ship + (Bag() if doc["taxes_included"] else ship_tax)
            adjustments.append(
                {
                    "id": self.ids.next("OrderAdjustment"),
                    "order_id": doc["id"],
                    "refund_id": refund_id,
                    "amount": text(-ship.shop),
                    "amount_set": cur.money_set(ship.negated()),
                    "tax_amount": text(-ship_tax.shop),
                    "tax_amount_set": cur.money_set(ship_tax.negated()),
                    "kind": "shipping_refund",
                    "reason": "Shipping refund",
                }
            )
        book.money = replace(book.money, refunded=book.money.refunded + refunded)
        self._resettle(doc)
        doc["financial_status"] = (
            "refunded" if Decimal(doc["current_total_price"]) == 0 else "partially_refunded"
        )
        self._resettle(doc)
        self._touch(doc)
        transactions = []
        if not refunded.is_zero():
            transactions.append(self._refund_transaction(doc, refunded, now))
        refund = {
            "id": refund_id,
            "order_id": doc["id"],
            "created_at": now,
            "note": note,
            "user_id": None,
            "processed_at": now,
            "duties": [],
            "total_duties_set": cur.money_set(Bag()),
            "return": None,
            "restock": restock,
            "additional_fees": [],
            "total_additional_fees_set": cur.money_set(Bag()),
            "refund_shipping_lines": [],
            "admin_graphql_api_id": gid("Refund", refund_id),
            "order_adjustments": adjustments,
            "refund_line_items": refund_lines,
            "transactions": transactions,
        }
        doc["refunds"].append(embedded_refund(refund))
        resource = self.refunds[refund_id] = refund_resource(refund)
        return resource

    def _refund_transaction(self, doc: Json, amount: Bag, now: str) -> Json:
        book = self.books[doc["id"]]
        transaction_id = self.ids.next("OrderTransaction")
        return {
            "id": transaction_id,
            "order_id": doc["id"],
            "kind": "refund",
            "gateway": book.gateway,
            "status": "success",
            "message": "Refunded",
            "created_at": now,
            "test": doc["test"],
            "authorization": None,
            "location_id": None,
            "user_id": None,
            "parent_id": book.sale_id,
            "processed_at": now,
            "device_id": None,
            "error_code": None,
            "source_name": "web",
            "receipt": {},
            "amount": text(amount.presentment),
            "currency": book.cur.presentment,
            "payment_id": f"{doc['confirmation_number']}.{len(doc['refunds']) + 2}",
            "total_unsettled_set": {
                "presentment_money": {"amount": "0.0", "currency": book.cur.presentment},
                "shop_money": {"amount": "0.0", "currency": book.cur.shop},
            },
            "manual_payment_gateway": book.gateway == "manual",
            "amount_rounding": None,
            "admin_graphql_api_id": gid("OrderTransaction", transaction_id),
        }

    def check_cancel(self, order_id: int) -> Json:
        doc = self.get_order(order_id, field="orderId")
        if doc["cancelled_at"] is not None:
            raise ShopError(
                "Cannot cancel an order that is already cancelled.",
                field=["orderId"],
                code="INVALID",
            )
        if any(self.books[order_id].fulfilled.values()):
            raise ShopError(
                "Cannot cancel an order with fulfilled items; cancel its fulfillments first.",
                field=["orderId"],
                code="INVALID",
            )
        return doc

    def cancel(self, order_id: int, *, reason: str, refund: bool, restock: bool) -> Json:
        """Cancel an unfulfilled order; fires ``orders/cancelled`` and ``orders/updated``."""
        if reason.lower() not in CANCEL_REASONS:
            reasons = ", ".join(CANCEL_REASONS)
            raise ShopError(f"reason is one of {reasons}", field=["reason"], code="INVALID")
        doc = self.check_cancel(order_id)
        refund_doc = None
        open_lines = [(li["id"], li["current_quantity"]) for li in doc["line_items"]]
        open_lines = [(i, q) for i, q in open_lines if q > 0]
        if refund and doc["financial_status"] in PAID_STATES:
            refund_doc = self._refund(doc, open_lines, restock=restock, note=None, shipping=True)
        else:
            for line_id, quantity in open_lines:
                line = self.line(doc, line_id)
                line["current_quantity"] = 0
                self._shrink_fulfillment_orders(doc, line_id, quantity)
                if restock:
                    self._stock(doc, line, quantity, restock=True)
                else:
                    self._release_commitment(doc, line, quantity)
            if doc["financial_status"] in ("pending", "authorized"):
                doc["financial_status"] = "voided"
        for fo in self.order_fulfillment_orders(order_id):
            if fo["status"] in ("OPEN", "IN_PROGRESS"):
                fo["status"] = "CLOSED"
                self._touch(fo)
        now = self._touch(doc)
        doc.update(cancelled_at=now, cancel_reason=reason.lower(), closed_at=now)
        self._resettle(doc)
        if refund_doc is not None:
            self.emit("refunds/create", refund_doc)
        self.emit("orders/cancelled", doc)
        self.emit("orders/updated", doc)
        return doc

    def _release_commitment(self, doc: Json, line: Json, quantity: int) -> None:
        variant = self.variants.get(line["variant_id"] or 0)
        if variant is not None and variant["inventory_management"] is not None:
            key = (variant["inventory_item_id"], self.books[doc["id"]].location_id)
            self.committed[key] = self.committed.get(key, 0) - quantity

    def edit(
        self,
        order_id: int,
        *,
        add: Sequence[tuple[int, int]] = (),
        remove: Sequence[tuple[int, int]] = (),
    ) -> Json:
        """Add ``(variant id, quantity)`` lines, remove ``(line id, quantity)`` units.

        Fires ``orders/edited`` (the order edit) and ``orders/updated``. Added units raise
        ``total_outstanding`` (a paid order becomes ``partially_paid``); removed units lower
        the current totals without a refund, as an edit does before the merchant refunds.
        """
        doc = self.get_order(order_id)
        if doc["cancelled_at"] is not None:
            raise ShopError("Cannot edit a cancelled order.", field=["id"], code="INVALID")
        book = self.books[order_id]
        for line_id, quantity in remove:
            line = self.line(doc, line_id)
            open_units = line["current_quantity"] - book.fulfilled.get(line_id, 0)
            if quantity <= 0 or quantity > open_units:
                raise ShopError(
                    "Cannot remove more than the unfulfilled quantity.", field=["lineItemId"]
                )
        for variant_id, quantity in add:
            if variant_id not in self.variants or quantity <= 0:
                raise ShopError("Variant does not exist", field=["variantId"], code="NOT_FOUND")
        removals = []
        for line_id, quantity in remove:
            line = self.line(doc, line_id)
            line["current_quantity"] -= quantity
            self._shrink_fulfillment_orders(doc, line_id, quantity)
            self._stock(doc, line, quantity, restock=True)
            removals.append({"id": line_id, "delta": quantity})
        added = []
        for variant_id, quantity in add:
            variant = self.variants[variant_id]
            product = self.products[variant["product_id"]]
            line = order.line_item(
                self.ids,
                book.cur,
                title=product["title"],
                variant_title=variant["title"],
                unit_price=Decimal(variant["price"]),
                quantity=quantity,
                sku=variant["sku"],
                variant_id=variant_id,
                product_id=product["id"],
                vendor=product["vendor"],
                grams=variant["grams"],
                inventory_management=variant["inventory_management"],
            )
            order.apply_taxes([line], [], book.cur, book.taxes)
            doc["line_items"].append(line)
            self._stock(doc, line, quantity, restock=False)
            added.append(line)
        if added:
            self._open_fulfillment_order(doc, added)
        self._resettle(doc)
        if Decimal(doc["total_outstanding"]) > 0 and doc["financial_status"] == "paid":
            doc["financial_status"] = "partially_paid"
        now = self._touch(doc)
        edit_id = self.ids.next("OrderEdit")
        order_edit: Json = {
            "id": edit_id,
            "app_id": None,
            "created_at": now,
            "notify_customer": False,
            "order_id": order_id,
            "staff_note": "",
            "user_id": None,
            "line_items": {
                "additions": [{"id": li["id"], "delta": li["quantity"]} for li in added],
                "removals": removals,
            },
            "discounts": {"additions": [], "removals": []},
            "shipping_lines": {"additions": [], "removals": []},
        }
        self.emit("orders/edited", {"order_edit": order_edit})
        self.emit("orders/updated", doc)
        return order_edit

    def pay(self, order_id: int) -> Json:
        """Capture what is outstanding: ``orders/paid`` and ``orders/updated``."""
        doc = self.get_order(order_id)
        if doc["cancelled_at"] is not None or Decimal(doc["total_outstanding"]) == 0:
            raise ShopError("Order has nothing outstanding to pay.", field=["id"], code="INVALID")
        book = self.books[order_id]
        current = Bag.read(doc["current_total_price_set"])
        book.money = replace(book.money, paid=current + book.money.refunded)
        doc["financial_status"] = "paid"
        self._resettle(doc)
        self._touch(doc)
        self.emit("orders/paid", doc)
        self.emit("orders/updated", doc)
        return doc

    # tags and notes ----------------------------------------------------------------------

    def tagged(self, kind: str, record_id: int) -> Json:
        records = {"Order": self.orders, "Product": self.products, "Customer": self.customers}
        record = records.get(kind, {}).get(record_id)
        if record is None:
            raise ShopError(f"{kind or 'Resource'} does not exist", field=["id"], code="NOT_FOUND")
        return record

    def add_tags(self, kind: str, record_id: int, tags: Sequence[str]) -> Json:
        """Add tags (case-insensitively new ones only); a change fires the update webhook."""
        record = self.tagged(kind, record_id)
        current = [t.strip() for t in record["tags"].split(",") if t.strip()]
        known = {t.lower() for t in current}
        new = [t.strip() for t in tags if t.strip() and t.strip().lower() not in known]
        if new:
            record["tags"] = ", ".join(sorted([*current, *dict.fromkeys(new)], key=str.lower))
            self._record_changed(kind, record)
        return record

    def remove_tags(self, kind: str, record_id: int, tags: Sequence[str]) -> Json:
        record = self.tagged(kind, record_id)
        drop = {t.strip().lower() for t in tags}
        current = [t.strip() for t in record["tags"].split(",") if t.strip()]
        kept = [t for t in current if t.lower() not in drop]
        if kept != current:
            record["tags"] = ", ".join(kept)
            self._record_changed(kind, record)
        return record

    def update_order(
        self,
        order_id: int,
        *,
        note: str | None = None,
        email: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Json:
        doc = self.get_order(order_id)
        changed = False
        if note is not None and note != doc["note"]:
            doc["note"], changed = note, True
        if email is not None and email != doc["email"]:
            doc["email"] = doc["contact_email"] = email
            changed = True
        if tags is not None:
            joined = ", ".join(dict.fromkeys(t.strip() for t in tags if t.strip()))
            if joined != doc["tags"]:
                doc["tags"], changed = joined, True
        if changed:
            self._record_changed("Order", doc)
        return doc

    def _record_changed(self, kind: str, record: Json) -> None:
        self._touch(record)
        topic = {"Order": "orders/updated", "Product": "products/update"}.get(kind)
        self.emit(topic or "customers/update", record)

    # jobs --------------------------------------------------------------------------------

    def new_job(self) -> str:
        job_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.jobs[job_id] = False
        return job_id

    def counts(self) -> dict[str, int]:
        return {
            "locations": len(self.locations),
            "products": len(self.products),
            "variants": len(self.variants),
            "inventory_items": len(self.items),
            "inventory_levels": len(self.levels),
            "customers": len(self.customers),
            "orders": len(self.orders),
            "cancelled_orders": sum(1 for o in self.orders.values() if o["cancelled_at"]),
            "refunds": sum(len(o["refunds"]) for o in self.orders.values()),
            "fulfillments": sum(len(o["fulfillments"]) for o in self.orders.values()),
            "fulfillment_orders": len(self.fulfillment_orders),
        }


_EMBEDDED_REFUND_KEYS: Final = (
    "id",
    "admin_graphql_api_id",
    "created_at",
    "note",
    "order_id",
    "processed_at",
    "restock",
    "total_additional_fees_set",
    "total_duties_set",
    "user_id",
    "order_adjustments",
    "transactions",
    "refund_line_items",
    "duties",
    "additional_fees",
)
_EMBEDDED_TRANSACTION_DROPS: Final = (
    "total_unsettled_set",
    "manual_payment_gateway",
    "amount_rounding",
)


def embedded_refund(refund: Json) -> Json:
    """A refund as ``orders.json`` embeds it (the 2026-07 example's keys)."""
    embedded = {key: refund[key] for key in _EMBEDDED_REFUND_KEYS}
    embedded["transactions"] = [
        {k: v for k, v in t.items() if k not in _EMBEDDED_TRANSACTION_DROPS}
        for t in refund["transactions"]
    ]
    return embedded


def refund_resource(refund: Json) -> Json:
    """A refund as ``refunds/{id}.json`` and ``refunds/create`` show it: its line items
    without ``current_quantity`` and ``attributed_staffs`` (the 2026-07 example)."""
    resource = copy.deepcopy(refund)
    for item in resource["refund_line_items"]:
        for key in ("current_quantity", "attributed_staffs"):
            item["line_item"].pop(key, None)
    return resource
