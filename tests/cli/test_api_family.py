"""``--api merchant|gateway``: the batch commands speak either family, and the journal
is bound to the one it was started with. Run as real subprocesses against the sandbox."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from freedompay_async.sandbox import SandboxGateway

from .test_cli import cancel_args, cli, read_journal, write_ids
from .test_money_batch import write_rows


def header(path: Path) -> dict[str, object]:
    first: dict[str, object] = json.loads(path.read_text().splitlines()[0])
    return first


async def test_a_merchant_family_cancel_batch_goes_through_cancel_php(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    journal = tmp_path / "cancel.jsonl"
    ids = write_ids(tmp_path / "ids", [1, 2, 3])
    run = await cli(
        *cancel_args(url, journal, "--input", str(ids), "--payment-interval", "0.01"),
        "--api", "merchant",
    )  # fmt: skip
    assert run.rc == 0, run.err
    assert [gw.ledger[pid].state for pid in (1, 2, 3)] == ["cancelled"] * 3
    assert gw.requests_by_operation["cancel.php"] == 3
    assert gw.requests_by_operation["cancel"] == 0  # nothing went to /g2g/cancel
    assert gw.requests_by_operation["get_status3.php"] >= 3  # each claim confirmed
    records = read_journal(journal)
    assert {pid: rows[-1]["state"] for pid, rows in records.items()} == {
        1: "cancelled", 2: "cancelled", 3: "cancelled"
    }  # fmt: skip
    assert all(rows[-1]["settled_by"] == "status" for rows in records.values())
    assert header(journal)["api"] == "merchant"


async def test_a_journal_of_one_family_is_refused_by_a_run_of_the_other(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    journal = tmp_path / "cancel.jsonl"
    ids = write_ids(tmp_path / "ids", [4])
    first = await cli(*cancel_args(url, journal, "--input", str(ids), "--api", "merchant"))
    assert first.rc == 0, first.err
    other = await cli(*cancel_args(url, journal, "--input", str(ids), "--api", "gateway"))
    assert other.rc == 2
    assert "api 'merchant' (journal) vs 'gateway' (this run)" in other.err
    plain = await cli(*cancel_args(url, journal, "--input", str(ids)))  # gateway by default
    assert plain.rc == 2 and "--api" in plain.err
    assert gw.ledger[4].cancel_requests == 1  # neither refused run sent anything


async def test_a_journal_without_api_is_the_gateway_family(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _gw, url = served
    journal = tmp_path / "cancel.jsonl"
    ids = write_ids(tmp_path / "ids", [5])
    first = await cli(*cancel_args(url, journal, "--input", str(ids)))
    assert first.rc == 0, first.err
    assert "api" not in header(journal)  # as journals written before --api
    again = await cli(*cancel_args(url, journal, "--input", str(ids), "--api", "gateway"))
    assert again.rc == 0, again.err
    merchant = await cli(*cancel_args(url, journal, "--input", str(ids), "--api", "merchant"))
    assert merchant.rc == 2


async def test_a_merchant_family_status_batch_reads_get_status3(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = write_ids(tmp_path / "ids", [6, 7])
    run = await cli(
        "status", "--base-url", url, "--progress", "none", "--input", str(ids),
        "--api", "merchant",
    )  # fmt: skip
    assert run.rc == 0, run.err
    lines = {line["payment_id"]: line for line in map(json.loads, run.out.splitlines())}
    assert lines[6]["state"] == "held" and lines[7]["state"] == "held"
    assert gw.requests_by_operation["get_status3.php"] == 2
    assert gw.requests_by_operation["status_v2"] == 0


async def test_a_merchant_family_clear_batch_goes_through_do_capture(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    gw.status_lag = 0.05
    rows = write_rows(tmp_path / "rows.csv", [(8, ""), (9, "400.00")])
    run = await cli(
        "clear", "--base-url", url, "--input", str(rows), "--journal", str(tmp_path / "j"),
        "--progress", "none", "--payment-interval", "0.01", "--settle-window", "2",
        "--settle-poll", "0.05", "--api", "merchant",
    )  # fmt: skip
    assert run.rc == 0, run.err
    assert gw.requests_by_operation["do_capture.php"] == 2
    assert gw.requests_by_operation["clearing"] == 0
    assert gw.ledger[8].state == gw.ledger[9].state == "cleared"
    assert gw.ledger[9].clearing_amount == Decimal("400.00")
