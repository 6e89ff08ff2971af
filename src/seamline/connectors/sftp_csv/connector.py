"""The `sftp_csv` kind: a 3PL that exchanges CSV files over SFTP (vendor-apis.md §4.1).

```yaml
kind: sftp_csv
connection:
  host: sftp.warehouse.example
  port: 22
  username: acme
  password: ${THREEPL_PASSWORD}            # or private_key: {file: secrets/3pl_ed25519}
  known_host_key: "ssh-ed25519 AAAAC3Nz..." # the server's public host key
  poll: {interval: 60s}                     # read /out: shipments and inventory snapshots
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from seamline.connectors.base import Poller, Reader, Sink, Source
from seamline.settings import Duration, SecretRef, Strict


class PollOptions(Strict):
    """Reading `/out`: every `interval`, the files there, oldest first."""

    interval: Duration = Field(default=60.0, gt=0)
    settle: Duration = Field(default=5.0, ge=0)
    """A file is read once its size and time were unchanged for this long (a 3PL that writes
    in place, not by rename, is still writing a file that keeps changing)."""
    give_up: Duration = Field(default=3600.0, gt=0)
    """A file still without its last newline after this long is read as it is: its rows go
    through, its cut last row is rejected."""


class OrderColumns(Strict):
    """Header names of an order file (`ord_*`), one row per order line."""

    order_id: str = "order_id"
    order_number: str = "order_number"
    name: str = "ship_name"
    company: str = "ship_company"
    line1: str = "ship_address1"
    line2: str = "ship_address2"
    city: str = "ship_city"
    region: str = "ship_region"
    postal_code: str = "ship_postal_code"
    country_code: str = "ship_country"
    phone: str = "ship_phone"
    email: str = "ship_email"
    shipping_method: str = "shipping_method"
    line_id: str = "item_line_id"
    sku: str = "item_sku"
    quantity: str = "item_quantity"
    title: str = "item_title"


class ShipmentColumns(Strict):
    """Header names of a shipment confirmation (`shp_*`), one row per shipped line."""

    order_id: str = "order_id"
    order_number: str = "order_number"
    shipment_id: str = "shipment_id"
    carrier: str = "carrier"
    tracking_number: str = "tracking_number"
    tracking_url: str = "tracking_url"
    shipped_at: str = "shipped_at"
    line_id: str = "item_line_id"
    sku: str = "item_sku"
    quantity: str = "item_quantity"


class InventoryColumns(Strict):
    """Header names of an inventory snapshot (`inv_*`), one row per SKU."""

    sku: str = "sku"
    available: str = "available"
    location: str = "location"


class Columns(Strict):
    order: OrderColumns = OrderColumns()
    shipment: ShipmentColumns = ShipmentColumns()
    inventory: InventoryColumns = InventoryColumns()


class SftpCsvOptions(Strict):
    """`connection:` of an `sftp_csv` system."""

    model_config = Strict.model_config | {"arbitrary_types_allowed": True}

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    username: str
    password: SecretRef | None = None
    private_key: SecretRef | None = None
    """An OpenSSH or PEM private key, usually `{file: path}`."""
    passphrase: SecretRef | None = None
    known_host_key: str | None = None
    """The server's public host key, as in known_hosts: `ssh-ed25519 AAAA...`."""
    insecure_accept_any_host_key: bool = False
    """Accept whatever key the server shows: for a sandbox on loopback only."""
    in_dir: str = "/in"
    out_dir: str = "/out"
    processed_dir: str = "/out/processed"
    """Where read files of `out_dir` are moved, with a timestamp suffix."""
    in_processed_dir: str = "/in/processed"
    """Where the 3PL moves order files it took; read to know an order was sent."""
    location_id: str | None = None
    """The location of inventory rows without one; defaults to the system's name."""
    timeout: Duration = Field(default=20.0, gt=0)
    poll: PollOptions | None = None
    columns: Columns = Columns()

    @model_validator(mode="after")
    def _host_key(self) -> SftpCsvOptions:
        if self.known_host_key is None and not self.insecure_accept_any_host_key:
            raise ValueError(
                "set known_host_key to the server's public host key (ssh-ed25519 AAAA...), or "
                "insecure_accept_any_host_key: true for a sandbox"
            )
        if self.known_host_key is not None and self.insecure_accept_any_host_key:
            raise ValueError("known_host_key and insecure_accept_any_host_key exclude each other")
        for name in ("in_dir", "out_dir", "processed_dir", "in_processed_dir"):
            if not getattr(self, name).startswith("/"):
                raise ValueError(f"{name} must be an absolute path on the server, like /out")
        return self


class SendOrder(Strict):
    """Write an order file into `in_dir`. Body: `{order_id, order_number?, ship_to: {name?,
    company?, line1?, line2?, city?, region?, postal_code?, country_code?, phone?, email?},
    shipping_method?, lines: [{sku, quantity, line_id?, title?}]}`. One file per order id: the
    same order with the same content already in `in_dir` or `in_processed_dir` means done."""


OPERATIONS: Mapping[str, type[BaseModel]] = {"send_order": SendOrder}

EVENTS: Sequence[str] = ("fulfillment.created", "inventory.changed")


class SftpCsvConnector:
    kind: ClassVar[str] = "sftp_csv"
    options: ClassVar[type[BaseModel]] = SftpCsvOptions
    operations: ClassVar[Mapping[str, type[BaseModel]]] = OPERATIONS
    # one SFTP login per merchant: a few sessions at most
    default_budget: ClassVar[Mapping[str, Any]] = {"concurrency": 2}

    def enumerations(self, options: BaseModel) -> Mapping[str, Sequence[str]]:
        return {}

    def source(self, name: str, options: BaseModel) -> Source:
        from seamline.connectors.sftp_csv.source import SftpCsvSource

        assert isinstance(options, SftpCsvOptions)
        return SftpCsvSource(name, options)

    def sink(self, name: str, options: BaseModel) -> Sink:
        from seamline.connectors.sftp_csv.sink import SftpCsvSink

        assert isinstance(options, SftpCsvOptions)
        return SftpCsvSink(name, options)

    def poller(self, name: str, options: BaseModel) -> Poller | None:
        from seamline.connectors.sftp_csv.poller import SftpCsvPoller

        assert isinstance(options, SftpCsvOptions)
        return SftpCsvPoller(name, options) if options.poll is not None else None

    def reader(self, name: str, options: BaseModel) -> Reader | None:
        from seamline.connectors.sftp_csv.reader import SftpCsvReader

        assert isinstance(options, SftpCsvOptions)
        return SftpCsvReader(name, options)

    def check(
        self, options: BaseModel, *, role: Literal["source", "target"]
    ) -> list[tuple[str, str]]:
        assert isinstance(options, SftpCsvOptions)
        problems = []
        if options.password is None and options.private_key is None:
            problems.append(
                (
                    "which has no credentials",
                    "add connection.password: ${VARIABLE} or connection.private_key: {file: path}",
                )
            )
        if role == "source" and options.poll is None:
            problems.append(
                (
                    "which does not read the 3PL's files",
                    "add connection.poll: {interval: 60s}: shipments and stock come as files",
                )
            )
        return problems
