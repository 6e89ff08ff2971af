"""Shopify webhooks in: authenticate on the raw bytes, name the delivery for dedupe.

`X-Shopify-Hmac-Sha256` is `base64(HMAC-SHA256(app client secret, raw body))`. After a secret
rotation Shopify may sign with the old secret for up to an hour, so every configured secret is
tried. The headers Shopify's own validator requires must be present, and the shop must be
ours: one app's secret signs for every shop it is installed on.

Dedupe: the delivery id is `{topic}:{X-Shopify-Event-Id}` when the event id is sent (the same
for every subscription's copy of one event, and across retries), else
`{topic}:{X-Shopify-Webhook-Id}`. The journal keeps one message per id; repeats are
acknowledged and dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from seamline.connectors.http.signature import HmacSha256
from seamline.errors import SignatureError

HMAC = b"x-shopify-hmac-sha256"
TOPIC = b"x-shopify-topic"
SHOP_DOMAIN = b"x-shopify-shop-domain"
API_VERSION = b"x-shopify-api-version"
WEBHOOK_ID = b"x-shopify-webhook-id"
EVENT_ID = b"x-shopify-event-id"
REQUIRED = (HMAC, TOPIC, SHOP_DOMAIN, API_VERSION, WEBHOOK_ID)


class ShopifyVerifier:
    def __init__(self, secrets: Sequence[str], *, shop: str) -> None:
        if not secrets:
            raise ValueError("a Shopify source needs the app's client secret in `secrets`")
        self._keys = [HmacSha256(s.encode()) for s in secrets]
        self.shop = shop

    def verify(self, raw_headers: Sequence[tuple[bytes, bytes]], body: bytes) -> str:
        """The delivery id of an authentic webhook; `SignatureError` saying what is wrong."""
        found: dict[bytes, bytes] = {}
        for name, value in raw_headers:
            lowered = name.lower()
            if lowered.startswith(b"x-shopify-"):
                found[lowered] = value
        missing = [h.decode() for h in REQUIRED if not found.get(h)]
        if missing:
            raise SignatureError(f"not a Shopify webhook: missing {', '.join(missing)}")
        try:
            signature = base64.b64decode(found[HMAC], validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("X-Shopify-Hmac-Sha256 is not base64") from None
        if not any(hmac.compare_digest(key.digest(body), signature) for key in self._keys):
            raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body: forged or altered")
        shop = found[SHOP_DOMAIN].decode("latin-1")
        if shop != self.shop:
            raise SignatureError(f"webhook from shop {shop}, this system is {self.shop}")
        topic = found[TOPIC].decode("latin-1")
        event = found.get(EVENT_ID)
        if event:
            return f"{topic}:{event.decode('latin-1')}"
        return f"{topic}:w{found[WEBHOOK_ID].decode('latin-1')}"


def sign(secret: str, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify sends for `body` (simulators, tests)."""
    return base64.b64encode(hmac.digest(secret.encode(), body, hashlib.sha256)).decode()
