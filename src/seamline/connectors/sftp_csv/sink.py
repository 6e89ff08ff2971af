"""`send_order`: an order file in the 3PL's `in_dir`, written once.

The natural key is the order id: the file drop has no update, so one order is one file,
ever. Before writing, `in_dir` and `in_processed_dir` are searched for `ord_<order>_*`:

- a file there with the same bytes means the order was sent (by an attempt whose answer was
  lost): done, nothing is written;
- a file there with other bytes means the order was sent with other content: a
  PermanentError, since a second file would be a second order to the warehouse.

Otherwise the bytes go to `.ord_<order>_<ts>.csv.tmp` (a name the 3PL does not pick up) and
are renamed to `ord_<order>_<YYYYMMDDHHMM>.csv`, so the 3PL never sees half a file. A rename
whose answer is lost is an unknown outcome; the retry finds the file and is done. A rename onto
a name taken by identical bytes is done too.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import time
from collections.abc import Mapping
from typing import Any

from seamline.connectors.base import Exchange
from seamline.connectors.sftp_csv.client import SftpClient
from seamline.connectors.sftp_csv.connector import OPERATIONS, SftpCsvOptions
from seamline.connectors.sftp_csv.formats import (
    is_order_file_of,
    order_csv,
    order_file_name,
    order_file_prefix,
)
from seamline.errors import ContractError, PermanentError, SeamlineError


class SftpCsvSink:
    def __init__(self, name: str, options: SftpCsvOptions) -> None:
        self.name = name
        self.options = options
        self.client = SftpClient(name, options)

    def idempotent(self, operation: str, options: Mapping[str, Any]) -> bool:
        return operation in OPERATIONS

    async def close(self) -> None:
        await self.client.close()

    async def send(
        self,
        operation: str,
        body: dict[str, Any],
        *,
        options: Mapping[str, Any],
        idempotency_key: str,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        started = time.monotonic()
        data = b""
        refs: dict[str, str] = {}
        try:
            if operation != "send_order":
                raise ContractError(
                    f"{self.name}: no operation '{operation}' (known: {', '.join(OPERATIONS)})"
                )
            order_id, data = order_csv(body, self.options.columns.order)
            refs["order"] = order_id
            refs["file"] = await self.send_order(order_id, data)
        except SeamlineError as exc:
            return Exchange(data, None, b"", time.monotonic() - started, exc, refs)
        return Exchange(data, None, refs["file"].encode(), time.monotonic() - started, None, refs)

    async def send_order(self, order_id: str, data: bytes) -> str:
        """The path of the order's file, written now or found from before."""
        o = self.options
        prefix = order_file_prefix(order_id)
        found = await self._sent_before(prefix, data)
        if found is not None:
            return found
        final = posixpath.join(o.in_dir, order_file_name(order_id, dt.datetime.now(dt.UTC)))
        temporary = posixpath.join(o.in_dir, f".{posixpath.basename(final)}.tmp")
        await self.client.write(temporary, data)
        if not await self.client.rename(temporary, final):
            # A name taken in the same minute: ours if the bytes are the same.
            await self.client.remove(temporary)
            if _same(await self.client.read(final), data):
                return final
            raise PermanentError(
                f"{self.name}: {final} exists with other content; order {order_id} was sent "
                "before with other lines or address"
            )
        return final

    async def _sent_before(self, prefix: str, data: bytes) -> str | None:
        for folder in (self.options.in_dir, self.options.in_processed_dir):
            try:
                files = await self.client.list(folder)
            except PermanentError:
                if folder == self.options.in_processed_dir:
                    continue  # the 3PL has not made it yet
                raise
            for f in sorted(files, key=lambda f: f.name):
                if not is_order_file_of(f.name, prefix):
                    continue
                path = posixpath.join(folder, f.name)
                content = await self.client.read(path)
                if content is None:
                    continue  # moved by the 3PL meanwhile: found again in processed
                if _same(content, data):
                    return path
                raise PermanentError(
                    f"{self.name}: the order was sent before with other content ({path}); "
                    "the file drop cannot update an order: change it at the 3PL"
                )
        return None


def _same(content: bytes | None, data: bytes) -> bool:
    return content is not None and content == data
