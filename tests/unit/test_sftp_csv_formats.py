"""The 3PL file formats and options, without a server: names, the order file, row checks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from seamline.connectors.sftp_csv.connector import (
    Columns,
    OrderColumns,
    PollOptions,
    SftpCsvConnector,
    SftpCsvOptions,
    ShipmentColumns,
)
from seamline.connectors.sftp_csv.formats import (
    InventoryColumns,
    is_order_file_of,
    order_csv,
    order_file_name,
    order_file_prefix,
    parse_shipments,
    parse_snapshot,
    snapshot_key,
)
from seamline.connectors.sftp_csv.source import SftpCsvSource
from seamline.errors import ContractError
from seamline.settings import Secret

BODY: dict[str, Any] = {
    "order_id": "1001",
    "order_number": "#1001",
    "ship_to": {"name": "Zoë Martens", "line1": "Rue de l'Église, 3", "country_code": "BE"},
    "lines": [{"sku": "TS-BLK-M", "quantity": 2}, {"sku": "MUG", "quantity": 1, "title": "Mug"}],
}


def test_an_order_is_one_row_per_line_with_the_order_columns_repeated() -> None:
    order_id, data = order_csv(BODY, OrderColumns())
    assert order_id == "1001"
    assert data.decode().splitlines() == [
        "order_id,order_number,ship_name,ship_company,ship_address1,ship_address2,ship_city,"
        "ship_region,ship_postal_code,ship_country,ship_phone,ship_email,shipping_method,"
        "item_line_id,item_sku,item_quantity,item_title",
        '1001,#1001,Zoë Martens,,"Rue de l\'Église, 3",,,,,BE,,,,,TS-BLK-M,2,',
        '1001,#1001,Zoë Martens,,"Rue de l\'Église, 3",,,,,BE,,,,,MUG,1,Mug',
    ]
    # and renamed columns are the 3PL's headers
    renamed = OrderColumns(sku="SKU", quantity="QTY")
    assert order_csv(BODY, renamed)[1].decode().splitlines()[0].endswith("SKU,QTY,item_title")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"lines": []}, "non-empty list"),
        ({"lines": [{"sku": "A", "quantity": 0}]}, "whole number > 0"),
        ({"lines": [{"sku": "A", "quantity": 1, "price": "9.99"}]}, "unknown keys ['price']"),
        ({"ship_to": {"street": "x"}}, "unknown ship_to keys ['street']"),
        ({"order_id": None}, "needs 'order_id'"),
        ({"lines": [{"sku": "A", "quantity": 1, "title": "two\nlines"}]}, "line break"),
    ],
)
def test_a_body_the_file_cannot_carry_is_a_contract_error(
    change: dict[str, Any], says: str
) -> None:
    with pytest.raises(ContractError, match=says.replace("[", r"\[").replace("]", r"\]")):
        order_csv(BODY | change, OrderColumns())


def test_order_file_names_never_share_a_prefix_between_orders() -> None:
    when = dt.datetime(2026, 11, 29, 20, 41, tzinfo=dt.UTC)
    assert order_file_name("1001", when) == "ord_1001_202611292041.csv"
    assert order_file_prefix("A_B") != order_file_prefix("A-B")
    assert order_file_prefix("A_B") == "ord_A~5FB_"
    assert is_order_file_of("ord_10_202611292041.csv", "ord_10_")
    assert is_order_file_of("ord_10_202611292041.csv.20261129204500", "ord_10_")
    assert not is_order_file_of("ord_100_202611292041.csv", "ord_10_")
    assert not is_order_file_of(".ord_10_202611292041.csv.tmp", "ord_10_")


def test_snapshots_sort_by_time_then_version_and_need_both_in_the_name() -> None:
    a = snapshot_key("inv_9_202611292041.csv")
    b = snapshot_key("inv_10_20261129204100.csv")
    c = snapshot_key("inv_2_20261129204101.csv")
    assert a and b and c
    assert a[0] < b[0] < c[0]
    assert c[1] == dt.datetime(2026, 11, 29, 20, 41, 1, tzinfo=dt.UTC)
    assert snapshot_key("inv_20261129204100.csv") is None
    assert snapshot_key("inv_1_2026.csv") is None


def test_bad_shipment_rows_are_named_by_line_and_the_others_kept() -> None:
    data = (
        b"order_id,tracking_number,item_sku,item_quantity,shipped_at,carrier\n"
        b'1,T1,A,2,2026-11-29T10:00:00Z,"DHL\nExpress"\n'  # a quoted line break: rows 2-3
        b"1,T1,B,two,,DHL\n"
        b"1,,C,1,,DHL\n"
        b"1,T1,D,1,2026-11-29T10:00:00,DHL\n"
        b"1,T1,E\n"
        b"\n"
        b"2,T2,F,1,,UPS\n"
    )
    parsed = parse_shipments(data, ShipmentColumns())
    assert [(line, row["sku"], row["quantity"]) for line, row in parsed.rows] == [
        (2, "A", 2),
        (9, "F", 1),
    ]
    assert parsed.rows[0][1]["carrier"] == "DHL\nExpress"
    assert [(b.line, b.reason) for b in parsed.bad] == [
        (4, "item_quantity 'two' is not a whole number"),
        (5, "tracking_number is empty"),
        (6, "shipped_at '2026-11-29T10:00:00' has no UTC offset"),
        (7, "3 fields where the header has 6"),
    ]
    assert parse_shipments(b"order,sku\n1,A\n", ShipmentColumns()).unreadable == (
        "the header lacks order_id, tracking_number, item_sku, item_quantity"
    )


def test_a_snapshot_row_twice_or_cut_is_bad_and_its_sku_still_named() -> None:
    parsed = parse_snapshot(
        b"sku,available\nA,5\nB,-2\nA,6\nC,x\nD,1", InventoryColumns(), truncated=True
    )
    assert [row for _, row in parsed.rows] == [
        {"sku": "A", "available": 5, "location": None},
        {"sku": "B", "available": -2, "location": None},
    ]
    assert [b.line for b in parsed.bad] == [4, 5, 6]
    assert "cut off" in parsed.bad[-1].reason
    assert parsed.named == {"A", "C"}


def options(**changes: Any) -> SftpCsvOptions:
    base: dict[str, Any] = {
        "host": "sftp.example",
        "username": "acme",
        "password": Secret("x"),
        "known_host_key": "ssh-ed25519 AAAA",
    }
    return SftpCsvOptions.model_validate(base | changes)


def test_options_demand_a_host_key_policy_and_secrets_as_references() -> None:
    with pytest.raises(ValidationError, match="known_host_key"):
        options(known_host_key=None)
    with pytest.raises(ValidationError, match="exclude each other"):
        options(insecure_accept_any_host_key=True)
    with pytest.raises(ValidationError, match=r"\$\{VARIABLE\}"):
        options(password="hunter2")
    with pytest.raises(ValidationError, match="absolute"):
        options(out_dir="out")
    with pytest.raises(ValidationError, match="Extra inputs"):
        options(columns=Columns.model_validate({"shipment": {"weight": "W"}}).model_dump()
                | {"order": {"colour": "c"}})  # fmt: skip
    assert options(known_host_key=None, insecure_accept_any_host_key=True).port == 22


def test_check_names_what_a_source_or_target_lacks() -> None:
    connector = SftpCsvConnector()
    assert connector.check(options(), role="target") == []
    assert connector.poller("3pl", options()) is None
    problems = connector.check(options(password=None), role="source")
    assert [p for p, _ in problems] == [
        "which has no credentials",
        "which does not read the 3PL's files",
    ]
    assert connector.check(options(poll=PollOptions()), role="source") == []


def test_the_source_decodes_only_what_the_poller_journals() -> None:
    source = SftpCsvSource("3pl", options())
    with pytest.raises(ContractError, match="kind '\\(none\\)'"):
        source.decode({}, b"{}")
    with pytest.raises(ContractError, match="not JSON"):
        source.decode({"x-sftp-csv-kind": "shipment"}, b"<xml/>")
    with pytest.raises(ContractError, match=r"shp_1\.csv"):
        source.decode({"x-sftp-csv-kind": "shipment"}, b'{"file": "shp_1.csv", "rows": []}')
