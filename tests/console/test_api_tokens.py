"""R23: API tokens are shown once, stored only as a hash, scoped by role, refused once revoked;
their use is recorded (at most once a minute)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from tests.conftest import Backend
from tests.console.site import Site, run, served


async def call(site: Site, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    kwargs = {} if body is None else {"json": body}
    async with site.client().request(
        method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
    ) as r:
        return r.status, await r.json()


def test_a_token_is_shown_once_stored_hashed_scoped_and_revocable(
    tmp_path: Path, backend: Backend
) -> None:
    async def go() -> dict[str, Any]:
        async with served(tmp_path, backend) as site:
            admin = await site.token("root", "admin")
            # When an admin makes a viewer token
            status, made = await call(
                site, admin, "POST", "/api/v1/tokens", {"name": "dashboard", "role": "viewer"}
            )
            assert status == 201
            secret = made["token"]
            _, listed = await call(site, admin, "GET", "/api/v1/tokens")
            dumped = [
                str(v)
                for table in ("api_token", "audit", "cursor")
                for row in backend.rows(f"SELECT * FROM {table}")
                for v in row
            ]
            hashes = [r[0] for r in backend.rows("SELECT token_hash FROM api_token")]
            reads = (await call(site, secret, "GET", "/api/v1/overview"))[0]
            acts = (await call(site, secret, "POST", "/api/v1/rejected/replay", {"system": "x"}))[0]
            last_used = [t for t in (await site.journal.tokens()) if t["name"] == "dashboard"]
            # And revokes it
            revoke = (await call(site, admin, "DELETE", f"/api/v1/tokens/{made['id']}"))[0]
            after = (await call(site, secret, "GET", "/api/v1/overview"))[0]
            again = (await call(site, admin, "DELETE", f"/api/v1/tokens/{made['id']}"))[0]
            return {
                "secret": secret,
                "listed": str(listed),
                "dumped": dumped,
                "hashes": hashes,
                "reads": reads,
                "acts": acts,
                "last_used": last_used[0]["last_used"],
                "revoke": revoke,
                "after": after,
                "again": again,
            }

    r = run(go())
    # Then its secret has 256 random bits, appears in no listing and no table, only its hash
    assert r["secret"].startswith("sl_") and len(r["secret"]) >= 3 + 43
    assert r["secret"] not in r["listed"]
    assert not any(r["secret"] in v for v in r["dumped"])
    assert hashlib.sha256(r["secret"].encode()).hexdigest() in r["hashes"]
    # And it reads but may not act, its use is recorded, and once revoked it is refused
    assert (r["reads"], r["acts"]) == (200, 403)
    assert r["last_used"] is not None
    assert (r["revoke"], r["after"], r["again"]) == (200, 401, 404)


def test_unknown_and_malformed_tokens_are_refused(tmp_path: Path) -> None:
    async def go() -> list[int]:
        async with served(tmp_path) as site:
            good = await site.token("ok", "viewer")
            statuses = []
            for header in (
                f"Bearer {good}",
                f"Bearer {good[:-1]}x",
                "Bearer sl_",
                "Bearer nonsense",
                f"Basic {good}",
                "",
            ):
                async with site.client().get("/api/v1/me", headers={"Authorization": header}) as r:
                    statuses.append(r.status)
            return statuses

    assert run(go()) == [200, 401, 401, 401, 401, 401]


def test_tokens_made_in_the_console_are_shown_once(tmp_path: Path) -> None:
    async def go() -> tuple[int, str, str]:
        async with served(tmp_path) as site:
            await site.user("root", "admin")
            root = await site.login("root")
            status, page = await root.post("/access/tokens", {"name": "grafana", "role": "viewer"})
            _, later = await root.get("/access")
            return status, page, later

    status, page, later = run(go())
    assert status == 200
    marker = 'id="new-token">'
    secret = page.split(marker, 1)[1].split("<", 1)[0]
    assert secret.startswith("sl_")
    assert secret not in later and "grafana" in later
