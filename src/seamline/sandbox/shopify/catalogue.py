"""The seeded catalogue a shop starts with: locations, products, variants, inventory, customers.

Every record is a REST document shaped like the 2026-07 examples (``products/{id}.json``,
``customers/{id}.json``, ``locations.json``, ``inventory_levels.json``). Names and addresses
are deliberately international: accents, ligatures, Greek, CJK, apostrophes. A few variants
have no SKU (``null`` or ``""``) and a few are not tracked, as in real shops.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final

from seamline.sandbox.shopify.clock import Clock
from seamline.sandbox.shopify.ids import Ids, gid

Json = dict[str, Any]

# title, vendor, product type, option name, option values, price (shop currency)
_PRODUCTS: Final = (
    (
        "Merino Beanie",
        "Nordkap Strickwaren",
        "Accessories",
        "Colour",
        ("Fjord Blue", "Moss", "Ash"),
        "24.90",
    ),
    ("Café Crème Mug", "Atelier Faïence", "Kitchen", "Size", ("250 ml", "400 ml"), "16.50"),
    ("Smørrebrød Board", "Søndergaard & Co", "Kitchen", "Wood", ("Oak", "Walnut"), "39.00"),
    (
        "Jalapeño Hot Sauce",
        "Salsas Peña",
        "Pantry",
        "Heat",
        ("Mild", "Picante", "¡Muy picante!"),
        "7.95",
    ),
    ("Crêpe Pan 28 cm", "Atelier Faïence", "Kitchen", "Title", ("Default Title",), "44.00"),
    (
        "Ångström Reading Lamp",
        "Lumière Studio",
        "Lighting",
        "Finish",
        ("Brass", "Matte Black"),
        "129.00",
    ),
    (
        "Espresso Beans 1 kg",
        "Kaffeerösterei Müller",
        "Coffee",
        "Roast",
        ("Light", "Medium", "Dark", "Decaf"),
        "28.50",
    ),
    ("Matcha 抹茶 Tin 80 g", "Uji Tea House", "Tea", "Grade", ("Ceremonial", "Culinary"), "32.00"),
    ("Piñata Party Kit", "Fiesta Niños", "Toys", "Title", ("Default Title",), "19.99"),
    ("Linen Apron", "Søndergaard & Co", "Kitchen", "Colour", ("Natural", "Sage", "Rust"), "34.00"),
    (
        "Wool Socks 3-pack",
        "Nordkap Strickwaren",
        "Apparel",
        "Size",
        ("36\u201338", "39\u201342", "43\u201346"),
        "21.00",
    ),
    ("Ceramic Pour-Over", "Atelier Faïence", "Coffee", "Colour", ("Chalk", "Slate"), "29.00"),
    ("Olive Oil 500 ml", "Ελαιώνας Κρήτης", "Pantry", "Title", ("Default Title",), "14.80"),
    ("Gift Card Holder", "Papeterie Dupré", "Stationery", "Title", ("Default Title",), "4.50"),
    (
        "Notebook A5 dotted",
        "Papeterie Dupré",
        "Stationery",
        "Cover",
        ("Ocre", "Bleu nuit", "Vert d'eau", "Rose"),
        "12.00",
    ),
    ("Rye Crispbread", "Bageri Åkesson", "Pantry", "Pack", ("Single", "Family"), "5.20"),
    ("Cast-Iron Teapot", "Uji Tea House", "Tea", "Size", ("0.6 l", "1.2 l"), "58.00"),
    ("Beeswax Candles", "Lumière Studio", "Lighting", "Pack", ("2", "6"), "11.90"),
    (
        "Cotton Tote \u201cSeamline\u201d",
        "Seamline Goods",
        "Accessories",
        "Title",
        ("Default Title",),
        "9.00",
    ),
    ("Trail Snack Mix", "Salsas Peña", "Pantry", "Size", ("150 g", "500 g"), "6.40"),
)

# city, address1, zip, province, province code, country code, country name
_LOCATIONS: Final = (
    ("Lager Hamburg", "Hamburg", "Große Elbstraße 145", "22767", None, None, "DE", "Germany"),
    ("Entrepôt Lyon", "Lyon", "12 Rue de l\u2019Entrepôt", "69007", None, None, "FR", "France"),
    (
        "Amsterdam Store",
        "Amsterdam",
        "Prinsengracht 263",
        "1016 GV",
        None,
        None,
        "NL",
        "Netherlands",
    ),
)


@dataclass(frozen=True, slots=True)
class Person:
    first: str
    last: str
    country: str
    country_name: str
    city: str
    address1: str
    zip: str
    province: str | None = None
    province_code: str | None = None
    phone: str | None = None
    locale: str = "en"


PEOPLE: Final = (
    Person(
        "Zoë",
        "Ångström",
        "SE",
        "Sweden",
        "Stockholm",
        "Drottninggatan 53",
        "111 21",
        phone="+46812345678",
        locale="sv",
    ),
    Person(
        "José",
        "Muñoz García",
        "ES",
        "Spain",
        "Sevilla",
        "Calle Sierpes 12, 3º B",
        "41004",
        "Sevilla",
        "SE",
        "+34954123456",
        "es",
    ),
    Person(
        "Łukasz",
        "Żółkiewski",
        "PL",
        "Poland",
        "Kraków",
        "ul. Floriańska 15/3",
        "31-019",
        locale="pl",
    ),
    Person(
        "Søren",
        "Kierkegård",
        "DK",
        "Denmark",
        "København",
        "Nørregade 7",
        "1165",
        phone="+4533123456",
        locale="da",
    ),
    Person(
        "Renée", "Çelik", "FR", "France", "Lyon", "12 Rue de l\u2019Église", "69002", locale="fr"
    ),
    Person(
        "Jürgen",
        "Großmann",
        "DE",
        "Germany",
        "Berlin",
        "Straße des 17. Juni 135",
        "10623",
        phone="+4930123456",
        locale="de",
    ),
    Person(
        "Siobhán",
        "Ó Conchúir",
        "IE",
        "Ireland",
        "Dublin",
        "14 Sráid an Mhuilinn",
        "D08 X2A3",
        "Dublin",
        "D",
    ),
    Person(
        "太郎",
        "山田",
        "US",
        "United States",
        "San Francisco",
        "1 Market St, Apt 5",
        "94105",
        "California",
        "CA",
        "+14155550123",
        "ja",
    ),
    Person(
        "Ægir",
        "Þórsson",
        "GB",
        "United Kingdom",
        "London",
        "221B Baker Street",
        "NW1 6XE",
        "England",
        "ENG",
    ),
    Person(
        "Παναγιώτης",
        "Παπαδόπουλος",
        "GR",
        "Greece",
        "Αθήνα",
        "Οδός Ερμού 20",
        "105 63",
        locale="el",
    ),
    Person(
        "Amélie",
        "Poulain-Brûlé",
        "CA",
        "Canada",
        "Montréal",
        "1234 Rue Saint-Denis",
        "H2X 3K8",
        "Quebec",
        "QC",
        locale="fr-CA",
    ),
    Person(
        "Zoë",
        "O'Brien",
        "US",
        "United States",
        "New York",
        "350 5th Ave, Fl 34",
        "10118",
        "New York",
        "NY",
        "+12125550199",
    ),
    Person(
        "Björk",
        "Guðmundsdóttir",
        "CH",
        "Switzerland",
        "Zürich",
        "Bahnhofstrasse 1",
        "8001",
        "Zürich",
        "ZH",
        locale="de-CH",
    ),
    Person(
        "Nguyễn",
        "Thị Minh",
        "NL",
        "Netherlands",
        "Amsterdam",
        "Keizersgracht 123-II",
        "1015 CJ",
        locale="nl",
    ),
    Person("Mårten", "Öberg", "SE", "Sweden", "Göteborg", "Vasagatan 4", "411 24", locale="sv"),
    Person("François", "L\u2019Hôpital", "FR", "France", "Paris", "5 Rue de Rivoli", "75004"),
)

CUSTOMER_TAGS: Final = ("", "", "VIP", "newsletter", "wholesale, Stammkunde", "Léon, Noël")


def handle(title: str) -> str:
    """Shopify's handle: lowercase ASCII words joined by dashes."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-") or "product"


