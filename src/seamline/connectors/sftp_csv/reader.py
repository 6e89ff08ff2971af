"""Reading a 3PL's file drop for checks: its newest inventory snapshot.

| entity  | key      | values                                                          |
|---------|----------|-----------------------------------------------------------------|
| `stock` | `(sku,)` | `available`: the snapshot's level (summed over its locations); |
|         |          | null when the SKU's row cannot be read (level unknown)          |

The newest `inv_<version>_<ts>.csv` by its name's time, wherever it is: still in `out_dir`
or already moved to `processed_dir` by the poller (`<name>.<stamp>`). A snapshot is full: a
SKU it does not list has 0, which a check sees as "missing" on this side. No snapshot at all
is a TransientError (nothing to compare yet), not an empty set.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator, Sequence

from seamline.checks.compare import Row
from seamline.connectors.base import Window
from seamline.connectors.sftp_csv.client import SftpClient
from seamline.connectors.sftp_csv.connector import SftpCsvOptions
from seamline.connectors.sftp_csv.formats import parse_snapshot, snapshot_key
from seamline.errors import ContractError, TransientError

PAGE = 1000


class SftpCsvReader:
    entities: Sequence[str] = ("stock",)

    def __init__(self, name: str, options: SftpCsvOptions) -> None:
        self.name = name
        self.options = options
        self.client = SftpClient(name, options)

    async def close(self) -> None:
        await self.client.close()

    async def newest_snapshot(self) -> str | None:
        """Path of the newest inventory snapshot in `out_dir` or `processed_dir`."""
        best: tuple[str, str] | None = None
        for folder in (self.options.out_dir, self.options.processed_dir):
            for f in await self.client.list(folder, missing_ok=True):
                if not f.name.startswith("inv_"):
                    continue
                name = f.name[: f.name.index(".csv") + 4] if ".csv" in f.name else f.name
                placed = snapshot_key(name)
                if placed is not None and (best is None or placed[0] > best[0]):
                    best = (placed[0], posixpath.join(folder, f.name))
        return best[1] if best else None

    async def pages(self, entity: str, window: Window | None = None) -> AsyncIterator[list[Row]]:
        if entity not in self.entities:
            raise ContractError(f"{self.name}: a 3PL file drop lists stock, not {entity!r}")
        path = await self.newest_snapshot()
        if path is None:
            raise TransientError(f"{self.name}: no inventory snapshot (inv_*.csv) to read yet")
        data = await self.client.read(path)
        if data is None:
            raise TransientError(f"{self.name}: {path} went away while it was read")
        parsed = parse_snapshot(data, self.options.columns.inventory)
        if parsed.unreadable:
            raise ContractError(f"{self.name}: {path}: {parsed.unreadable}")
        levels: dict[str, int | None] = {}
        for _, row in parsed.rows:
            before = levels.get(row["sku"]) or 0
            levels[row["sku"]] = before + int(row["available"])
        for sku in parsed.named - levels.keys():
            levels[sku] = None
        rows = [Row((sku,), {"available": available}) for sku, available in levels.items()]
        for start in range(0, len(rows), PAGE):
            yield rows[start : start + PAGE]
