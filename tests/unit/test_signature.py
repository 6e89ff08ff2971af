"""Standard Webhooks signatures: what is accepted, and every forgery refused with its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamline.connectors.http.signature import (
    HmacSha256,
    WebhookVerifier,
    generate_secret,
    secret_key,
    sign,
)
from seamline.errors import SignatureError

NOW = 1_700_000_000
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = b'{"type":"order.updated","data":{"id":42,"total":"19.90"}}'


@dataclass(frozen=True)
class Request:
    headers: dict[str, str]
    body: bytes


def signed(
    *, secret: str = SECRET, msg_id: str = MSG_ID, timestamp: int = NOW, body: bytes = BODY
) -> Request:
    signature = sign(secret, msg_id=msg_id, timestamp=timestamp, body=body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    return Request(headers, body)


def verifier(*secrets: str) -> WebhookVerifier:
    return WebhookVerifier(secrets or (SECRET,), tolerance=300.0, clock=lambda: float(NOW))


def with_header(request: Request, name: str, value: str | None) -> Request:
    headers = {k: v for k, v in request.headers.items() if k != name}
    if value is not None:
        headers[name] = value
    return replace(request, headers=headers)


def raw_digest(request: Request) -> bytes:
    mac = hmac.new(secret_key(SECRET), digestmod=hashlib.sha256)
    mac.update(f"{MSG_ID}.{NOW}.".encode() + request.body)
    return mac.digest()


def test_matches_the_specifications_published_test_vector() -> None:
    # Given the example from the Standard Webhooks specification
    body = b'{"test": 2432232314}'
    # When we sign it
    signature = sign(SECRET, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)
    # Then we produce the published signature, so any conforming sender or receiver interoperates
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_signed_request_verifies_and_yields_its_webhook_id() -> None:
    # Given a request signed with the receiver's secret
    request = signed()
    # When the receiver verifies it
    msg_id = verifier().verify(request.headers, request.body)
    # Then it is accepted and the webhook id comes back for deduplication
    assert msg_id == MSG_ID


def test_asgi_headers_verify_like_a_mapping() -> None:
    # Given the same request as an ASGI server hands it over: lowercase bytes pairs
    request = signed()
    raw = [(b"content-type", b"application/json")] + [
        (k.encode(), v.encode()) for k, v in request.headers.items()
    ]
    # When it is verified without building a dict
    msg_id = verifier().verify_asgi(raw, request.body)
    # Then the result is the same
    assert msg_id == MSG_ID


def test_header_names_in_other_cases_are_still_found() -> None:
    # Given a caller that forgot to lowercase the header names
    request = signed()
    headers = {k.title(): v for k, v in request.headers.items()}
    # When it verifies
    msg_id = verifier().verify(headers, request.body)
    # Then the slower case-insensitive lookup still finds them
    assert msg_id == MSG_ID


def several_signatures(separator: str) -> Request:
    """Signed with SECRET, its signature after one made with another secret."""
    entries = [signed(secret=OTHER_SECRET), signed()]
    return with_header(
        signed(),
        "webhook-signature",
        separator.join(e.headers["webhook-signature"] for e in entries),
    )


ACCEPTED: list[tuple[str, Callable[[], Request], tuple[str, ...]]] = [
    ("299 s old", lambda: signed(timestamp=NOW - 299), (SECRET,)),
    ("299 s ahead", lambda: signed(timestamp=NOW + 299), (SECRET,)),
    ("signed with the old secret during rotation", signed, (OTHER_SECRET, SECRET)),
    (
        "signed with the new secret during rotation",
        lambda: signed(secret=OTHER_SECRET),
        (SECRET, OTHER_SECRET),
    ),
    ("one of several signatures matches", lambda: several_signatures(" "), (SECRET,)),
    ("several signatures apart by a tab", lambda: several_signatures("\t"), (SECRET,)),
    (
        "unknown version prefixes are ignored",
        lambda: with_header(
            signed(),
            "webhook-signature",
            "v1a,bm90LWEtc2lnbmF0dXJl " + signed().headers["webhook-signature"],
        ),
        (SECRET,),
    ),
]


@pytest.mark.parametrize(
    ("make_request", "secrets"),
    [pytest.param(make, secrets, id=name) for name, make, secrets in ACCEPTED],
)
def test_accepted(make_request: Callable[[], Request], secrets: tuple[str, ...]) -> None:
    # Given a request that is authentic under the receiver's secrets
    request = make_request()
    # When it is verified
    msg_id = verifier(*secrets).verify(request.headers, request.body)
    # Then it is accepted
    assert msg_id == MSG_ID


def hex_signature() -> Request:
    return with_header(signed(), "webhook-signature", "v1," + raw_digest(signed()).hex())


def reserialised() -> Request:
    data = json.loads(BODY)
    return replace(signed(), body=json.dumps(data, indent=2).encode())


def respelled(signature: str) -> str:
    """The same 32 bytes in non-canonical base64: the last data character's unused bits set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = signature[-2]
    respelled = alphabet[alphabet.index(last) ^ 0b11]
    assert base64.b64decode(signature[3:-2] + respelled + "=") == base64.b64decode(signature[3:])
    return signature[:-2] + respelled + "="


def one_byte_changed() -> Request:
    request = signed()
    body = bytearray(request.body)
    body[10] ^= 0x01
    return replace(request, body=bytes(body))


