"""Seeded orders with the variety of a real shop, shaped like the 2026-07 ``orders.json``.

Each order has the 91 keys of the REST example, money as strings plus ``*_set`` bags in the
shop and presentment currency, and references real variants, products and customers of the
shop. Variety, by seeded chance: web, POS and draft orders (``source_name`` ``web``, ``pos``,
``shopify_draft_order``); test orders; one to five lines, some without SKU (``null`` or
``""``) and custom draft lines without a variant; discount codes (percentage, fixed amount,
free shipping) and manual discounts; shipping lines; taxes included (EU) or added (US, CA);
presentment currencies from the buyer's country; unicode names, addresses and notes; guest
POS sales without a customer; new customers created at checkout.

Follow-ups (`refund`, `edit`, `cancel`, `fulfill`) pick their details with the same generator.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, get_args

from seamline.sandbox.shopify import catalogue, order
from seamline.sandbox.shopify.catalogue import Person, embedded_customer, person_of
from seamline.sandbox.shopify.ids import gid
from seamline.sandbox.shopify.money import RATES, Bag, Currencies, text
from seamline.sandbox.shopify.order import NO_TAX, TAXES, Money
from seamline.sandbox.shopify.shop import CANCEL_REASONS, PAID_STATES, Book, Shop

Json = dict[str, Any]
Channel = Literal["web", "pos", "draft"]
FinancialStatus = Literal["paid", "pending", "authorized"]

# Shopify's own sales-channel app ids: Online Store, Point of Sale, Draft Orders.
APP_IDS: Final = {"web": 580111, "pos": 129785, "draft": 1354745}
SOURCE_NAMES: Final = {"web": "web", "pos": "pos", "draft": "shopify_draft_order"}
COUNTRY_CURRENCY: Final = {
    "US": "USD",
    "GB": "GBP",
    "CH": "CHF",
    "SE": "SEK",
    "DK": "DKK",
    "PL": "PLN",
    "CA": "CAD",
}
_NOTES: Final = (
    "Bitte beim Nachbarn abgeben 🙏",
    "Emballage cadeau, s\u2019il vous plaît 🎁",
    "Leave at the door — thanks!",
    "配達前に電話してください",
    "Κουδούνι: Παπαδόπουλος",
)
_SHIPPING: Final = (("Standard", "4.90"), ("Express", "12.90"), ("DHL Paket", "5.99"))
_CODES: Final = (
    ("WELCOME10", "percentage", "10"),
    ("SOMMER15", "percentage", "15"),
    ("FIVEOFF", "fixed_amount", "5.00"),
    ("FREESHIP", "shipping", "100"),
)
_USER_AGENT: Final = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/17.5"
_CONFIRMATION: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ123456789"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderOptions:
    """What to fix about a generated order; None leaves it to seeded chance."""

    currency: str | None = None
    """Presentment currency (default: the buyer's country's)."""
    channel: Channel | None = None
    test: bool | None = None
    lines: int | None = None
    customer_id: int | None = None
    financial_status: FinancialStatus | None = None

    def __post_init__(self) -> None:
        if self.currency is not None and self.currency not in RATES:
            raise ValueError(f"currency is one of {', '.join(RATES)}, not {self.currency!r}")
        if self.channel is not None and self.channel not in get_args(Channel):
            raise ValueError(f"channel is one of web, pos, draft, not {self.channel!r}")
        if self.financial_status is not None and self.financial_status not in get_args(
            FinancialStatus
        ):
            raise ValueError(
                f"financial_status is paid, pending or authorized, not {self.financial_status!r}"
            )
        if self.lines is not None and not 1 <= self.lines <= 50:
            raise ValueError("lines is between 1 and 50")


class OrderGenerator:
    """Creates orders in ``shop`` from a generator seeded with ``seed``."""

    def __init__(self, shop: Shop, *, seed: int) -> None:
        self.shop = shop
        self.rng = random.Random(f"{seed}:orders")

    def _hex(self, bits: int = 128) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    # the order ---------------------------------------------------------------------------

    def order(self, options: OrderOptions | None = None) -> Json:
        """A new order in the shop (webhooks fired); returns its REST document."""
        options = options or OrderOptions()
        rng, shop = self.rng, self.shop
        channel: Channel = options.channel or rng.choices(("web", "pos", "draft"), (75, 15, 10))[0]
        test = options.test if options.test is not None else rng.random() < 0.03
        customer, created = self._customer(options, channel)
        person = person_of(customer) if customer else None
        location_id = self._location(channel)
        country = person.country if person else shop.locations[location_id]["country_code"]
        currency = options.currency or COUNTRY_CURRENCY.get(country, "EUR")
        cur = Currencies(shop.currency, currency)
        taxes = TAXES.get(country, NO_TAX)

        lines = self._lines(cur, channel, options.lines)
        shipping = [] if channel == "pos" else [self._shipping(cur, lines)]
        applications, codes = self._discounts(cur, channel, lines, shipping)
        order.apply_taxes(lines, shipping, cur, taxes)

        status: str = options.financial_status or self._financial_status(channel)
        gateway = "bogus" if test else self._gateway(channel, status)
        shop.order_count += 1
        number = shop.order_count
        order_id = shop.ids.next("Order")
        now = shop.clock.iso()
        token = self._hex()
        web = channel == "web"
        ip = f"203.0.113.{rng.randint(1, 254)}" if web else None
        address = _address(person, company=rng.random() < 0.1) if person else None
        staff = shop.ids.next("User") if channel != "web" else None
        device = rng.randint(1, 9) if channel == "pos" else None
        name = f"#{1000 + number}"
        doc: Json = {
            "id": order_id,
            "admin_graphql_api_id": gid("Order", order_id),
            "app_id": APP_IDS[channel],
            "browser_ip": ip,
            "buyer_accepts_marketing": bool(
                customer and customer["email_marketing_consent"]["state"] == "subscribed"
            ),
            "cancel_reason": None,
            "cancelled_at": None,
            "cart_token": self._hex() if web else None,
            "checkout_id": shop.ids.next("Checkout") if channel != "draft" else None,
            "checkout_token": self._hex() if channel != "draft" else None,
            "client_details": {
                "accept_language": f"{person.locale if person else 'en'};q=0.9" if web else None,
                "browser_height": None,
                "browser_ip": ip,
                "browser_width": None,
                "session_hash": None,
                "user_agent": _USER_AGENT if web else None,
            },
            "closed_at": None,
            "confirmation_number": "".join(rng.choices(_CONFIRMATION, k=9)),
            "confirmed": True,
            "contact_email": customer["email"] if customer else None,
            "created_at": now,
            "currency": shop.currency,
            "current_subtotal_price": None,
            "current_subtotal_price_set": None,
            "current_total_additional_fees_set": None,
            "current_total_discounts": None,
            "current_total_discounts_set": None,
            "current_total_duties_set": None,
            "current_total_price": None,
            "current_total_price_set": None,
            "current_total_tax": None,
            "current_total_tax_set": None,
            "customer_locale": person.locale if person and channel == "web" else None,
            "device_id": device,
            "discount_codes": codes,
            "duties_included": False,
            "email": customer["email"] if customer else "",
            "estimated_taxes": False,
            "financial_status": status,
            "fulfillment_status": None,
            "landing_site": rng.choice(("/", "/?utm_source=newsletter", "/products/espresso"))
            if web
            else None,
            "landing_site_ref": None,
            "location_id": location_id if channel == "pos" else None,
            "merchant_business_entity_id": base64.b64encode(shop.domain.encode()).decode()[:14],
            "merchant_of_record_app_id": None,
            "name": name,
            "note": rng.choice(_NOTES) if rng.random() < 0.15 else None,
            "note_attributes": (
                [{"name": "gift_message", "value": "Alles Gute zum Geburtstag! 🎂"}]
                if rng.random() < 0.1
                else []
            ),
            "number": number,
            "order_number": 1000 + number,
            "order_status_url": f"https://{shop.domain}/{order_id % 10**9}/orders/{token}"
            f"/authenticate?key={self._hex()}",
            "original_total_additional_fees_set": None,
            "original_total_duties_set": None,
            "payment_gateway_names": [gateway],
            "phone": customer["phone"] if customer else None,
            "po_number": None,
            "presentment_currency": currency,
            "processed_at": now,
            "reference": f"{location_id}-{device}-{number}" if channel == "pos" else None,
            "referring_site": rng.choice(
                ("", "https://www.google.com/", "https://l.instagram.com/")
            )
            if web
            else None,
            "source_identifier": f"{location_id}-{device}-{number}" if channel == "pos" else None,
            "source_name": SOURCE_NAMES[channel],
            "source_url": None,
            "subtotal_price": None,
            "subtotal_price_set": None,
            "tags": rng.choice(("", "", "", "priority", "wholesale, Stammkunde", "gift")),
            "tax_exempt": False,
            "tax_lines": [],
            "taxes_included": taxes.included,
            "test": test,
            "token": token,
            "total_cash_rounding_payment_adjustment_set": cur.money_set(Bag()),
            "total_cash_rounding_refund_adjustment_set": cur.money_set(Bag()),
            "total_discounts": None,
            "total_discounts_set": None,
            "total_line_items_price": None,
            "total_line_items_price_set": None,
            "total_outstanding": None,
            "total_price": None,
            "total_price_set": None,
            "total_shipping_price_set": None,
            "total_tax": None,
            "total_tax_set": None,
            "total_tip_received": "0.00",
            "total_weight": 0,
            "updated_at": now,
            "user_id": staff,
            "billing_address": address,
            "customer": embedded_customer(customer) if customer else None,
            "discount_applications": applications,
            "fulfillments": [],
            "line_items": lines,
            "payment_terms": None,
            "refunds": [],
            "shipping_address": None if channel == "pos" else address,
            "shipping_lines": shipping,
        }
        order.settle(doc, cur, Money(), shipping_refunded=False)
        paid = Bag.read(doc["total_price_set"]) if status == "paid" else Bag()
        book = Book(
            cur,
            taxes,
            location_id,
            gateway,
            Money(paid=paid),
            sale_id=shop.ids.next("OrderTransaction"),
        )
        shop.add_order(doc, book, customer_created=created)
        if channel == "pos":
            shop.fulfill_order(order_id)
        return doc

    def _customer(self, options: OrderOptions, channel: Channel) -> tuple[Json | None, bool]:
        rng, shop = self.rng, self.shop
        if options.customer_id is not None:
            if options.customer_id not in shop.customers:
                raise ValueError(f"no customer {options.customer_id}")
            return shop.customers[options.customer_id], False
        if channel == "pos" and rng.random() < 0.4:
            return None, False
        if rng.random() < 0.15 or not shop.customers:
            person = shop.people.pop(0) if shop.people else self._new_person()
            return shop.new_customer(person), True
        return shop.customers[rng.choice(sorted(shop.customers))], False

    def _new_person(self) -> Person:
        """Somebody new: a first name and an address from one person, a last name from another."""
        a, b = self.rng.sample(catalogue.PEOPLE, 2)
        return Person(
            a.first,
            b.last,
            a.country,
            a.country_name,
            a.city,
            a.address1,
            a.zip,
            a.province,
            a.province_code,
            a.phone,
            a.locale,
        )

    def _location(self, channel: Channel) -> int:
        locations = sorted(self.shop.locations)
        return locations[-1] if channel == "pos" else self.rng.choice(locations[:-1] or locations)

    def _lines(self, cur: Currencies, channel: Channel, count: int | None) -> list[Json]:
        rng, shop = self.rng, self.shop
        count = count or rng.choices((1, 2, 3, 4, 5), (45, 30, 15, 7, 3))[0]
        variants = rng.sample(sorted(shop.variants), min(count, len(shop.variants)))
        lines = []
        for variant_id in variants:
            variant = shop.variants[variant_id]
            product = shop.products[variant["product_id"]]
            engraving = rng.random() < 0.1
            lines.append(
                order.line_item(
                    shop.ids,
                    cur,
                    title=product["title"],
                    variant_title=variant["title"],
                    unit_price=Decimal(variant["price"]),
                    quantity=rng.choice((1, 1, 1, 1, 2, 2, 3, 5)),
                    sku=variant["sku"],
                    variant_id=variant_id,
                    product_id=product["id"],
                    vendor=product["vendor"],
                    grams=variant["grams"],
                    inventory_management=variant["inventory_management"],
                    properties=[{"name": "Gravur", "value": "Für Oma ♥"}] if engraving else None,
                )
            )
        if channel == "draft" and rng.random() < 0.3:
            lines[-1] = order.line_item(
                shop.ids,
                cur,
                title="Geschenkservice ✍️ custom",
                variant_title=None,
                unit_price=Decimal("15.00"),
                quantity=1,
                sku=None,
                variant_id=None,
                product_id=None,
                vendor=None,
                grams=0,
                inventory_management=None,
            )
        return lines

    def _shipping(self, cur: Currencies, lines: list[Json]) -> Json:
        gross = sum(Decimal(li["price"]) * li["quantity"] for li in lines)
        title, price = ("Free Shipping", "0.00") if gross >= 75 else self.rng.choice(_SHIPPING)
        return order.shipping_line(self.shop.ids, cur, title=title, price=Decimal(price))

    def _discounts(
        self, cur: Currencies, channel: Channel, lines: list[Json], shipping: list[Json]
    ) -> tuple[list[Json], list[Json]]:
        """Apply at most one discount; (discount_applications, discount_codes)."""
        chance = {"web": 0.25, "draft": 0.2, "pos": 0.05}[channel]
        if self.rng.random() >= chance:
            return [], []
        common = {"allocation_method": "across", "target_selection": "all"}
        if channel == "draft":
            order.discount_lines(lines, cur, index=0, percentage=Decimal(10))
            title = "Stammkunden-Rabatt"
            application = {
                "target_type": "line_item",
                "type": "manual",
                "value": "10.0",
                "value_type": "percentage",
                **common,
                "title": title,
                "description": title,
            }
            return [application], []
        code, kind, value = self.rng.choice(_CODES)
        if kind == "shipping" and not (shipping and Decimal(shipping[0]["price"]) > 0):
            code, kind, value = _CODES[0]
        if kind == "shipping":
            order.discount_shipping(shipping[0], cur, index=0)
            allocated = shipping[0]["discount_allocations"]
            application = {
                "target_type": "shipping_line",
                "type": "discount_code",
                "value": "100.0",
                "value_type": "percentage",
                "allocation_method": "each",
                "target_selection": "all",
                "code": code,
            }
        else:
            if kind == "percentage":
                order.discount_lines(lines, cur, index=0, percentage=Decimal(value))
            else:
                order.discount_lines(lines, cur, index=0, amount=Decimal(value))
            allocated = [a for li in lines for a in li["discount_allocations"]]
            application = {
                "target_type": "line_item",
                "type": "discount_code",
                "value": f"{Decimal(value):.1f}",
                "value_type": kind,
                **common,
                "code": code,
            }
        amount = sum((Decimal(a["amount"]) for a in allocated), Decimal(0))
        return [application], [{"code": code, "amount": text(amount), "type": kind}]

    def _financial_status(self, channel: Channel) -> str:
        if channel == "pos":
            return "paid"
        if channel == "draft":
            return self.rng.choices(("paid", "pending"), (60, 40))[0]
        return self.rng.choices(("paid", "pending", "authorized"), (85, 8, 7))[0]

    def _gateway(self, channel: Channel, status: str) -> str:
        if status == "pending":
            return "manual"
        if channel == "pos":
            return self.rng.choice(("shopify_payments", "cash"))
        return self.rng.choices(("shopify_payments", "paypal"), (80, 20))[0]

    # follow-ups --------------------------------------------------------------------------

    def refund(self, order_id: int) -> Json:
        """A partial refund of one line (some of its units), restocked or not."""
        doc = self.shop.get_order(order_id)
        lines = [li for li in doc["line_items"] if li["current_quantity"] > 0]
        if not lines or doc["financial_status"] not in PAID_STATES:
            raise ValueError(f"order {order_id} has nothing to refund")
        line = self.rng.choice(lines)
        quantity = self.rng.randint(1, line["current_quantity"])
        note = self.rng.choice((None, "Beschädigt angekommen", "Talla equivocada", "changed mind"))
        return self.shop.refund(
            order_id, [(line["id"], quantity)], restock=self.rng.random() < 0.7, note=note
        )

    def edit(self, order_id: int) -> Json:
        """Add a variant, or remove one unfulfilled unit of a line."""
        doc = self.shop.get_order(order_id)
        book = self.shop.books[order_id]
        removable = [
            li
            for li in doc["line_items"]
            if li["current_quantity"] - book.fulfilled.get(li["id"], 0) > 0
        ]
        if removable and self.rng.random() < 0.5:
            return self.shop.edit(order_id, remove=[(self.rng.choice(removable)["id"], 1)])
        variant_id = self.rng.choice(sorted(self.shop.variants))
        return self.shop.edit(order_id, add=[(variant_id, self.rng.randint(1, 2))])

    def cancel(self, order_id: int) -> Json:
        doc = self.shop.get_order(order_id)
        return self.shop.cancel(
            order_id,
            reason=self.rng.choice(CANCEL_REASONS),
            refund=doc["financial_status"] in PAID_STATES,
            restock=True,
        )

    def fulfill(self, order_id: int) -> Json:
        tracking = {
            "number": f"00340434{self.rng.randrange(10**10):010d}",
            "company": "DHL",
            "url": None,
        }
        return self.shop.fulfill_order(order_id, tracking=tracking)


def _address(person: Person, *, company: bool) -> Json:
    """An order address (the keys and order of the 2026-07 example)."""
    return {
        "first_name": person.first,
        "address1": person.address1,
        "phone": person.phone,
        "city": person.city,
        "zip": person.zip,
        "province": person.province,
        "country": person.country_name,
        "last_name": person.last,
        "address2": "",
        "company": "Muñoz & Hijos S.L." if company else None,
        "latitude": None,
        "longitude": None,
        "name": f"{person.first} {person.last}",
        "country_code": person.country,
        "province_code": person.province_code,
    }
