"""``freedompay-async status``: one JSON line per id, run as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from freedompay_async.sandbox import Fault, SandboxGateway

from .test_cli import cli, write_ids


def status_args(url: str, *more: str) -> list[str]:
    return ["status", "--base-url", url, "--progress", "none", *more]


async def test_one_json_line_per_id_with_the_derived_state(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    gw.inject(3, Fault.FORGED)  # a forged first answer is refused and asked again
    ids = write_ids(tmp_path / "ids", [1, 2, 3, 2])
    cancel = await cli(
        "cancel", "--base-url", url, "--journal", str(tmp_path / "j"), "--progress", "none",
        "--payment-interval", "0.01", stdin=b"2\n",
    )  # fmt: skip
    assert cancel.rc == 0, cancel.err
    run = await cli(*status_args(url, "--input", str(ids)))
    assert run.rc == 0, run.err
    lines = [json.loads(line) for line in run.out.splitlines()]
    by_id = {line["payment_id"]: line for line in lines}
    assert len(lines) == 3 and set(by_id) == {1, 2, 3}  # the duplicate is asked once
    assert by_id[1]["state"] == "held" and by_id[1]["amount"] == "1000.00"
    assert by_id[2]["state"] == "revoked"
    assert by_id[2]["revoked_payments"] == [gw.ledger[2].revoke_id]
    assert by_id[3]["state"] == "held" and by_id[3]["attempts"] == 2
    assert "4405" not in run.out and "tok" not in run.out  # no card data
    assert "3 ids" in run.err and gw.ledger[1].state == "held"


async def test_unknown_ids_are_error_lines_and_exit_1(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _gw, url = served
    run = await cli(*status_args(url, "--input", "-"), stdin=b"1\n7777777\nnot-an-id\n")
    assert run.rc == 1
    lines = {line["payment_id"]: line for line in map(json.loads, run.out.splitlines())}
    assert lines[7777777]["state"] == "error" and lines[7777777]["error_code"] == 11068
    assert lines[1]["state"] == "held"
    assert "input line 3" in run.err


async def test_no_gateway_is_a_usage_error(tmp_path: Path) -> None:
    run = await cli("status", "--input", str(write_ids(tmp_path / "i", [1])))
    assert run.rc == 2 and "no gateway" in run.err


async def test_a_secret_on_the_command_line_is_refused_and_not_echoed() -> None:
    run = await cli("status", "--base-url", "http://127.0.0.1:9", "--secret-key", "hunter2key")
    assert run.rc == 2 and "--secret-key is not accepted" in run.err
    assert "hunter2key" not in run.err + run.out
