"""Passwords, session ids and API token secrets: how they are made, hashed and checked.

Passwords are hashed with argon2id at OWASP's floor (19 MiB, 2 passes, 1 lane), in the PHC
string form (`$argon2id$v=19$m=19456,t=2,p=1$...`), which carries its own parameters: hashes
made with other parameters still verify. Session ids and token secrets are 32 random
bytes; the journal keeps only their SHA-256, which is enough for secrets with 256 bits of
entropy (no dictionary to try) and cheap enough to check on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from seamline.journal.base import ROLES, Role

PASSWORDS = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)
TOKEN_PREFIX = "sl_"
MIN_PASSWORD = 12
_DUMMY = PASSWORDS.hash(secrets.token_urlsafe(16))
"""Checked against when the name is unknown, so that answering takes as long as for a user."""


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`; with `stored` None, spends the same time, False."""
    try:
        return PASSWORDS.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if len(password) > 1024:
        return "a password may have at most 1024 characters"
    return None


def new_secret() -> str:
    """A session id or token secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_token() -> str:
    return TOKEN_PREFIX + new_secret()


def digest(secret: str) -> str:
    """What the journal stores for a session id or token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def role_of(text: str) -> Role:
    """A role by name; ValueError naming the roles otherwise."""
    for role in ROLES:
        if text == role:
            return role
    raise ValueError(f"unknown role {text!r}: use one of {', '.join(ROLES)}")


def may(role: Role, needed: Role) -> bool:
    """True if `role` may do what `needed` may (viewer < operator < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)
