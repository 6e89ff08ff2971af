"""R21, R22: sign-in, throttling, session hygiene (rotation, logout, idle and absolute expiry,
cookie flags), and no journal write per request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seamline.console.access import LOGIN_REFUSED, MAX_FAILURES
from tests.conftest import Backend
from tests.console.site import PASSWORD, Browser, run, served


async def me(browser: Browser, cookie: str | None = None) -> int:
    """The status of GET /api/v1/me with the browser's cookie (or the one given)."""
    headers = {} if cookie is None else {"Cookie": f"seamline_session={cookie}"}
    http = browser.http if cookie is None else browser.site.client()
    async with http.get("/api/v1/me", headers=headers) as r:
        return r.status


def test_login_rotates_the_session_id_and_ends_the_old_one(
    tmp_path: Path, backend: Backend
) -> None:
    # Given Alice signed in once
    async def go() -> tuple[str, str, int, int]:
        async with served(tmp_path, backend) as site:
            await site.user("alice", "operator")
            alice = await site.login("alice")
            first = alice.cookie()
            assert first is not None
            # When she signs in again from the same browser
            await alice.login("alice", PASSWORD)
            second = alice.cookie()
            assert second is not None
            return first, second, await me(alice, first), await me(alice)

    first, second, old_status, new_status = run(go())
    # Then she has a new session id, and the old one is refused
    assert first != second
    assert (old_status, new_status) == (401, 200)


def test_session_cookie_flags_over_http(tmp_path: Path) -> None:
    async def go() -> str:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            async with site.client().post(
                "/login",
                data={"name": "alice", "password": PASSWORD},
                headers={"Origin": site.url},
                allow_redirects=False,
            ) as r:
                return r.headers["set-cookie"]

    cookie = run(go())
    assert cookie.startswith("seamline_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # a plain-HTTP browser would not send it back


def test_session_cookie_is_host_prefixed_and_secure_behind_https(tmp_path: Path) -> None:
    # Given a console that people reach as https://hub.example.com (a proxy terminates TLS)
    async def go() -> str:
        async with served(tmp_path, public_url="https://hub.example.com") as site:
            await site.user("alice", "viewer")
            async with site.client().post(
                "/login",
                data={"name": "alice", "password": PASSWORD},
                headers={"Origin": "https://hub.example.com"},
                allow_redirects=False,
            ) as r:
                assert r.status == 303
                return r.headers["set-cookie"]

    cookie = run(go())
    assert cookie.startswith("__Host-seamline=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


def test_logout_ends_the_session(tmp_path: Path) -> None:
    async def go() -> tuple[int, int, int]:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            alice = await site.login("alice")
            cookie = alice.cookie()
            status, _ = await alice.post("/logout")
            return status, await me(alice, cookie), await me(alice)

    logout, old_cookie, browser = run(go())
    assert logout == 303
    assert (old_cookie, browser) == (401, 401)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([29 * 60], 200),  # idle under 30 min
        ([31 * 60], 401),  # idle over 30 min
        ([25 * 60, 25 * 60, 25 * 60], 200),  # busy: each request keeps it alive
        ([25 * 60] * 28 + [25 * 60], 401),  # busy, but 12 h after login it ends anyway
    ],
)
def test_session_expiry(tmp_path: Path, steps: list[float], expected: int) -> None:
    async def go() -> list[int]:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            alice = await site.login("alice")
            seen = []
            for step in steps:
                site.clock.advance(step)
                seen.append(await me(alice))
            return seen

    seen = run(go())
    assert seen[-1] == expected
    assert all(s == 200 for s in seen[:-1])


def test_requests_within_a_minute_write_nothing(tmp_path: Path) -> None:
    async def go() -> tuple[int, int, int]:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            alice = await site.login("alice")
            site.clock.advance(61)
            await me(alice)  # refreshes last-seen: one write
            start = site.journal.committed_ops
            for _ in range(20):
                site.clock.advance(2)
                assert await me(alice) == 200
            quiet = site.journal.committed_ops
            site.clock.advance(61)
            await me(alice)
            return start, quiet, site.journal.committed_ops

    start, quiet, later = run(go())
    assert quiet == start
    assert later == quiet + 1