REJECTED: list[tuple[str, Callable[[], Request], str]] = [
    ("one byte of body changed", one_byte_changed, "no signature matches"),
    ("body re-serialised", reserialised, "no signature matches"),
    ("wrong secret", lambda: signed(secret=OTHER_SECRET), "no signature matches"),
    (
        "text glued to the signature",
        lambda: with_header(
            signed(), "webhook-signature", signed().headers["webhook-signature"] + "x"
        ),
        "no signature matches",
    ),
    (
        "301 s old",
        lambda: signed(timestamp=NOW - 301),
        "timestamp is 301 s old, tolerance is 300 s",
    ),
    ("301 s ahead", lambda: signed(timestamp=NOW + 301), "301 s in the future"),
    (
        "timestamp changed after signing",
        lambda: with_header(signed(), "webhook-timestamp", str(NOW - 1)),
        "no signature matches",
    ),
    (
        "timestamp zero-padded after signing",
        lambda: with_header(signed(), "webhook-timestamp", f"0{NOW}"),
        "no signature matches",
    ),
    (
        "id changed after signing",
        lambda: with_header(signed(), "webhook-id", "msg_other"),
        "no signature matches",
    ),
    ("missing id", lambda: with_header(signed(), "webhook-id", None), "missing webhook-id header"),
    (
        "missing timestamp",
        lambda: with_header(signed(), "webhook-timestamp", None),
        "missing webhook-timestamp header",
    ),
    (
        "missing signature",
        lambda: with_header(signed(), "webhook-signature", None),
        "missing webhook-signature header",
    ),
    (
        "timestamp not an integer",
        lambda: with_header(signed(), "webhook-timestamp", f"{NOW}.5"),
        "not unix seconds",
    ),
    (
        "timestamp with a sign",
        lambda: with_header(signed(), "webhook-timestamp", f"+{NOW}"),
        "not unix seconds",
    ),
    (
        "signature without a version",
        lambda: with_header(
            signed(), "webhook-signature", base64.b64encode(raw_digest(signed())).decode()
        ),
        "malformed webhook-signature",
    ),
    (
        "signature not base64",
        lambda: with_header(signed(), "webhook-signature", "v1,***not-base64***"),
        "no signature matches",
    ),
    ("hex instead of base64", hex_signature, "no signature matches"),
    (
        "truncated signature",
        lambda: with_header(
            signed(), "webhook-signature", signed().headers["webhook-signature"][:-5]
        ),
        "no signature matches",
    ),
    (
        "same digest spelled with non-zero padding bits",
        lambda: with_header(
            signed(), "webhook-signature", respelled(signed().headers["webhook-signature"])
        ),
        "no signature matches",
    ),
    (
        "a comma-less entry beside a wrong signature",
        lambda: with_header(signed(), "webhook-signature", "garbage v1,AAAA"),
        "malformed webhook-signature",
    ),
    (
        "only unknown versions",
        lambda: with_header(
            signed(), "webhook-signature", "v1a," + signed().headers["webhook-signature"][3:]
        ),
        "no v1 signature",
    ),
    (
        "signature is the secret itself",
        lambda: with_header(signed(), "webhook-signature", "v1," + SECRET.removeprefix("whsec_")),
        "no signature matches",
    ),
]


@pytest.mark.parametrize(
    ("make_request", "reason"),
    [pytest.param(make, reason, id=name) for name, make, reason in REJECTED],
)
def test_rejected(make_request: Callable[[], Request], reason: str) -> None:
    # Given a request that is forged, stale, or incomplete
    request = make_request()
    # When it is verified
    with pytest.raises(SignatureError) as refused:
        verifier().verify(request.headers, request.body)
    # Then it is refused, and the message says why
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_", "empty"),
    ],
)
def test_a_malformed_secret_is_refused_at_construction(secret: str, complaint: str) -> None:
    # Given a secret that is not `whsec_<base64>`
    # When a verifier is built with it
    with pytest.raises(ValueError) as refused:
        WebhookVerifier([SECRET, secret])
    # Then construction fails with a message that says what is wrong
    assert complaint in str(refused.value)


def test_generated_secrets_are_fresh_and_usable() -> None:
    # Given two generated secrets
    first, second = generate_secret(), generate_secret()
    # Then they differ, hold 24 random bytes, and sign requests a verifier accepts
    assert first != second
    assert len(secret_key(first)) == 24
    request = signed(secret=first)
    assert verifier(first).verify(request.headers, request.body) == MSG_ID


_MUTABLE_FIELDS = st.sampled_from(["body", "webhook-id", "webhook-timestamp", "webhook-signature"])


@given(field=_MUTABLE_FIELDS, position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_single_byte_mutation_is_rejected(field: str, position: int, flip: int) -> None:
    # Given a valid signed request
    request = signed()
    # When one byte of the body or of a signed header is changed
    if field == "body":
        body = bytearray(request.body)
        body[position % len(body)] ^= flip
        mutated = replace(request, body=bytes(body))
    else:
        value = bytearray(request.headers[field].encode("latin-1"))
        value[position % len(value)] ^= flip
        mutated = with_header(request, field, value.decode("latin-1"))
    # Then the receiver refuses it
    with pytest.raises(SignatureError):
        verifier().verify(mutated.headers, mutated.body)


@given(
    key=st.binary(min_size=1, max_size=200),
    message=st.one_of(
        st.binary(max_size=5000),
        st.sampled_from([2046, 2047, 2048, 4094, 4095]).map(lambda n: b"x" * n),
    ),
    prefix=st.one_of(
        st.binary(max_size=80),
        st.sampled_from([2047, 2048, 5000]).map(lambda n: b"p" * n),
    ),
)
def test_the_verifiers_own_hmac_is_openssls(key: bytes, message: bytes, prefix: bytes) -> None:
    # Keys shorter than, as long as and longer than SHA-256's block; messages of any length,
    # and around the pieces it hashes them in; with and without a prefix hashed before them
    assert HmacSha256(key).digest(message) == hmac.digest(key, message, "sha256")
    assert HmacSha256(key).digest(message, prefix=prefix) == hmac.digest(
        key, prefix + message, "sha256"
    )
