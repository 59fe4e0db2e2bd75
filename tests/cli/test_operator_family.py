"""One command family: ``status`` with ``cancel``'s safety, journals that are never
someone else's file, truthful display, ``--dry-run``; run as real subprocesses."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .operator_helpers import closed_port, start_streaming, wait_requests
from .test_cli import cancel_args, cli, cli_env, read_journal, write_ids

WRONG_KEY = cli_env(FREEDOMPAY_SECRET_KEY="not-the-key")


def status_args(url: str, *more: str) -> list[str]:
    return ["status", "--base-url", url, "--progress", "none", *more]


# -- status: fail fast, credentials, strict input, progress, options --------------------


async def test_status_with_a_wrong_key_stops_at_once_naming_the_credentials(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = write_ids(tmp_path / "ids", range(1, 41))
    run = await cli(*status_args(url, "-i", str(ids), "--concurrency", "3"), env=WRONG_KEY)
    assert run.rc == 2, run.err
    first = next(line for line in run.err.splitlines() if line.startswith("freedompay-async:"))
    assert "refused the credentials" in first and "check the merchant id and secret key" in first
    assert "--base-url" not in run.err
    assert gw.requests_total <= 6  # the attempts in flight when the first refusal came
    assert "stopped: the gateway refused the credentials" in run.err
    assert all(json.loads(line)["state"] == "error" for line in run.out.splitlines())


async def test_status_against_a_dead_port_stops_after_the_fail_fast_streak(
    tmp_path: Path,
) -> None:
    sock = closed_port()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ids = write_ids(tmp_path / "ids", range(1, 201))
    try:
        run = await cli(*status_args(url, "-i", str(ids), "--fail-fast-after", "5"))
    finally:
        sock.close()
    assert run.rc == 2, run.err
    assert "5 consecutive attempts" in run.err and "check --base-url" in run.err
    assert "not reached" in run.err
    assert len(run.out.splitlines()) < 50  # far from all 200 ids


async def test_status_refuses_an_empty_or_all_junk_input(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    empty = tmp_path / "empty"
    empty.write_text("")
    junk = tmp_path / "junk"
    junk.write_text("abc\n12x\n")
    for source in (empty, junk):
        run = await cli(*status_args(url, "-i", str(source)))
        assert run.rc == 2, run.err
        assert "status: error:" in run.err and run.out == ""
    assert gw.requests_total == 0


async def test_status_progress_ticks_with_total_eta_and_first_error_lines(
    tmp_path: Path,
) -> None:
    gw = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(slow_delay=0.3))
    gw.add_payments(range(1, 13))
    gw.inject(1, Fault.HTTP_503)  # answered on the retry
    for pid in range(1, 13):
        gw.inject(pid, Fault.SLOW)
    ids = write_ids(tmp_path / "ids", range(1, 13))
    async with gw.serve() as url:
        run = await cli(
            "status", "--base-url", url, "-i", str(ids), "--progress", "plain",
            "--progress-interval", "0.05", "--concurrency", "2", "--payment-interval", "0.01",
        )  # fmt: skip
    assert run.rc == 0, run.err
    ticks = [line for line in run.err.splitlines() if line.startswith("status: ")]
    assert len(ticks) >= 3  # it ticks while the replies are slow, not only at the end
    assert all(re.match(r"status: \d+/12 \(.*%\), .*/s, eta ", line) for line in ticks)
    assert "freedompay-async: first MalformedReplyError: gateway answered HTTP 503" in run.err
    assert len(run.out.splitlines()) == 12


async def test_status_takes_rate_log_level_deadline_and_summary_json(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    ids = write_ids(tmp_path / "ids", [5, 6, 7777777])
    summary = tmp_path / "summary.json"
    run = await cli(
        *status_args(url, "-i", str(ids), "--rate", "200", "--log-level", "debug",
                     "--deadline", "30", "--summary-json", str(summary)),
    )  # fmt: skip
    assert run.rc == 1, run.err  # 7777777 is not found: refused for good
    assert "DEBUG freedompay_async" in run.err
    report = json.loads(summary.read_text())
    assert report["operation"] == "status" and report["journal"] is None
    assert report["states"]["held"] == 2 and report["states"]["error"] == 1
    assert report["failed_for_good"] == 1 and report["exit_code"] == 1


async def test_status_drains_on_sigint_and_prints_the_replies_it_waited_for(
    tmp_path: Path,
) -> None:
    gw = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(slow_delay=0.4))
    gw.add_payments(range(1, 41))
    for pid in range(1, 41):
        gw.inject(pid, Fault.SLOW)
    ids = write_ids(tmp_path / "ids", range(1, 41))
    async with gw.serve() as url:
        run = await start_streaming(*status_args(url, "-i", str(ids), "-c", "2"))
        await wait_requests(gw, 2, run)
        run.proc.send_signal(signal.SIGINT)
        done = await run.finish()
    assert done.rc == 130, done.err
    assert "SIGINT: sending no new requests" in done.err
    assert "interrupted: what is left is for another run" in done.err
    answered = [json.loads(line) for line in done.out.splitlines()]
    assert len(answered) >= 2 and all(line["state"] == "held" for line in answered)
    assert len(answered) < 40


# -- the journal is never someone else's file -----------------------------------------------


async def test_an_existing_file_that_is_not_a_journal_is_refused_and_left_unchanged(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = write_ids(tmp_path / "in.txt", [11, 12])
    precious = write_ids(tmp_path / "precious_ids.txt", range(100, 150))
    one_line = tmp_path / "note.txt"
    one_line.write_bytes(b"call back 12")  # no newline: a torn tail would be cut
    for target in (precious, one_line):
        before = target.read_bytes()
        run = await cli(*cancel_args(url, target, "-i", str(ids)))
        assert run.rc == 2, run.err
        assert "is not a journal of this tool" in run.err and "left unchanged" in run.err
        assert target.read_bytes() == before
    assert gw.requests_total == 0


async def test_the_input_file_is_refused_as_journal(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = write_ids(tmp_path / "ids.txt", [21, 22])
    before = ids.read_bytes()
    for args in (["-i", str(ids)], ["-i", "-"]):
        stdin = before if args[1] == "-" else None
        run = await cli(*cancel_args(url, ids, *args), stdin=stdin)
        assert run.rc == 2, run.err
        assert ids.read_bytes() == before
    run = await cli(*cancel_args(url, ids, "-i", str(ids)))
    assert "is the --input file" in run.err
    assert gw.requests_total == 0


async def test_journal_summary_of_a_file_that_is_not_a_journal_exits_2(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", range(1, 5001))
    run = await cli("journal", "summary", str(ids))
    assert run.rc == 2 and "is not a journal of this tool" in run.err and run.out == ""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (await cli("journal", "summary", str(empty))).rc == 2


# -- a wrong key on cancel ------------------------------------------------------------------


async def test_a_wrong_key_on_cancel_names_the_credentials_first_and_stops_at_once(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = write_ids(tmp_path / "ids", range(31, 71))
    journal = tmp_path / "j.jsonl"
    run = await cli(*cancel_args(url, journal, "-i", str(ids), "-c", "5"), env=WRONG_KEY)
    assert run.rc == 2, run.err
    lines = [line for line in run.err.splitlines() if line.startswith("freedompay-async:")]
    assert all("--base-url" not in line for line in lines)
    assert "refused the credentials" in lines[0]
    assert gw.requests_total <= 10  # 40 ids, 5 in flight: no retries, no reconciling
    assert all(gw.ledger[pid].state == "held" for pid in range(31, 71))


# -- truthful display -----------------------------------------------------------------------


def _in_flight(line: str) -> tuple[int, int]:
    flying = re.search(r"in flight (\d+)", line)
    parked = re.search(r"parked (\d+)", line)
    return (int(flying.group(1)) if flying else 0, int(parked.group(1)) if parked else 0)


async def test_in_flight_never_exceeds_concurrency_and_parked_calls_are_shown_apart(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    pids = range(301, 311)
    for pid in pids:  # each first attempt fails before processing: the retry must wait
        gw.inject(pid, Fault.HTTP_503)
    ids = write_ids(tmp_path / "ids", pids)
    run = await cli(
        "cancel", "--base-url", url, "--journal", str(tmp_path / "j"), "-i", str(ids),
        "--progress", "plain", "--progress-interval", "0.02", "-c", "3",
        "--payment-interval", "0.6",
    )  # fmt: skip
    assert run.rc == 0, run.err
    figures = [_in_flight(line) for line in run.err.splitlines() if line.startswith("cancel: ")]
    assert max(flying for flying, _ in figures) <= 3
    assert max(parked for _, parked in figures) >= 1  # the waiting retries, told apart


async def test_error_lines_are_written_above_the_progress_bar(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    gw.inject(401, Fault.HTTP_503)
    gw.inject(403, Fault.ERROR_9999)
    ids = write_ids(tmp_path / "ids", range(401, 406))
    run = await cli(
        "cancel", "--base-url", url, "--journal", str(tmp_path / "j"), "-i", str(ids),
        "--progress", "bar", "--payment-interval", "0.01",
    )  # fmt: skip
    assert run.rc == 0, run.err
    firsts = [line for line in run.err.split("\n") if "freedompay-async: first " in line]
    assert len(firsts) == 2
    # tqdm.write clears the bar first: whatever precedes the message on its line is
    # the bar erased, never the bar itself.
    assert all(line.split("\r")[-1].startswith("freedompay-async: first") for line in firsts)
    assert all(line.split("\r")[-2].strip() == "" for line in firsts)


async def test_an_empty_unsettled_file_is_not_announced(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    ids = write_ids(tmp_path / "ids", [501, 502])
    left = tmp_path / "left.txt"
    run = await cli(*cancel_args(url, tmp_path / "j", "-i", str(ids), "--unsettled-out", str(left)))
    assert run.rc == 0, run.err
    assert left.read_text() == ""
    assert "  unsettled " not in run.out and "left.txt" not in run.out


async def test_a_garbage_reply_is_quoted_printable(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    gw.inject(601, Fault.GARBAGE)
    ids = write_ids(tmp_path / "ids", [601])
    summary = tmp_path / "s.json"
    args = cancel_args(url, tmp_path / "j", "-i", str(ids), "--summary-json", str(summary))
    run = await cli(*args, "--payment-interval", "0.01")
    assert run.rc == 0, run.err
    first = next(line for line in run.err.splitlines() if "first MalformedReplyError" in line)
    assert "upstream sent garbage" in first
    assert "\\x" not in first and "\ufffd" not in first and first.isprintable()


async def test_revoke_status_is_one_vocabulary_and_settled_by_tells_how(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    # The retry is answered "already cancelled" (10033), which names no payment: status
    # binds it ("revoked"), as it settles the forged reply.
    gw.inject(701, Fault.RESET_AFTER)
    gw.inject(702, Fault.FORGED)
    ids = write_ids(tmp_path / "ids", [701, 702, 703])
    journal = tmp_path / "j.jsonl"
    run = await cli(*cancel_args(url, journal, "-i", str(ids), "--payment-interval", "0.01"))
    assert run.rc == 0, run.err
    last = {pid: history[-1] for pid, history in read_journal(journal).items()}
    assert {record["revoke_status"] for record in last.values()} == {"success"}
    assert last[701]["settled_by"] == "status" and last[702]["settled_by"] == "status"
    assert last[701]["state"] == "cancelled"  # an attempt of this call may have acted
    assert "settled_by" not in last[703]


# -- --dry-run -------------------------------------------------------------------------------


async def test_dry_run_lists_what_would_be_sent_and_sends_one_status_query(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    journal = tmp_path / "j.jsonl"
    done = await cli(*cancel_args(url, journal), stdin=b"801\n")
    assert done.rc == 0, done.err
    before = journal.read_bytes()
    requests = gw.requests_total
    ids = write_ids(tmp_path / "ids", [801, 802, 803, 802])
    run = await cli(*cancel_args(url, journal, "-i", str(ids), "--dry-run"))
    assert run.rc == 0, run.err
    assert run.out.split() == ["802", "803"]  # 801 is settled in the journal
    assert "would send  2 ids" in run.err and "credentials accepted" in run.err
    assert gw.requests_total == requests + 1  # one status query, nothing else
    assert gw.ledger[802].state == "held" and gw.ledger[802].cancel_requests == 0
    assert journal.read_bytes() == before
    fresh = tmp_path / "new.jsonl"
    assert (await cli(*cancel_args(url, fresh, "-i", str(ids), "--dry-run"))).rc == 0
    assert not fresh.exists()


async def test_dry_run_with_a_wrong_key_exits_2_naming_the_credentials(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = write_ids(tmp_path / "ids", [811, 812])
    run = await cli(*cancel_args(url, tmp_path / "j", "-i", str(ids), "--dry-run"), env=WRONG_KEY)
    assert run.rc == 2, run.err
    assert "refused the credentials" in run.err
    assert gw.requests_total == 1 and gw.ledger[811].cancel_requests == 0