def test_session_ids_are_stored_hashed(tmp_path: Path, backend: Backend) -> None:
    async def go() -> tuple[str, list[str]]:
        async with served(tmp_path, backend) as site:
            await site.user("alice", "viewer")
            alice = await site.login("alice")
            cookie = alice.cookie()
            assert cookie
            rows = backend.rows("SELECT id_hash, csrf FROM session")
            return cookie, [str(v) for r in rows for v in r]

    cookie, stored = run(go())
    assert stored and cookie not in stored


def test_password_hash_is_argon2id_at_owasp_strength_or_more(tmp_path: Path) -> None:
    async def go() -> str:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            user = await site.journal.user("alice")
            assert user is not None
            return user.password_hash

    stored = run(go())
    found = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
    assert found, stored
    m, t, p = (int(x) for x in found.groups())
    assert m >= 19456 and t >= 2 and p >= 1
    assert PASSWORD not in stored


def test_login_throttling_refuses_after_ten_failures_with_the_same_message(
    tmp_path: Path,
) -> None:
    # Given Alice, and someone guessing her password
    async def go() -> tuple[list[tuple[int, bool]], tuple[int, bool], tuple[int, bool], int]:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            guesser = Browser(site, site.client())
            tries = []
            for n in range(MAX_FAILURES):
                status, text = await guesser.login("alice", f"guess {n}")
                tries.append((status, LOGIN_REFUSED in text))
            # When the right password comes after ten wrong ones within the hour
            status, text = await Browser(site, site.client()).login("alice", PASSWORD)
            throttled = (status, LOGIN_REFUSED in text)
            status, text = await Browser(site, site.client()).login("nobody", "whatever")
            unknown = (status, LOGIN_REFUSED in text)
            # And an hour later
            site.clock.advance(3601)
            status, _ = await Browser(site, site.client()).login("alice", PASSWORD)
            return tries, throttled, unknown, status

    tries, throttled, unknown, later = run(go())
    # Then it is refused with the wrong-password message, as is an unknown name
    assert tries == [(401, True)] * MAX_FAILURES
    assert throttled == (401, True)
    assert unknown == (401, True)
    # And the hour after, the right password works again
    assert later == 303


def test_login_from_another_origin_is_refused(tmp_path: Path) -> None:
    # Login CSRF: a page elsewhere signs the victim's browser in as the attacker
    async def go() -> tuple[int, str | None]:
        async with served(tmp_path) as site:
            await site.user("mallory", "viewer")
            http = site.client()
            async with http.post(
                "/login",
                data={"name": "mallory", "password": PASSWORD},
                headers={"Origin": "http://evil.example"},
                allow_redirects=False,
            ) as r:
                return r.status, r.headers.get("set-cookie")

    assert run(go()) == (403, None)


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/dead", "/dead"), ("//evil.example/x", "/"), ("https://evil.example", "/"), ("", "/")],
)
def test_login_goes_back_only_to_pages_of_the_console(
    tmp_path: Path, target: str, expected: str
) -> None:
    async def go() -> str:
        async with served(tmp_path) as site:
            await site.user("alice", "viewer")
            async with site.client().post(
                "/login",
                data={"name": "alice", "password": PASSWORD, "next": target},
                headers={"Origin": site.url},
                allow_redirects=False,
            ) as r:
                return r.headers["location"]

    assert run(go()) == expected


def test_no_password_or_secret_reaches_a_log_line_or_a_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")

    async def go() -> tuple[str, str]:
        async with served(tmp_path) as site:
            await site.user("alice", "admin")
            pages = []
            guesser = Browser(site, site.client())
            for _ in range(12):  # wrong passwords, then throttled
                pages.append((await guesser.login("alice", "wrong " + PASSWORD))[1])
            site.clock.advance(3601)
            alice = await site.login("alice")
            cookie = alice.cookie() or ""
            _, page = await alice.post("/access/tokens", {"name": "ci", "role": "viewer"})
            secret = page.split('id="new-token">', 1)[1].split("<", 1)[0]
            await alice.post("/logout", origin="http://evil.example")  # refused, logged
            for path in ("/", "/audit", "/access", "/api/v1/audit", "/api/v1/users"):
                pages.append((await alice.get(path))[1])
            return "\n".join(pages), f"{cookie}|{secret}"

    pages, secrets = run(go())
    cookie, secret = secrets.split("|")
    logged = caplog.text
    assert "request refused" in logged and "login throttled" in logged  # it did log
    for text in (PASSWORD, cookie, secret):
        assert text not in logged
        assert text not in pages
