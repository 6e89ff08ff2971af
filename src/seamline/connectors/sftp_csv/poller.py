"""Reading `out_dir`: shipment confirmations and inventory snapshots, journaled once.

Every `poll.interval` the active scheduler lists `out_dir` and takes `shp_*.csv` and
`inv_*.csv` files oldest first (time, then name). A file is taken once it ends with a newline
and kept its size and time for `poll.settle`: a 3PL writing in place is not done yet. After
`poll.give_up` a file still cut is read as it is, its last row rejected.

- **Shipments**: rows are grouped by order and tracking number; each group is one message
  (`fulfillment.created`), source id `shp:<order>:<tracking>:<sha256 of the rows>`. A file
  read again (a crash before the move) or sent twice by the 3PL gives the same ids: the
  journal keeps one. Rows carry no file name or line into the id for that reason.
- **Inventory**: a snapshot is full: a SKU it does not list has 0. Each SKU becomes one message
  (`inventory.changed`), source id `inv:<snapshot>:<sku>:<location>`. The SKUs of the last
  snapshot journaled are kept in the cursor `poll:<system>:inventory`; one missing from the
  next snapshot is journaled with `available: 0`. Only the newest of the waiting snapshots is
  read; older ones, and any not newer than the last one journaled (late or duplicate files),
  are moved aside unread: a newer full snapshot supersedes them.
- **Bad rows**: each is journaled as a message that decodes to a ContractError naming the file
  and line, so it shows as rejected, next to the good rows of its file, which go through. A
  file without a usable header is one such message for line 1.

Then the file is moved to `processed_dir` as `<name>.<YYYYMMDDHHMMSS>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import posixpath
import time
from collections.abc import Sequence
from typing import Any

import orjson

from seamline.connectors.base import PollJournal
from seamline.connectors.sftp_csv.client import RemoteFile, SftpClient
from seamline.connectors.sftp_csv.connector import PollOptions, SftpCsvOptions
from seamline.connectors.sftp_csv.formats import (
    Parsed,
    parse_shipments,
    parse_snapshot,
    snapshot_key,
)
from seamline.journal.base import NewMessage

log = logging.getLogger("seamline.sftp_csv")

KIND = "x-sftp-csv-kind"


def _sha(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


class SftpCsvPoller:
    def __init__(self, name: str, options: SftpCsvOptions) -> None:
        assert options.poll is not None
        self.name = name
        self.options = options
        self.poll_options: PollOptions = options.poll
        self.interval = self.poll_options.interval
        self.client = SftpClient(name, options)
        self._seen: dict[str, tuple[int, float, float]] = {}
        """name -> (size, mtime, when first seen so) of files not taken yet."""
        self._made_processed = False

    @property
    def warnings(self) -> Sequence[str]:
        return ()

    async def close(self) -> None:
        await self.client.close()

    async def poll(self, journal: PollJournal) -> int:
        files = await self.client.list(self.options.out_dir)
        files.sort(key=lambda f: (f.mtime, f.name))
        journaled = 0
        snapshots: list[tuple[RemoteFile, bytes]] = []
        now = time.monotonic()
        names = {f.name for f in files}
        self._seen = {k: v for k, v in self._seen.items() if k in names}
        for f in files:
            if not f.name.endswith(".csv") or not f.name.startswith(("shp_", "inv_")):
                continue
            ready = self._settled(f, now)
            if ready is None:
                continue
            data = await self.client.read(self._path(f.name))
            if data is None:
                continue
            truncated = not data.endswith(b"\n")
            if truncated and ready < self.poll_options.give_up:
                continue  # still being written
            if f.name.startswith("shp_"):
                journaled += await self._shipments(journal, f.name, data, truncated)
                await self._move_aside(f.name)
            else:
                snapshots.append((f, data))
        if snapshots:
            journaled += await self._snapshots(journal, snapshots)
        return journaled

    def _settled(self, f: RemoteFile, now: float) -> float | None:
        """For how long the file has not changed, once that is `settle`; else None."""
        seen = self._seen.get(f.name)
        if seen is None or seen[:2] != (f.size, f.mtime):
            self._seen[f.name] = (f.size, f.mtime, now)
            return 0.0 if self.poll_options.settle == 0 else None
        quiet = now - seen[2]
        return quiet if quiet >= self.poll_options.settle else None

    def _path(self, name: str) -> str:
        return posixpath.join(self.options.out_dir, name)

    async def _move_aside(self, name: str) -> None:
        if not self._made_processed:
            await self.client.makedirs(self.options.processed_dir)
            self._made_processed = True
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        target = posixpath.join(self.options.processed_dir, f"{name}.{stamp}")
        n = 1
        while not await self.client.rename(self._path(name), target):
            n += 1
            target = posixpath.join(self.options.processed_dir, f"{name}.{stamp}-{n}")
        self._seen.pop(name, None)

    async def _append(
        self, journal: PollJournal, source_id: str, kind: str, body: dict[str, Any]
    ) -> int:
        message = NewMessage(
            self.name, source_id, time.time(), orjson.dumps({KIND: kind}), orjson.dumps(body)
        )
        return 1 if await journal.append(message) is not None else 0

    async def _rejects(self, journal: PollJournal, name: str, kind: str, parsed: Parsed) -> int:
        journaled = 0
        if parsed.unreadable is not None:
            body = {"file": name, "line": 1, "reason": parsed.unreadable, "text": ""}
            return await self._append(journal, f"bad:{kind}:{name}", "rejected", body)
        for bad in parsed.bad:
            body = {"file": name, "line": bad.line, "reason": bad.reason, "text": bad.text}
            scope = name if kind == "inventory" else ""
            source_id = f"bad:{kind}:{_sha([scope, bad.text, bad.reason])}"
            journaled += await self._append(journal, source_id, "rejected", body)
        return journaled

    async def _shipments(self, journal: PollJournal, name: str, data: bytes, cut: bool) -> int:
        parsed = parse_shipments(data, self.options.columns.shipment, truncated=cut)
        journaled = await self._rejects(journal, name, "shipment", parsed)
        groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
        for line, row in parsed.rows:
            groups.setdefault((row["order_id"], row["tracking_number"]), []).append((line, row))
        for (order, tracking), rows in groups.items():
            content = [r for _, r in rows]
            body = {"file": name, "lines": [n for n, _ in rows], "rows": content}
            source_id = f"shp:{order}:{tracking}:{_sha(sorted(content, key=_sha))}"
            journaled += await self._append(journal, source_id, "shipment", body)
        return journaled

    async def _snapshots(self, journal: PollJournal, files: list[tuple[RemoteFile, bytes]]) -> int:
        cursor = f"poll:{self.name}:inventory"
        saved = await journal.get_cursor(cursor)
        state: dict[str, Any] = orjson.loads(saved) if saved else {"snapshot": "", "skus": []}
        keyed = []
        journaled = 0
        for f, data in files:
            placed = snapshot_key(f.name)
            if placed is None:
                body = {
                    "file": f.name,
                    "line": 1,
                    "reason": "an inventory file is named inv_<version>_<YYYYMMDDHHMM[SS]>.csv",
                    "text": "",
                }
                journaled += await self._append(
                    journal, f"bad:inventory:{f.name}", "rejected", body
                )
                await self._move_aside(f.name)
            else:
                keyed.append((placed, f, data))
        keyed.sort(key=lambda k: k[0][0])
        if not keyed:
            return journaled
        (newest, when), last, data = keyed[-1]
        for _, f, _ in keyed[:-1]:
            log.info("inventory snapshot superseded", extra={"file": f.name, "by": last.name})
            await self._move_aside(f.name)
        if newest <= state["snapshot"]:
            log.info("late or repeated inventory snapshot", extra={"file": last.name})
            await self._move_aside(last.name)
            return journaled
        truncated = not data.endswith(b"\n")
        parsed = parse_snapshot(data, self.options.columns.inventory, truncated=truncated)
        journaled += await self._rejects(journal, last.name, "inventory", parsed)
        default_location = self.options.location_id or self.name
        levels: dict[tuple[str, str], int] = {}
        for _, row in parsed.rows:
            levels[(row["sku"], row["location"] or default_location)] = row["available"]
        known = {(str(s), str(loc)) for s, loc in state["skus"]}
        full = parsed.unreadable is None and not truncated
        if full:
            # A full snapshot: what it does not list is gone. A cut or unreadable one says
            # nothing about what it lacks, and a bad row's SKU is there with a level unknown.
            for sku, location in known:
                if (sku, location) not in levels and sku not in parsed.named:
                    levels[(sku, location)] = 0
            remember = {k for k, v in levels.items() if v != 0}
            remember |= {k for k in known if k[0] in parsed.named}
        else:
            remember = known | set(levels)
        stamp = when.isoformat().replace("+00:00", "Z")
        for (sku, location), available in sorted(levels.items()):
            body = {
                "file": last.name,
                "sku": sku,
                "location_id": location,
                "available": available,
                "updated_at": stamp,
            }
            source_id = f"inv:{newest}:{sku}:{location}"
            journaled += await self._append(journal, source_id, "inventory", body)
        skus = sorted([s, loc] for s, loc in remember)
        await journal.set_cursor(cursor, orjson.dumps({"snapshot": newest, "skus": skus}).decode())
        await self._move_aside(last.name)
        return journaled
