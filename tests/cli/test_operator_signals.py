"""The command line never reports silent non-work, continued: Ctrl-C, SIGTERM and SIGHUP
drain the cancels in flight (compared with the sandbox ledger), a journal that cannot
be written, and a summary that says what to do next.
"""

from __future__ import annotations

import json
import resource
import signal
from pathlib import Path

from freedompay_async.cli._records import decode_record
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import SECRET
from .operator_helpers import start_streaming, wait_requests
from .test_cli import SETTLED, cancel_args, cli, read_journal, write_ids

# -- 4. Ctrl-C drains ------------------------------------------------------------------------


async def test_sigint_with_slow_requests_in_flight_journals_every_processed_cancel(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(1, 201))
    for pid in ids:
        gw.inject(pid, Fault.SLOW)  # applied at once, answered 2 s later
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"
    summary = tmp_path / "summary.json"
    run = await start_streaming(
        *cancel_args(url, journal, "-i", str(src), "--summary-json", str(summary))
    )
    await wait_requests(gw, 20, run)
    run.proc.send_signal(signal.SIGINT)
    done = await run.finish()
    assert done.rc == 130, done.out + done.err
    processed = {pid for pid in ids if gw.ledger[pid].state == "cancelled"}
    assert len(processed) >= 20
    last = {pid: h[-1] for pid, h in read_journal(journal).items()}
    # Every cancel the gateway processed is in the journal, settled.
    assert processed <= set(last)
    assert all(last[pid]["state"] in SETTLED for pid in processed)
    assert "waiting up to 10 s" in done.err
    assert "summary:" in done.out
    report = json.loads(summary.read_text())
    assert report["sent"] == len(last)
    assert report["sent_outcome_unknown"] == 0
    assert report["not_reached"] == len(ids) - len(last)


async def test_a_second_signal_abandons_in_flight_ids_as_sent_outcome_unknown(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(1, 101))
    for pid in ids:
        gw.inject(pid, Fault.SLOW)
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"
    summary = tmp_path / "summary.json"
    run = await start_streaming(
        *cancel_args(url, journal, "-i", str(src), "--summary-json", str(summary))
    )
    await wait_requests(gw, 20, run)
    run.proc.send_signal(signal.SIGTERM)
    await run.wait_err("sending no new requests")
    run.proc.send_signal(signal.SIGTERM)
    done = await run.finish()
    assert done.rc == 130, done.out + done.err
    assert "abandoning" in done.err
    assert "sent, outcome unknown" in done.out
    processed = {pid for pid in ids if gw.ledger[pid].state == "cancelled"}
    last = {pid: h[-1] for pid, h in read_journal(journal).items()}
    assert processed <= set(last)  # abandoned ones too: journaled as unknown, not lost
    report = json.loads(summary.read_text())
    assert report["sent_outcome_unknown"] >= 1
    assert report["sent_outcome_unknown"] == sum(
        1 for record in last.values() if record["state"] == "unknown"
    )
    assert report["not_reached"] == len(ids) - len(last)
    assert all(not record["final"] for record in last.values() if record["state"] == "unknown")


async def test_sighup_is_handled_like_sigterm(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(1, 61))
    for pid in ids:
        gw.inject(pid, Fault.SLOW)
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"
    run = await start_streaming(*cancel_args(url, journal, "-i", str(src)))
    await wait_requests(gw, 20, run)
    run.proc.send_signal(signal.SIGHUP)
    done = await run.finish()
    assert done.rc == 130, done.out + done.err  # not 129 without a summary
    assert "SIGHUP" in done.err
    assert "interrupted" in done.out
    processed = {pid for pid in ids if gw.ledger[pid].state == "cancelled"}
    assert processed <= set(read_journal(journal))


# -- 5. the summary is actionable -------------------------------------------------------------


