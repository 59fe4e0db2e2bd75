"""The command line, run against a sandbox served by this process: in this process on a
thread of its own (``cli``), or as a real ``python -m freedompay_async`` process where
a test needs one (``start``: signals, SIGKILL).

``freedompay-async cancel`` talks to a :class:`SandboxGateway` on loopback,
so every check compares what the CLI journaled with what the gateway's ledger saw:
crashes (SIGKILL), interrupts (SIGINT), resumes, bad input, secrets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from freedompay_async.cli import main
from freedompay_async.cli._journal import Journal
from freedompay_async.cli._records import decode_record
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .inprocess import on_thread

SETTLED = {"cancelled", "already_cancelled"}


@attrs.frozen
class Run:
    rc: int
    out: str
    err: str


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEDOMPAY_")}
    env.update(FREEDOMPAY_MERCHANT_ID=str(MERCHANT), FREEDOMPAY_SECRET_KEY=SECRET)
    env.update(extra)
    return env


async def start(
    *args: str, env: dict[str, str] | None = None, stdin: bool = False
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "freedompay_async",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else cli_env(),
    )


async def finish(proc: asyncio.subprocess.Process, stdin: bytes | None = None) -> Run:
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def cli(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> Run:
    """Run a command line to its end, in this process (see :mod:`.inprocess`)."""
    return Run(*await on_thread(args, env if env is not None else cli_env(), stdin))


async def cli_process(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Run:
    """Run a command line to its end as a real ``python -m freedompay_async`` process."""
    return await finish(await start(*args, env=env, stdin=stdin is not None), stdin)


def cancel_args(url: str, journal: Path, *more: str) -> list[str]:
    # A short settle window: the sandbox's status answers at once, and no test waits
    # the gateway's 60 s for an outcome status cannot settle.
    return [
        "cancel", "--base-url", url, "--journal", str(journal), "--progress", "none",
        "--settle-window", "3", "--settle-poll", "0.1", *more,
    ]  # fmt: skip


def write_ids(path: Path, ids: Iterable[int]) -> Path:
    path.write_text("".join(f"{pid}\n" for pid in ids))
    return path


def read_journal(path: Path) -> dict[int, list[dict[str, Any]]]:
    """Every record by id; every line must be a complete JSON object."""
    records: dict[int, list[dict[str, Any]]] = {}
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    for line in data.splitlines():
        record = decode_record(json.loads(line))
        if "journal" in record:  # the header line
            continue
        records.setdefault(record["payment_id"], []).append(record)
    return records


def journal_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


async def wait_for_lines(path: Path, count: int, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(30):
        while journal_lines(path) < count:
            assert proc.returncode is None, "the run ended before it could be stopped"
            await asyncio.sleep(0.02)


def assert_consistent(
    records: dict[int, list[dict[str, Any]]], ids: Sequence[int], gw: SandboxGateway
) -> None:
    """Every id: exactly one final record, its last; journal and ledger agree."""
    assert set(records) == set(ids)
    for pid in ids:
        history = records[pid]
        assert [r["final"] for r in history].count(True) == 1, history
        assert history[-1]["final"] is True
        assert history[-1]["state"] in SETTLED
        entry = gw.ledger[pid]
        assert entry.state == "cancelled"
        assert entry.cancellations == 1
        if history[-1]["revoke_id"] is not None:
            assert history[-1]["revoke_id"] == entry.revoke_id


# -- crash, interrupt, resume ----------------------------------------------------------------


async def test_sigkill_mid_run_then_rerun_loses_nothing_and_resends_nothing_settled(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(1_000_001, 1_003_001))
    gw.add_payments(ids)
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"

    proc = await start(*cancel_args(url, journal, "-i", str(src), "--rate", "400"))
    await wait_for_lines(journal, 301, proc)  # the header, then 300 outcomes
    proc.kill()
    killed = await finish(proc)
    assert killed.rc == -signal.SIGKILL

    # The kill may also tear a line mid-write: emulate that worst case.
    with journal.open("ab") as stream:
        stream.write(b'{"payment_id":1002999,"state":"cancel')
    before = read_journal_prefix(journal)
    settled_before = {pid for pid, history in before.items() if history[-1]["final"]}
    assert 300 <= len(settled_before) < len(ids)
    requests_before = {pid: gw.ledger[pid].requests for pid in ids}

    rerun = await cli(*cancel_args(url, journal, "-i", str(src)))
    assert rerun.rc == 0, rerun.err
    assert "dropped a torn record" in rerun.err
    assert f"skipped     {len(settled_before)} ids already settled" in rerun.out

    records = read_journal(journal)
    assert_consistent(records, ids, gw)
    for pid in settled_before:  # the rerun sent nothing for what the journal had settled
        assert gw.ledger[pid].requests == requests_before[pid]
        assert len(records[pid]) == 1
    assert all(gw.ledger[pid].cancellations <= 1 for pid in ids)


def read_journal_prefix(path: Path) -> dict[int, list[dict[str, Any]]]:
    """Records of the complete lines (a torn last line is ignored)."""
    records: dict[int, list[dict[str, Any]]] = {}
    for line in path.read_bytes().split(b"\n")[:-1]:
        record = decode_record(json.loads(line))
        if "journal" in record:  # the header line
            continue
        records.setdefault(record["payment_id"], []).append(record)
    return records


async def test_sigint_stops_cleanly_with_a_consistent_journal_and_rerun_completes(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(2_000_001, 2_001_501))
    gw.add_payments(ids)
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"
    summary = tmp_path / "summary.json"

    proc = await start(
        *cancel_args(url, journal, "-i", str(src), "--rate", "400", "--summary-json", str(summary))
    )
    await wait_for_lines(journal, 151, proc)  # the header, then 150 outcomes
    proc.send_signal(signal.SIGINT)
    run = await finish(proc)
    assert run.rc == 130, run.err
    assert "interrupted" in run.out
    assert "SIGINT" in run.err
    records = read_journal(journal)  # every line complete and parseable
    assert 150 <= len(records) < len(ids)
    report = json.loads(summary.read_text())
    assert report["interrupted"] is True
    assert report["exit_code"] == 130
    assert report["sent"] == len(records)
    assert report["not_reached"] == len(ids) - len(records)
    for pid, history in records.items():
        assert history[-1]["state"] in SETTLED
        assert gw.ledger[pid].state == "cancelled"

    rerun = await cli(*cancel_args(url, journal, "-i", str(src)))
    assert rerun.rc == 0, rerun.err
    assert_consistent(read_journal(journal), ids, gw)


async def test_resume_skips_final_ids_and_retries_the_rest(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    first = list(range(3_000_001, 3_000_011))
    second = list(range(3_000_011, 3_000_021))
    missing = 3_999_999  # not in the ledger: "payment not found", names no payment
    gw.add_payments(first + second)
    journal = tmp_path / "journal.jsonl"

    run1 = await cli(*cancel_args(url, journal, "-i", str(write_ids(tmp_path / "a", first))))
    assert run1.rc == 0, run1.err
    assert all(gw.ledger[pid].requests == 1 for pid in first)

    gw.inject(3_000_015, Fault.FORGED)  # applied, but the reply is forged: unknown, not final
    both = write_ids(tmp_path / "b", [*first, *second, missing])
    summary = tmp_path / "summary.json"
    run2 = await cli(
        *cancel_args(url, journal, "-i", str(both), "--summary-json", str(summary)),
        "--no-reconcile",  # keep the forged reply's id unknown, as a lost answer
    )
    assert run2.rc == 3  # the unknown ones are left to rerun
    report = json.loads(summary.read_text())
    assert report["skipped_settled"] == len(first)
    assert report["sent"] == len(second) + 1
    # Without settling, a refusal that names no payment leaves the cancel's outcome
    # open (it could be a reply captured for another payment): unknown, like the forged.
    assert report["states"]["unknown"] == 2
    assert report["states"]["failed"] == 0
    assert report["retry_later"] == 2
    assert all(gw.ledger[pid].requests == 1 for pid in first + second)
    last = {pid: h[-1] for pid, h in read_journal(journal).items()}
    assert last[3_000_015]["state"] == "unknown"
    assert last[3_000_015]["final"] is False
    assert last[3_000_015]["error_type"] == "SignatureVerificationError"
    assert last[missing]["state"] == "unknown"
    assert last[missing]["final"] is False
    assert last[missing]["error_code"] == 11068

    total_before = gw.requests_total
    run3 = await cli(*cancel_args(url, journal, "-i", str(both), "--summary-json", str(summary)))
    # Settled by status this time: status knows no such payment either, so the refusal
    # stands (failed); it names no payment, so it stays non-final and a rerun asks
    # again, though the answer is not expected to change: exit 1, nothing to rerun.
    assert run3.rc == 1
    # Only the unknown and the missing one are sent: a cancel each, and a status query
    # each to bind the reply that names no payment ("already cancelled", "not found").
    assert gw.requests_total == total_before + 4
    assert gw.ledger[3_000_015].cancel_requests == 2
    assert gw.ledger[3_000_015].status_requests == 1
    assert gw.ledger[3_000_015].cancellations == 1
    last = {pid: h[-1] for pid, h in read_journal(journal).items()}
    assert last[3_000_015]["state"] == "already_cancelled"
    assert last[3_000_015]["final"] is True
    report = json.loads(summary.read_text())
    assert report["sent"] == 2
    assert report["states"]["failed"] == 1
    assert report["retry_later"] == 1


# -- input ---------------------------------------------------------------------------------


async def test_malformed_lines_are_reported_with_line_numbers_and_skipped(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    gw.add_payments([4_000_001, 4_000_002, 4_000_003])
    text = "4000001\nabc\n\n# a comment\n12x4\n4000002\n-7\n4000001\n  4000003  \n"
    journal = tmp_path / "journal.jsonl"
    summary = tmp_path / "summary.json"
    run = await cli(*cancel_args(url, journal, "--summary-json", str(summary)), stdin=text.encode())
    assert run.rc == 1, run.err  # every id cancelled, but three lines were not ids
    assert "input line 2: not a payment id: 'abc' (skipped)" in run.err
    assert "input line 5: not a payment id: '12x4' (skipped)" in run.err
    assert "input line 7: not a payment id: '-7' (skipped)" in run.err
    assert "line 3" not in run.err and "line 4" not in run.err
    assert set(read_journal(journal)) == {4_000_001, 4_000_002, 4_000_003}
    assert all(gw.ledger[pid].requests == 1 for pid in (4_000_001, 4_000_002, 4_000_003))
    report = json.loads(summary.read_text())
    assert report["malformed_lines"] == 3
    assert report["duplicates"] == 1
    assert report["input_ids"] == 3


async def test_csv_column_input(served: tuple[SandboxGateway, str], tmp_path: Path) -> None:
    gw, url = served
    gw.add_payments([5_000_001, 5_000_002, 5_000_003])
    src = tmp_path / "export.csv"
    src.write_bytes(
        b"\xef\xbb\xbforder,payment_id,note\r\n"
        b'A1,5000001,"two\r\nlines"\r\n'
        b"A2,5000002,x\r\n"
        b"A3,n/a,y\r\n"
        b"A4\r\n"
        b'A5,5000003,"a, b"\r\n'
    )
    journal = tmp_path / "journal.jsonl"
    run = await cli(*cancel_args(url, journal, "-i", str(src), "--csv-column", "payment_id"))
    assert run.rc == 1, run.err  # two rows without an id: not a clean run
    assert "input line 5: not a payment id: 'n/a' (skipped)" in run.err
    assert "input line 6: the row has no column 'payment_id' (skipped)" in run.err
    assert set(read_journal(journal)) == {5_000_001, 5_000_002, 5_000_003}

    bad = await cli(*cancel_args(url, journal, "-i", str(src), "--csv-column", "id"))
    assert bad.rc == 2
    assert "CSV column 'id' not found" in bad.err


# -- secrets, credentials, usage -------------------------------------------------------------


async def test_the_secret_never_appears_in_output_or_journal(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    # Real processes: whatever any part of the program writes, to any stream, is seen.
    gw, url = served
    gw.add_payments(range(6_000_001, 6_000_021))
    src = write_ids(tmp_path / "ids.txt", range(6_000_001, 6_000_021))
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")
    key_file.chmod(0o600)
    summary = tmp_path / "summary.json"
    env_without_key = cli_env()
    del env_without_key["FREEDOMPAY_SECRET_KEY"]

    runs = [
        await cli_process(
            *cancel_args(url, tmp_path / "j1", "-i", str(src), "--summary-json", str(summary))
        ),
        await cli_process(
            *cancel_args(url, tmp_path / "j2", "-i", str(src), "--secret-key-file", str(key_file)),
            env=env_without_key,
        ),
    ]
    assert [r.rc for r in runs] == [0, 0]
    refused = [
        await cli_process(
            *cancel_args(url, tmp_path / "j3", "-i", str(src), "--secret-key", SECRET)
        ),
        await cli_process(
            *cancel_args(url, tmp_path / "j3", "-i", str(src), f"--secret-key={SECRET}")
        ),
        await cli_process(*cancel_args(url, tmp_path / "j3", "-i", str(src), "--secret", SECRET)),
        await cli_process(
            *cancel_args(url, tmp_path / "j3", "-i", str(src), "--secret-key-file", SECRET)
        ),
    ]
    assert [r.rc for r in refused] == [2, 2, 2, 2]
    assert "is not accepted" in refused[0].err
    assert not (tmp_path / "j3").exists()
    wrong = await cli_process(
        *cancel_args(url, tmp_path / "j4", "-i", str(src)),
        env=cli_env(FREEDOMPAY_SECRET_KEY="not-" + SECRET),
    )
    assert wrong.rc == 2
    assert "refused the credentials" in wrong.err
    # A refused signature is a configuration problem, never a final outcome.
    assert all(not r["final"] for h in read_journal(tmp_path / "j4").values() for r in h)

    for run in [*runs, *refused, wrong]:
        assert SECRET not in run.out
        assert SECRET not in run.err
    for path in (tmp_path / "j1", tmp_path / "j2", tmp_path / "j4", summary):
        assert SECRET.encode() not in path.read_bytes()


async def test_usage_errors_exit_2(tmp_path: Path) -> None:
    journal = tmp_path / "j"
    env = cli_env()
    del env["FREEDOMPAY_SECRET_KEY"]
    no_key = await cli(*cancel_args("kz-test", journal), env=env)
    assert no_key.rc == 2
    assert "FREEDOMPAY_SECRET_KEY" in no_key.err
    bad_url = await cli(*cancel_args("ftp://example.com", journal))
    assert bad_url.rc == 2
    assert "preset" in bad_url.err
    no_input = await cli(*cancel_args("kz-test", journal, "-i", str(tmp_path / "none.txt")))
    assert no_input.rc == 2
    assert "cannot open input" in no_input.err
    # A journal held by another run is refused (and left untouched).
    held, _ = Journal.open(journal)
    try:
        locked = await cli(*cancel_args("kz-test", journal, "-i", os.devnull))
    finally:
        held.close()
    assert locked.rc == 2
    assert "in use by another run" in locked.err


@pytest.mark.parametrize("command", [[], ["cancel"], ["sandbox"], ["demo"]])
def test_help_for_every_command_exits_0(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    assert "usage: freedompay-async" in capsys.readouterr().out


async def test_help_through_python_dash_m() -> None:
    run = await cli_process("cancel", "--help")
    assert run.rc == 0
    assert "exit codes:" in run.out
    assert "--secret-key-file" in run.out


# -- the demo ------------------------------------------------------------------------------


async def test_demo_runs_and_checks_itself(tmp_path: Path) -> None:
    run = await cli("demo", "--n", "400", "--progress", "none", "--keep", str(tmp_path))
    assert run.rc == 0, run.out + run.err
    assert "summary:" in run.out
    assert "throughput:" in run.out
    assert "demo passed" in run.out
    assert "FAIL" not in run.out
    records = read_journal(tmp_path / "journal.jsonl")
    assert len(records) == 400


# -- the journal and progress, in process ----------------------------------------------------


def test_journal_drops_a_torn_tail_and_ignores_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    good = {"payment_id": 7, "state": "cancelled", "final": True}
    pending = {"payment_id": 8, "state": "pending", "final": False}
    path.write_bytes(
        (json.dumps(good) + "\n" + "not json\n" + json.dumps(pending) + "\n").encode()
        + b'{"payment_id": 9, "state": "canc'
    )
    journal, state = Journal.open(path)
    try:
        assert state.settled == {7}
        assert state.last == {7: "cancelled", 8: "pending"}
        assert state.bad_lines == [2]
        assert state.repaired_tail is not None and "dropped" in state.repaired_tail
        journal.append({"payment_id": 8, "state": "already_cancelled", "final": True})
    finally:
        journal.close()
    lines = path.read_bytes().splitlines()
    assert decode_record(json.loads(lines[-1]))["payment_id"] == 8
    assert all(line != b'{"payment_id": 9, "state": "canc' for line in lines)
    reopened, state = Journal.open(path)  # the lock was released by close()
    reopened.close()
    assert state.settled == {7, 8}


def test_journal_completes_an_unterminated_but_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"payment_id": 5, "state": "already_cancelled", "final": true}')
    journal, state = Journal.open(path)
    journal.close()
    assert state.settled == {5}
    assert path.read_bytes().endswith(b"}\n")


def test_plain_progress_line_has_done_total_rate_and_eta() -> None:
    import io

    from freedompay_async.cli._progress import PlainProgress

    now = [100.0]
    stream = io.StringIO()
    progress = PlainProgress(40, stream, interval=2.0, label="cancel", clock=lambda: now[0])
    for _ in range(10):
        progress.advance("cancelled")
    progress.advance("unknown")
    now[0] += 1.0
    progress.tick()  # not due yet
    assert stream.getvalue() == ""
    now[0] += 1.0
    progress.tick()
    assert stream.getvalue() == "cancel: 11/40 (27.5%), 5.5/s, eta 5s [unknown 1]\n"
    progress.close()
    assert stream.getvalue().count("\n") == 2


def test_progress_falls_back_to_plain_lines_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from freedompay_async.cli._progress import PlainProgress, make_progress

    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if not installed
    assert isinstance(make_progress("bar", 10, io.StringIO()), PlainProgress)
    assert isinstance(make_progress("auto", None, io.StringIO()), PlainProgress)


def test_a_bar_without_the_cli_extra_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from freedompay_async.cli import _progress

    monkeypatch.setattr(_progress, "_load_tqdm", lambda: None)
    stream = io.StringIO()
    display = _progress.make_progress("bar", 10, stream)
    assert isinstance(display, _progress.PlainProgress)
    assert "pip install 'freedompay_async[cli]'" in stream.getvalue()
