"""``clear`` and ``refund`` end to end: the CLI as a subprocess against a served sandbox
with faults on the money requests, SIGKILL mid-flight and reruns. The sandbox ledger is
the truth: every row's money moved exactly once.

Waits are short (an attempt timeout of 0.4 s, a settle window of 1.5 s, processing and
status lag of a fraction of a second) but in the real proportions: the window outlasts
the gateway's slowest processing plus its status lag, as an operator's must.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from freedompay_async import AsyncSession, Credentials
from freedompay_async.cli._records import decode_record
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .test_cli import Run, cli, cli_env, finish, start

#: Short, in the real proportions: processing + status lag < window.
PROCESSING, LAG, WINDOW = 0.5, 0.2, 1.5
MONEY_FAULTS = (Fault.RESET_AFTER, Fault.GARBAGE, Fault.FORGED, Fault.SLOW_PROCESSING,
                Fault.LOST_REPLY)  # fmt: skip


@pytest.fixture
async def money() -> AsyncIterator[tuple[SandboxGateway, str]]:
    """A sandbox holding 1..200, with short processing and status lag."""
    gw = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(processing_delay=PROCESSING))
    gw.status_lag = LAG
    gw.add_payments(range(1, 201))
    async with gw.serve() as url:
        yield gw, url


def money_args(command: str, url: str, journal: Path, csv: Path, *more: str) -> list[str]:
    return [
        command, "--base-url", url, "--input", str(csv), "--journal", str(journal),
        "--progress", "none", "--attempt-timeout", "0.4", "--payment-interval", "0.02",
        "--settle-window", str(WINDOW), "--settle-poll", "0.1", *more,
    ]  # fmt: skip


def write_rows(
    path: Path, rows: Sequence[tuple[int, str]], header: str = "payment_id,amount"
) -> Path:
    path.write_text(header + "\n" + "".join(f"{pid},{amount}\n" for pid, amount in rows))
    return path


def money_records(path: Path, *, complete_only: bool = False) -> list[dict[str, Any]]:
    """Every money record, in order (``complete_only``: a torn last line is skipped)."""
    lines = path.read_bytes().split(b"\n")
    if complete_only or not lines[-1]:
        lines = lines[:-1]
    records = [decode_record(json.loads(line)) for line in lines]
    return [record for record in records if "row" in record]


def last_by_row(path: Path) -> dict[int, dict[str, Any]]:
    return {record["row"]: record for record in money_records(path)}


async def clear_through_the_library(gw: SandboxGateway, url: str, pids: Sequence[int]) -> None:
    """Capture payments so that they can be refunded (not what these tests test)."""
    async with AsyncSession(Credentials(MERCHANT, SECRET), base_url=url, spacing=None) as fp:
        for pid in pids:
            await fp.clear(pid, reconcile=False)
    assert all(gw.ledger[pid].state == "cleared" for pid in pids)


async def test_clear_with_every_money_fault_moves_each_row_once_and_a_rerun_sends_nothing(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    for pid, fault in zip(range(1, 6), MONEY_FAULTS, strict=True):
        gw.inject(pid, fault)  # the clearing itself: applied, then the reply goes wrong
    csv = write_rows(tmp_path / "day.csv", [(pid, "") for pid in range(1, 9)] + [(9, "400")])
    journal = tmp_path / "clear.jsonl"
    run = await cli(*money_args("clear", url, journal, csv))
    assert run.rc == 0, run.out + run.err
    assert "input       9 rows" in run.out and "done                      9" in run.out
    for pid in range(1, 10):
        entry = gw.ledger[pid]
        assert (entry.state, entry.clearings, entry.clearing_requests) == ("cleared", 1, 1), pid
    assert gw.ledger[9].clearing_amount == 400
    last = last_by_row(journal)
    assert {record["state"] for record in last.values()} == {"done"}
    settled_by = {record["payment_id"]: record.get("settled_by") for record in last.values()}
    assert all(settled_by[pid] == "status" for pid in range(1, 6))  # each fault: by status
    assert all(settled_by[pid] is None for pid in range(6, 10))  # the reply said it
    intents = [r for r in money_records(journal) if r["state"] == "intent"]
    assert len(intents) == 9 and all(r["baseline"] is None for r in intents)

    requests = gw.requests_total
    again = await cli(*money_args("clear", url, journal, csv))
    assert again.rc == 0, again.err
    assert gw.requests_total == requests  # every row settled: nothing is asked, nothing sent
    assert "skipped     9 rows already settled in the journal" in again.out


async def test_refund_with_every_money_fault_and_two_equal_rows_refunds_each_row_once(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    pids = list(range(11, 17))
    await clear_through_the_library(gw, url, pids)
    for pid, fault in zip(pids, MONEY_FAULTS, strict=False):
        gw.inject(pid, None, fault)  # the baseline's status query, then the refund
    # Two equal refunds of payment 16 in one file: two movements.
    rows = [(pid, "100") for pid in pids] + [(16, "100.00")]
    csv = write_rows(tmp_path / "returns.csv", rows, header="Payment_ID,Amount")
    journal = tmp_path / "refund.jsonl"
    run = await cli(*money_args("refund", url, journal, csv))
    assert run.rc == 0, run.out + run.err
    for pid in pids:
        entry = gw.ledger[pid]
        expected = 2 if pid == 16 else 1
        assert len(entry.refunds) == entry.refund_requests == expected, (pid, entry)
        assert entry.refund_amount == 100 * expected
    last = last_by_row(journal)
    assert len(last) == 7 and {record["state"] for record in last.values()} == {"done"}
    assert all(record["refund_id"] is not None for record in last.values())
    baselines = [r["baseline"] for r in money_records(journal) if r["state"] == "intent"]
    assert {"refunded": "100.00", "refund_ids": [gw.ledger[16].refunds[0][0]]} in baselines

    again = await cli(*money_args("refund", url, journal, csv))
    assert again.rc == 0 and all(len(gw.ledger[pid].refunds) == (2 if pid == 16 else 1)
                                 for pid in pids)  # fmt: skip


async def test_random_money_faults_of_a_fault_plan_move_every_row_exactly_once(
    tmp_path: Path,
) -> None:
    kinds = (*MONEY_FAULTS, Fault.RESET_BEFORE, Fault.HTTP_503, Fault.ERROR_9999)
    plan = FaultPlan(rate=0.3, kinds=kinds, seed=5, processing_delay=PROCESSING)
    gw = SandboxGateway(MERCHANT, SECRET, faults=plan)
    gw.status_lag = LAG
    pids = list(range(101, 121))
    gw.add_payments(pids)
    csv = write_rows(tmp_path / "day.csv", [(pid, "") for pid in pids])
    journal = tmp_path / "clear.jsonl"
    async with gw.serve() as url:
        runs = [await cli(*money_args("clear", url, journal, csv))]
        while runs[-1].rc == 3 and len(runs) < 4:  # unknown: the rerun settles it by status
            runs.append(await cli(*money_args("clear", url, journal, csv)))
    assert runs[-1].rc == 0, runs[-1].out + runs[-1].err
    assert "first " in runs[0].err  # faults there were
    assert all(gw.ledger[pid].clearings == 1 for pid in pids)
    assert all(gw.ledger[pid].money_movements == 1 for pid in pids)
    assert {record["state"] for record in last_by_row(journal).values()} == {"done"}


async def _journaled_intents(
    journal: Path, count: int, proc: asyncio.subprocess.Process, *, done: int = 0
) -> None:
    """Wait until the journal holds ``count`` intents and ``done`` outcomes "done"."""
    async with asyncio.timeout(30):
        while True:
            try:
                states = [r["state"] for r in money_records(journal, complete_only=True)]
            except FileNotFoundError:
                states = []
            if states.count("intent") >= count and states.count("done") >= done:
                return
            assert proc.returncode is None, "the run ended before it could be killed"
            await asyncio.sleep(0.01)


async def _arrived(
    gw: SandboxGateway, pids: Sequence[int], proc: asyncio.subprocess.Process
) -> None:
    """Wait until the gateway has these payments' refunds in hand (still processing)."""
    async with asyncio.timeout(30):
        while not all(gw.ledger[pid].refund_requests for pid in pids):
            assert proc.returncode is None, "the run ended before it could be killed"
            await asyncio.sleep(0.01)


