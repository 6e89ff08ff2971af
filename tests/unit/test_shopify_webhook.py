"""Shopify webhooks at the door: authentic ones named for dedupe, the rest refused with why."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from seamline.connectors.shopify.webhook import ShopifyVerifier, sign
from seamline.errors import SignatureError

BODY = (Path(__file__).parents[1] / "fixtures/shopify/shopify_python_api/order.json").read_bytes()
SECRET, OLD_SECRET = "hush-2026", "hush-2025"
SHOP = "acme.myshopify.com"


def headers(
    body: bytes = BODY, secret: str = SECRET, **changes: str | None
) -> list[tuple[bytes, bytes]]:
    values: dict[str, str | None] = {
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-11-22T10:00:00.000Z",
    }
    values.update({k.replace("_", "-"): v for k, v in changes.items()})
    return [(k.lower().encode(), v.encode()) for k, v in values.items() if v is not None]


verifier = ShopifyVerifier([SECRET, OLD_SECRET], shop=SHOP)


def test_the_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    expected = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert sign(SECRET, BODY) == expected


ACCEPTED = [
    ("current secret", headers(), "orders/create:98880550-7158-44d4-b7cd-2c97c8a091b5"),
    (
        "old secret during rotation",
        headers(secret=OLD_SECRET),
        "orders/create:98880550-7158-44d4-b7cd-2c97c8a091b5",
    ),
    (
        "no event id: the webhook id",
        headers(**{"X-Shopify-Event-Id": None}),
        "orders/create:wb54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    ),
    (
        "header names in any case",
        [(k.upper(), v) for k, v in headers()],
        "orders/create:98880550-7158-44d4-b7cd-2c97c8a091b5",
    ),
]


@pytest.mark.parametrize(("case", "raw", "source_id"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_authentic_webhooks_are_named_by_topic_and_event(
    case: str, raw: list[tuple[bytes, bytes]], source_id: str
) -> None:
    assert verifier.verify(raw, BODY) == source_id


def test_copies_for_two_subscriptions_share_one_id_and_retries_too() -> None:
    first = verifier.verify(headers(**{"X-Shopify-Webhook-Id": "one"}), BODY)
    second = verifier.verify(headers(**{"X-Shopify-Webhook-Id": "two"}), BODY)
    assert first == second


REFUSED = [
    ("body altered", headers(), BODY.replace(b"1001", b"1002"), "does not match"),
    ("unknown secret", headers(secret="someone-else"), BODY, "does not match"),
    ("not base64", headers(**{"X-Shopify-Hmac-Sha256": "%%%"}), BODY, "not base64"),
    ("unsigned", headers(**{"X-Shopify-Hmac-Sha256": None}), BODY, "missing x-shopify-hmac-sha256"),
    (
        "required headers missing",
        headers(**{"X-Shopify-Topic": None, "X-Shopify-Webhook-Id": None}),
        BODY,
        "missing x-shopify-topic, x-shopify-webhook-id",
    ),
    (
        "another shop",
        headers(**{"X-Shopify-Shop-Domain": "other.myshopify.com"}),
        BODY,
        "other.myshopify.com",
    ),
]


@pytest.mark.parametrize(("case", "raw", "body", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
def test_forged_or_incomplete_webhooks_are_refused_with_the_reason(
    case: str, raw: list[tuple[bytes, bytes]], body: bytes, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verifier.verify(raw, body)


def test_a_source_without_a_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="client secret"):
        ShopifyVerifier([], shop=SHOP)