class Catalogue:
    """Builds catalogue documents with the shop's ids, clock and random generator."""

    def __init__(self, *, ids: Ids, clock: Clock, rng: random.Random, currency: str) -> None:
        self.ids = ids
        self.clock = clock
        self.rng = rng
        self.currency = currency

    def _past(self, max_days: int) -> str:
        return self.clock.iso(self.clock.now() - timedelta(days=self.rng.uniform(1, max_days)))

    def locations(self) -> list[Json]:
        made = []
        for name, city, street, zip_code, province, code, country, country_name in _LOCATIONS:
            location_id = self.ids.next("Location")
            created = self._past(900)
            made.append(
                {
                    "id": location_id,
                    "name": name,
                    "address1": street,
                    "address2": None,
                    "city": city,
                    "zip": zip_code,
                    "province": province,
                    "country": country,
                    "phone": None,
                    "created_at": created,
                    "updated_at": created,
                    "country_code": country,
                    "country_name": country_name,
                    "province_code": code,
                    "legacy": False,
                    "active": True,
                    "admin_graphql_api_id": gid("Location", location_id),
                    "localized_country_name": country_name,
                    "localized_province_name": province,
                }
            )
        return made

    def product(
        self, index: int, *, title: str | None = None, variants: int | None = None
    ) -> tuple[Json, list[Json]]:
        """Product ``index`` of the built-in list (cycled) and its inventory items."""
        name, vendor, kind, option, all_values, price = _PRODUCTS[index % len(_PRODUCTS)]
        values: tuple[str, ...] = all_values
        if variants is not None:
            values = values[: max(1, variants)]
        product_id = self.ids.next("Product")
        created = self._past(400)
        prefix = "".join(c for c in handle(name).upper() if c.isalnum())[:6]
        product_variants: list[Json] = []
        items: list[Json] = []
        for position, value in enumerate(values, start=1):
            variant_id = self.ids.next("ProductVariant")
            item_id = self.ids.next("InventoryItem")
            sku: str | None = f"{prefix}-{index:02d}{position}"
            if self.rng.random() < 0.12:
                sku = self.rng.choice((None, ""))
            tracked = self.rng.random() > 0.08
            variant_price = Decimal(price) + (position - 1) * Decimal("2.00")
            product_variants.append(
                {
                    "id": variant_id,
                    "product_id": product_id,
                    "title": value,
                    "price": f"{variant_price:.2f}",
                    "position": position,
                    "inventory_policy": self.rng.choice(("deny", "deny", "continue")),
                    "compare_at_price": None,
                    "option1": value,
                    "option2": None,
                    "option3": None,
                    "created_at": created,
                    "updated_at": created,
                    "taxable": True,
                    "barcode": f"40{self.rng.randrange(10**10, 10**11)}",
                    "fulfillment_service": "manual",
                    "grams": self.rng.choice((80, 250, 500, 1000, 1200)),
                    "inventory_management": "shopify" if tracked else None,
                    "requires_shipping": True,
                    "sku": sku,
                    "weight": 0.5,
                    "weight_unit": "kg",
                    "inventory_item_id": item_id,
                    "inventory_quantity": 0,
                    "old_inventory_quantity": 0,
                    "presentment_prices": [
                        {
                            "price": {
                                "amount": f"{variant_price:.2f}",
                                "currency_code": self.currency,
                            },
                            "compare_at_price": None,
                        }
                    ],
                    "admin_graphql_api_id": gid("ProductVariant", variant_id),
                    "image_id": None,
                }
            )
            items.append(
                {
                    "id": item_id,
                    "sku": sku,
                    "created_at": created,
                    "updated_at": created,
                    "requires_shipping": True,
                    "cost": f"{variant_price * Decimal('0.4'):.2f}",
                    "country_code_of_origin": None,
                    "province_code_of_origin": None,
                    "harmonized_system_code": None,
                    "tracked": tracked,
                    "country_harmonized_system_codes": [],
                    "admin_graphql_api_id": gid("InventoryItem", item_id),
                }
            )
        product = {
            "id": product_id,
            "title": title or name,
            "body_html": f"<p>{title or name} — made by {vendor}.</p>",
            "vendor": vendor,
            "product_type": kind,
            "created_at": created,
            "handle": handle(title or name),
            "updated_at": created,
            "published_at": created,
            "template_suffix": None,
            "published_scope": "web",
            "tags": self.rng.choice(("", "bestseller", "gift, seasonal", "Léon, Noël")),
            "status": "active",
            "admin_graphql_api_id": gid("Product", product_id),
            "variants": product_variants,
            "options": [
                {
                    "id": self.ids.next("ProductOption"),
                    "product_id": product_id,
                    "name": option,
                    "position": 1,
                    "values": list(values),
                }
            ],
            "images": [],
            "image": None,
        }
        return product, items

    def customer(self, person: Person) -> Json:
        customer_id = self.ids.next("Customer")
        address_id = self.ids.next("CustomerAddress")
        created = self._past(700)
        local = handle(f"{person.first} {person.last}").replace("-", ".") or "kunde"
        email = f"{local}.{customer_id % 1000}@example.com"
        address = {
            "id": address_id,
            "customer_id": customer_id,
            "first_name": person.first,
            "last_name": person.last,
            "company": None,
            "address1": person.address1,
            "address2": "",
            "city": person.city,
            "province": person.province,
            "country": person.country_name,
            "zip": person.zip,
            "phone": person.phone,
            "name": f"{person.first} {person.last}",
            "province_code": person.province_code,
            "country_code": person.country,
            "country_name": person.country_name,
            "default": True,
        }
        marketing = self.rng.choice(("subscribed", "not_subscribed"))
        return {
            "id": customer_id,
            "email": email,
            "created_at": created,
            "updated_at": created,
            "first_name": person.first,
            "last_name": person.last,
            "orders_count": 0,
            "state": "enabled",
            "total_spent": "0.00",
            "last_order_id": None,
            "note": None,
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "tags": self.rng.choice(CUSTOMER_TAGS),
            "last_order_name": None,
            "currency": self.currency,
            "phone": person.phone,
            "addresses": [address],
            "tax_exemptions": [],
            "email_marketing_consent": {
                "state": marketing,
                "opt_in_level": "single_opt_in" if marketing == "subscribed" else None,
                "consent_updated_at": created,
            },
            "sms_marketing_consent": None,
            "admin_graphql_api_id": gid("Customer", customer_id),
            "default_address": dict(address),
        }


_EMBEDDED_CUSTOMER_KEYS: Final = (
    "id",
    "email",
    "created_at",
    "updated_at",
    "first_name",
    "last_name",
    "state",
    "note",
    "verified_email",
    "multipass_identifier",
    "tax_exempt",
    "phone",
    "email_marketing_consent",
    "sms_marketing_consent",
    "tags",
    "currency",
    "tax_exemptions",
    "admin_graphql_api_id",
    "default_address",
)


def embedded_customer(customer: Json) -> Json:
    """The customer as an order embeds it (no order counts, no address list)."""
    return {key: customer[key] for key in _EMBEDDED_CUSTOMER_KEYS}


def person_of(customer: Json) -> Person:
    address = customer["default_address"]
    return Person(
        customer["first_name"],
        customer["last_name"],
        address["country_code"],
        address["country_name"],
        address["city"],
        address["address1"],
        address["zip"],
        address["province"],
        address["province_code"],
        address["phone"],
    )
