"""Connectors by kind. A new kind registers here and nowhere else."""

from __future__ import annotations

from seamline.connectors.base import Connector
from seamline.connectors.http.connector import HttpConnector
from seamline.connectors.sftp_csv.connector import SftpCsvConnector
from seamline.connectors.shopify.connector import ShopifyConnector
from seamline.connectors.tryton.connector import TrytonConnector

CONNECTORS: dict[str, Connector] = {
    HttpConnector.kind: HttpConnector(),
    ShopifyConnector.kind: ShopifyConnector(),
    SftpCsvConnector.kind: SftpCsvConnector(),
    TrytonConnector.kind: TrytonConnector(),
}


def connector(kind: str) -> Connector | None:
    return CONNECTORS.get(kind)
