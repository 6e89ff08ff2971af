"""`Access`: who is asking. Sign-in with throttling, sessions with idle and absolute expiry,
API tokens; users and tokens managed by admins. Every change is audited by the journal.

| rule                   | value                                                              |
|------------------------|--------------------------------------------------------------------|
| failed logins per name | 10 an hour, then refused with the wrong-password message           |
| session idle           | 30 min without a request ends it (last seen written once a minute) |
| session lifetime       | 12 h from login, however busy                                      |
| session id             | new at every login; the one the browser had before ends            |
| API token              | shown once; only its SHA-256 kept; refused once revoked            |
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from seamline.console import credentials
from seamline.journal.base import ConsoleJournal, Role

log = logging.getLogger("seamline.console")

MAX_FAILURES = 10
FAILURE_WINDOW = 3600.0
IDLE = 30 * 60.0
LIFETIME = 12 * 3600.0
TOUCH_EVERY = 60.0
LOGIN_REFUSED = "Sign-in failed: the name or password is wrong, or there were too many attempts."


class LoginRefused(Exception):
    """Wrong name, wrong password or throttled: one message for all three."""

    def __init__(self) -> None:
        super().__init__(LOGIN_REFUSED)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is from, and how it proved it."""

    name: str
    role: Role
    via: Literal["session", "token"]
    csrf: str = ""
    session: str = ""
    """The hash of the session id (sessions only)."""

    @property
    def actor(self) -> str:
        """As the audit log names it."""
        return self.name if self.via == "session" else f"token:{self.name}"


@dataclass(frozen=True, slots=True)
class Login:
    session_id: str
    """For the cookie; never stored or logged."""
    principal: Principal


class Access:
    def __init__(
        self,
        journal: ConsoleJournal,
        *,
        clock: Callable[[], float] = time.time,
        idle: float = IDLE,
        lifetime: float = LIFETIME,
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.idle = idle
        self.lifetime = lifetime

    async def login(self, name: str, password: str, *, replaces: str | None = None) -> Login:
        """Sign in under a new session id (the one in `replaces`, if any, ends)."""
        now = self.clock()
        throttled = (
            await self.journal.login_failures(name, since=now - FAILURE_WINDOW) >= MAX_FAILURES
        )
        user = await self.journal.user(name)
        # The hash is checked even when the answer is known, so that neither an unknown name
        # nor throttling shows in the time taken.
        # In a thread: argon2 spends ~25 ms of CPU (without the GIL), which must not stall the
        # event loop that also takes webhooks.
        good = await asyncio.to_thread(
            credentials.check_password, user.password_hash if user else None, password
        )
        if throttled or not good or user is None:
            if throttled:
                log.warning("login throttled", extra={"user": name[:64]})
            else:
                await self.journal.login_failed(name[:200], now=now, window=FAILURE_WINDOW)
            raise LoginRefused
        await self.journal.purge_sessions(
            idle_before=now - self.idle, born_before=now - self.lifetime
        )
        session_id = credentials.new_secret()
        csrf = credentials.new_secret()
        id_hash = credentials.digest(session_id)
        await self.journal.start_session(
            id_hash,
            user=user.name,
            csrf=csrf,
            now=now,
            replaces=None if replaces is None else credentials.digest(replaces),
        )
        return Login(session_id, Principal(user.name, user.role, "session", csrf, id_hash))

    async def from_session(self, session_id: str) -> Principal | None:
        """The session's user, or None if it does not exist or has expired (then it ends)."""
        id_hash = credentials.digest(session_id)
        found = await self.journal.session(id_hash)
        if found is None:
            return None
        now = self.clock()
        if now - found.last_seen > self.idle or now - found.created_at > self.lifetime:
            await self.journal.end_session(id_hash, actor=None)
            return None
        if now - found.last_seen >= TOUCH_EVERY:
            await self.journal.touch_session(id_hash, now=now)
        return Principal(found.user, found.role, "session", found.csrf, id_hash)

    async def from_token(self, secret: str) -> Principal | None:
        if not secret.startswith(credentials.TOKEN_PREFIX):
            return None
        found = await self.journal.token(credentials.digest(secret))
        if found is None:
            return None
        now = self.clock()
        if found.last_used is None or now - found.last_used >= TOUCH_EVERY:
            await self.journal.touch_token(found.id, now=now)
        return Principal(found.name, found.role, "token")

    async def logout(self, principal: Principal) -> None:
        if principal.via == "session":
            await self.journal.end_session(principal.session, actor=principal.name)

    # --- admin ------------------------------------------------------------------------------------

    async def add_user(self, name: str, role: Role, password: str, *, actor: str) -> None:
        """ValueError with the reason if the name or password will not do."""
        name = name.strip()
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise ValueError("a user name has 1 to 64 characters and no spaces")
        problem = credentials.password_problem(password)
        if problem:
            raise ValueError(problem)
        added = await self.journal.add_user(
            name,
            role=role,
            password_hash=await asyncio.to_thread(credentials.hash_password, password),
            actor=actor,
            now=self.clock(),
        )
        if not added:
            raise ValueError(f"there is already a user {name!r}")

    async def add_token(self, name: str, role: Role, *, actor: str) -> tuple[int, str]:
        """A new token: its id and its secret, which is shown once and not kept."""
        name = name.strip()
        if not name or len(name) > 64:
            raise ValueError("a token name has 1 to 64 characters")
        secret = credentials.new_token()
        token_id = await self.journal.add_token(
            name, role=role, token_hash=credentials.digest(secret), actor=actor, now=self.clock()
        )
        return token_id, secret