def last_of(last: dict[int, dict[str, Any]], pid: int) -> dict[str, Any]:
    return next(record for record in last.values() if record["payment_id"] == pid)


async def test_sigkill_right_after_the_intents_then_a_rerun_settles_them_without_sending(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    pids = list(range(21, 29))
    await clear_through_the_library(gw, url, pids)
    for pid in pids:  # the refund takes a while at the gateway: the kill lands mid-flight
        gw.inject(pid, None, Fault.SLOW_PROCESSING)
    csv = write_rows(tmp_path / "returns.csv", [(pid, "250") for pid in pids])
    journal = tmp_path / "refund.jsonl"
    proc = await start(*money_args("refund", url, journal, csv, "--attempt-timeout", "5"))
    await _journaled_intents(journal, len(pids), proc)
    await _arrived(gw, pids[: len(pids) // 2], proc)
    proc.kill()
    assert (await finish(proc)).rc == -signal.SIGKILL
    assert {r["state"] for r in money_records(journal, complete_only=True)} == {"intent"}
    in_flight = [pid for pid in pids if gw.ledger[pid].refund_requests]
    assert len(in_flight) >= len(pids) // 2 and not any(gw.ledger[pid].refunds for pid in pids)

    rerun = await cli(*money_args("refund", url, journal, csv))
    assert rerun.rc == 0, rerun.out + rerun.err
    for pid in pids:
        entry = gw.ledger[pid]
        # In flight at the kill: applied by the gateway afterwards, confirmed by status,
        # never sent again. Not sent before the kill: sent once, after a whole window
        # of status showed no trace of it.
        assert len(entry.refunds) == entry.refund_requests == 1, (pid, entry)
    last = last_by_row(journal)
    assert all(r["state"] == "done" for r in last.values())
    assert all(last_of(last, pid)["settled_by"] == "status" for pid in in_flight)


async def test_a_rerun_of_a_half_done_refund_batch_does_not_refund_twice(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    pids = list(range(31, 51))
    await clear_through_the_library(gw, url, pids)
    for pid in pids[10:]:  # the second half is slow: killed with half the batch done
        gw.inject(pid, None, Fault.SLOW_PROCESSING)
    csv = write_rows(tmp_path / "returns.csv", [(pid, "10") for pid in pids])
    journal = tmp_path / "refund.jsonl"
    proc = await start(*money_args("refund", url, journal, csv, "--attempt-timeout", "5"))
    await _journaled_intents(journal, len(pids), proc, done=10)
    proc.kill()
    await finish(proc)
    done_before = {r["payment_id"] for r in money_records(journal, complete_only=True)
                   if r["state"] == "done"}  # fmt: skip
    assert done_before and len(done_before) < len(pids)  # killed half-way

    rerun = await cli(*money_args("refund", url, journal, csv))
    assert rerun.rc == 0, rerun.out + rerun.err
    assert f"skipped     {len(done_before)} rows already settled" in rerun.out
    assert all(len(gw.ledger[pid].refunds) == gw.ledger[pid].refund_requests == 1 for pid in pids)


async def test_an_open_movement_holds_back_a_changed_row_of_its_payment(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    await clear_through_the_library(gw, url, [61, 62])
    gw.inject(61, None, Fault.SLOW_PROCESSING)
    first = write_rows(tmp_path / "v1.csv", [(61, "100"), (62, "100")])
    journal = tmp_path / "refund.jsonl"
    proc = await start(*money_args("refund", url, journal, first, "--attempt-timeout", "5"))
    await _journaled_intents(journal, 2, proc)
    proc.kill()
    await finish(proc)
    # The operator edits the amount of 61's row and reruns: a new row, whose payment
    # has a movement open in the journal. It is held, not sent.
    edited = write_rows(tmp_path / "v2.csv", [(61, "50"), (62, "100")])
    requests = gw.ledger[61].requests
    run = await cli(*money_args("refund", url, journal, edited))
    assert run.rc == 3, run.out + run.err
    assert "held                      1" in run.out and "1 held back" in run.out
    assert gw.ledger[61].requests == requests  # not even its baseline was asked
    # The original file settles the open movement; then the edited row goes out.
    assert (await cli(*money_args("refund", url, journal, first))).rc == 0
    assert (await cli(*money_args("refund", url, journal, edited))).rc == 0
    assert [amount for _, amount in gw.ledger[61].refunds] == [100, 50]


async def test_dry_run_of_a_refund_sends_no_money_and_lists_the_rows(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    csv = write_rows(tmp_path / "r.csv", [(71, "5"), (72, "6")], header="payment_id,amount")
    run = await cli(*money_args("refund", url, tmp_path / "j.jsonl", csv, "--dry-run"))
    assert run.rc == 0, run.err
    assert run.out.splitlines() == [
        "line 2: refund payment 71 5.00",
        "line 3: refund payment 72 6.00",
    ]
    assert "credentials accepted" in run.err
    assert gw.ledger[71].refund_requests == 0 and not (tmp_path / "j.jsonl").exists()


@pytest.mark.parametrize(
    ("command", "text", "why"),
    [
        ("refund", "payment_id\n5\n", "no 'amount' column"),
        ("clear", "id,amount\n5,1\n", "no 'payment_id' column"),
        ("clear", "payment_id,amount\nabc,1\n", "none of the 1 non-blank rows"),
    ],
)
async def test_a_csv_without_its_columns_or_rows_is_exit_2(
    money: tuple[SandboxGateway, str], tmp_path: Path, command: str, text: str, why: str
) -> None:
    _, url = money
    csv = tmp_path / "in.csv"
    csv.write_text(text)
    run = await cli(*money_args(command, url, tmp_path / "j.jsonl", csv))
    assert run.rc == 2 and why in run.err, run.err
    assert not (tmp_path / "j.jsonl").exists()


async def test_a_pipe_is_refused_as_money_input(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = money
    args = money_args("clear", url, tmp_path / "j.jsonl", Path("-"))
    run: Run = await cli(*args, stdin=b"payment_id\n5\n")
    assert run.rc == 2 and "pass --input FILE.csv" in run.err


async def test_refused_rows_are_failed_and_summaries_read_money_journals(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    csv = write_rows(tmp_path / "r.csv", [(81, "5"), (999_999, "5")])
    journal = tmp_path / "refund.jsonl"
    # 81 is held, not captured: the gateway refuses (10034) in a reply that names no
    # payment; after a whole window in which status showed nothing moved, the refusal
    # stands (not final: unbound). 999999 does not exist: its baseline cannot be read,
    # so nothing is sent.
    run = await cli(*money_args("refund", url, journal, csv))
    assert run.rc == 1, run.out + run.err
    assert "failed                    2" in run.out and "2 rows failed for good" in run.out
    assert gw.ledger[81].refunds == () and gw.ledger[81].refund_requests == 1
    last = {r["payment_id"]: r for r in last_by_row(journal).values()}
    assert (last[81]["error_code"], last[81]["final"]) == (10034, False)
    assert last[999_999]["error_type"] == "PaymentNotFoundError"
    assert not any(r["payment_id"] == 999_999 and r["state"] == "intent"
                   for r in money_records(journal))  # fmt: skip
    summary = await cli("journal", "summary", str(journal))
    data = json.loads(summary.out)
    assert data["header"]["operation"] == "refund" and data["ids"] == 2
    assert data["states"] == {"done": 0, "already_done": 0, "held": 0, "failed": 2,
                              "unknown": 0, "intent": 0}  # fmt: skip


async def test_two_shards_of_a_refund_batch_split_by_payment_and_read_as_one(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    pids = list(range(141, 157))
    await clear_through_the_library(gw, url, pids)
    rows = [(pid, "10") for pid in pids] + [(141, "10"), (142, "5")]
    csv = write_rows(tmp_path / "returns.csv", rows)
    journals = [tmp_path / f"refund-{k}.jsonl" for k in range(2)]
    runs = await asyncio.gather(
        *(cli(*money_args("refund", url, journals[k], csv, "--shard", f"{k}/2")) for k in (0, 1))
    )
    assert [run.rc for run in runs] == [0, 0], [run.out + run.err for run in runs]
    merged = await cli("journal", "summary", *map(str, journals))
    assert merged.rc == 0, merged.err
    data = json.loads(merged.out)
    assert data["ids"] == data["settled"] == len(rows) and data["retry"] == 0
    assert data["states"]["done"] == len(rows) and data["states"]["intent"] == 0
    assert data["shards"] == ["0/2", "1/2"] and data["ids_in_several_journals"] == 0
    # Every row of a payment is in one shard's journal, and each moved once.
    for pid in (141, 142):
        holders = [j for j in journals if any(r["payment_id"] == pid for r in money_records(j))]
        assert len(holders) == 1
    for pid in pids:
        assert (
            len(gw.ledger[pid].refunds) == gw.ledger[pid].refund_requests == 1 + (pid in (141, 142))
        )


async def test_a_wrong_key_stops_a_refund_batch_before_any_intent(
    money: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = money
    await clear_through_the_library(gw, url, [91, 92])
    csv = write_rows(tmp_path / "r.csv", [(91, "5"), (92, "5")])
    journal = tmp_path / "refund.jsonl"
    env = cli_env(FREEDOMPAY_SECRET_KEY="not-the-key")
    run = await cli(*money_args("refund", url, journal, csv), env=env)
    assert run.rc == 2, run.out + run.err
    assert "the gateway refused the credentials" in run.err
    # The baselines were refused: no intent was journaled, no refund sent.
    assert not any(r["state"] == "intent" for r in money_records(journal))
    assert gw.ledger[91].refund_requests == gw.ledger[92].refund_requests == 0