async def test_a_journal_that_cannot_be_written_is_exit_2(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    ids = list(range(1, 101))
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"

    def small_files() -> None:  # writes past 2 kB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    run = await start_streaming(*cancel_args(url, journal, "-i", str(src)), preexec=small_files)
    done = await run.finish()
    assert done.rc == 2, done.out + done.err
    assert "cannot write journal" in done.err
    assert "summary:" in done.out
    # A rerun with room to write finishes the job; nothing the gateway did is lost.
    rerun = await cli(*cancel_args(url, journal, "-i", str(src)))
    assert rerun.rc == 0, rerun.err
    last = {pid: h[-1] for pid, h in read_journal_tolerant(journal).items()}
    assert set(last) == set(ids)
    assert all(record["state"] in SETTLED for record in last.values())


def read_journal_tolerant(path: Path) -> dict[int, list[dict[str, object]]]:
    """Records of the lines that parse (a write cut by the size limit left a torn one)."""
    records: dict[int, list[dict[str, object]]] = {}
    for line in path.read_bytes().splitlines():
        try:
            record = decode_record(json.loads(line))
        except ValueError:
            continue
        if "payment_id" in record:
            records.setdefault(record["payment_id"], []).append(record)
    return records


async def test_unsettled_out_lists_every_id_still_to_settle(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    gw.inject(5, Fault.FORGED)  # unknown
    ids = [1, 2, 3, 4, 5, 999_999]  # 999999: not found
    src = write_ids(tmp_path / "ids.txt", ids)
    out = tmp_path / "unsettled.txt"
    run = await cli(
        *cancel_args(url, tmp_path / "j", "-i", str(src), "--unsettled-out", str(out)),
        "--no-reconcile",  # keep the forged reply's id unknown
    )
    assert run.rc == 3, run.out + run.err
    assert sorted(map(int, out.read_text().split())) == [5, 999_999]
    # Without settling, "not found" names no payment: open, like the forged reply.
    assert "to rerun    2 ids not settled (2 unknown)" in run.out
    assert "failed for good" not in run.out
    # Every error class with its count and one reason.
    assert "SignatureVerificationError 1, e.g." in run.out
    assert "PaymentNotFoundError 1, e.g. gateway error 11068" in run.out


async def test_log_level_shows_the_library_log_lines(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    quiet = await cli(*cancel_args(url, tmp_path / "j1", "-i", str(write_ids(tmp_path / "a", [1]))))
    src = write_ids(tmp_path / "b", [2, 3])
    loud = await cli(*cancel_args(url, tmp_path / "j2", "-i", str(src), "--log-level", "debug"))
    assert quiet.rc == loud.rc == 0
    assert "attempt=1 ok" not in quiet.err
    assert "cancel payment=2 attempt=1 ok" in loud.err
    assert "freedompay_async" in loud.err
    assert SECRET not in loud.err


async def test_help_lists_every_exit_code() -> None:
    run = await cli("cancel", "--help")
    assert run.rc == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert f"\n  {code}" in run.out
    for option in ("--fail-fast-after", "--grace", "--unsettled-out", "--log-level"):
        assert option in run.out


async def test_the_demo_prints_no_exit_code_mid_demo(tmp_path: Path) -> None:
    run = await cli(
        "demo",
        "--n",
        "300",
        "--fault-rate",
        "0.2",
        "--seed",
        "3",
        "--progress",
        "none",
        "--keep",
        str(tmp_path),
    )
    assert run.rc == 0, run.out + run.err
    assert "demo passed" in run.out
    assert "exit code" not in run.out


async def test_the_grace_period_running_out_abandons_what_is_in_flight(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(1, 41))
    for pid in ids:
        gw.inject(pid, Fault.SLOW)  # answered 2 s later: longer than the grace
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"
    summary = tmp_path / "summary.json"
    run = await start_streaming(
        *cancel_args(url, journal, "-i", str(src), "--grace", "0.3", "--summary-json", str(summary))
    )
    await wait_requests(gw, 20, run)
    run.proc.send_signal(signal.SIGINT)
    done = await run.finish()
    assert done.rc == 130, done.out + done.err
    assert "grace period of 0.3 s over" in done.err
    processed = {pid for pid in ids if gw.ledger[pid].state == "cancelled"}
    last = {pid: h[-1] for pid, h in read_journal(journal).items()}
    assert processed <= set(last)
    report = json.loads(summary.read_text())
    assert report["sent_outcome_unknown"] == sum(
        1 for record in last.values() if record["state"] == "unknown"
    )
    assert report["sent_outcome_unknown"] >= 1
    assert report["not_reached"] == len(ids) - len(last)
