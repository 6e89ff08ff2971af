"""Secrets never leave their files: not in logs, status output, problems, or the journal."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from seamline.connectors.http.signature import sign
from tests.reliability.harness import Landscape, drained


def test_a_running_hub_never_writes_its_secrets_anywhere(land: Landscape, tmp_path: Path) -> None:
    token = "Bearer canary-token-5f3a9c"
    (land.project.dir / "secrets" / "sink.token").write_text(token)
    sink_file = land.project.dir / "systems" / "sink.yaml"
    sink_file.write_text(
        sink_file.read_text().replace(
            "  timeout: 5s\n",
            "  timeout: 5s\n  headers: {Authorization: {file: secrets/sink.token}}\n",
        )
    )
    secret = land.project.secret

    async def go() -> None:
        await land.hub.start()
        # Given traffic of every kind: good, forged, malformed, and refused by the target
        await land.send(count=200, connections=4, id_prefix="s", poison_rate=0.05, seed=3)
        body = b'{"type": "order.updated", "data": "not an object"}'
        now = int(time.time())
        async with aiohttp.ClientSession() as session:
            for signature in (sign(secret, msg_id="bad-1", timestamp=now, body=body), "v1,AAAA"):
                headers = {
                    "webhook-id": "bad-1",
                    "webhook-timestamp": str(now),
                    "webhook-signature": signature,
                }
                async with session.post(land.project.url, data=body, headers=headers):
                    pass
        await drained(land.project.journal, within=30)

    asyncio.run(go())
    status = subprocess.run(
        [sys.executable, "-m", "seamline.cli", "status", str(land.project.dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    land.hub.stop()
    # Then neither the signing secret, its key, nor the target's token appear anywhere
    key = secret.removeprefix("whsec_")
    canaries = [secret, key, base64.b64decode(key).hex(), token, "canary-token-5f3a9c"]
    places = {
        "hub log": land.hub.log.read_bytes(),
        "status": status.stdout.encode() + status.stderr.encode(),
        "journal": b"".join(p.read_bytes() for p in land.project.dir.glob("journal.db*")),
    }
    assert orjson.loads(status.stdout)["flows"], "status printed nothing to search"
    for place, content in places.items():
        leaked = [i for i, canary in enumerate(canaries) if canary.encode() in content]
        assert not leaked, f"secret #{leaked} is in the {place}"
