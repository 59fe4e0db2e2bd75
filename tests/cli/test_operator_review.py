"""End-to-end checks of the CLI paths an independent review found wanting: malformed
input and exit 0, a torn or damaged journal header, unsigned refusals, and spellings of
one gateway URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freedompay_async import PaymentNotFoundError
from freedompay_async._session.batch import (
    CancelOutcome,
    OutcomeState,
)
from freedompay_async.cli._exit import EXIT_CODES_TEXT, EXIT_FAILED
from freedompay_async.cli._header import JournalHeader, normalise_base_url
from freedompay_async.cli._op_cancel import cancel_outcome
from freedompay_async.cli._report import BatchReport
from freedompay_async.sandbox import SandboxGateway

from .test_cli import cancel_args, cli, read_journal, write_ids

TORN_HEADER = b'{"journal":"freedompay-async","vers'


# -- 1. malformed input lines ---------------------------------------------------------------


async def test_a_malformed_input_line_makes_an_otherwise_clean_run_exit_1(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    src = tmp_path / "ids"
    src.write_text("101\n102x\n103;\n104\n")
    journal = tmp_path / "journal.jsonl"
    summary = tmp_path / "summary.json"
    run = await cli(*cancel_args(url, journal, "-i", str(src), "--summary-json", str(summary)))
    assert run.rc == 1, run.err
    assert "input line 2: not a payment id: '102x' (skipped)" in run.err
    assert "input line 3: not a payment id: '103;' (skipped)" in run.err
    assert "2 input lines skipped, not cancelled" in run.out
    assert "exit code   1" in run.out
    assert set(read_journal(journal)) == {101, 104}
    assert gw.ledger[101].requests == 1 and gw.ledger[104].requests == 1
    report = json.loads(summary.read_text())
    assert report["malformed_lines"] == 2 and report["exit_code"] == 1
    assert report["states"]["cancelled"] == 2


async def test_allow_malformed_keeps_exit_0_and_still_counts_the_lines(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    src = tmp_path / "ids"
    src.write_text("201\n202x\n203\n")
    journal = tmp_path / "journal.jsonl"
    run = await cli(*cancel_args(url, journal, "-i", str(src), "--allow-malformed"))
    assert run.rc == 0, run.err
    assert "input line 2: not a payment id: '202x' (skipped)" in run.err
    assert "1 input line skipped, not cancelled" in run.out
    assert set(read_journal(journal)) == {201, 203}


async def test_the_help_lists_malformed_input_under_exit_1() -> None:
    run = await cli("cancel", "--help")
    assert run.rc == 0
    assert "--allow-malformed" in run.out
    one = EXIT_CODES_TEXT.split("\n  1 ")[1].split("\n  2 ")[0]
    assert "malformed" in one and "nothing is left to rerun" not in one
    assert " ".join(one.split()) in " ".join(run.out.split())


# -- 2. a torn or damaged header ------------------------------------------------------------


async def test_a_torn_header_is_dropped_and_the_run_proceeds(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(TORN_HEADER)  # the disk filled during the header write
    run = await cli(*cancel_args(url, journal, "-i", str(write_ids(tmp_path / "ids", [301]))))
    assert run.rc == 0, run.err
    assert "Traceback" not in run.err
    assert "line 1: dropped a torn record" in run.err
    first = json.loads(journal.read_bytes().splitlines()[0])
    assert first["journal"] == "freedompay-async" and first["base_url"] == url
    assert set(read_journal(journal)) == {301}


async def test_a_whole_header_without_its_newline_is_completed(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    journal = tmp_path / "journal.jsonl"
    header = JournalHeader("cancel", url, 1234, started="2026-12-02T06:00:00.000+00:00")
    journal.write_bytes(json.dumps(header.as_record()).encode())
    run = await cli(*cancel_args(url, journal, "-i", str(write_ids(tmp_path / "ids", [302]))))
    assert run.rc == 0, run.err
    assert "line 1: completed an unterminated record" in run.err
    first = json.loads(journal.read_bytes().splitlines()[0])
    assert first["started"] == header.started  # kept, not replaced
    assert set(read_journal(journal)) == {302}


async def test_journal_summary_and_show_report_a_torn_header_without_a_traceback(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(TORN_HEADER)
    summary = await cli("journal", "summary", str(journal))
    assert summary.rc == 0, summary.err
    assert "Traceback" not in summary.err
    data = json.loads(summary.out)
    assert data["header"] is None and data["records"] == 0
    assert data["torn_tail"] == "line 1: dropped a torn record"
    show = await cli("journal", "show", str(journal))
    assert show.rc == 1 and "Traceback" not in show.err
    assert "line 1: torn last line skipped" in show.err
    assert journal.read_bytes() == TORN_HEADER  # readers never repair


@pytest.mark.parametrize(
    "first_line",
    [
        TORN_HEADER + b"\n",  # torn, then more records: damage, not a crash's tail
        b'{"journal":"freedompay-async","version":2,"operation":"cancel"}\n',  # fields lost
    ],
)
async def test_a_damaged_header_is_exit_2_with_a_clear_message(
    served: tuple[SandboxGateway, str], tmp_path: Path, first_line: bytes
) -> None:
    gw, url = served
    journal = tmp_path / "journal.jsonl"
    before = first_line + b'{"p":401,"s":"c"}\n'
    journal.write_bytes(before)
    ids = write_ids(tmp_path / "ids", [401, 402])
    run = await cli(*cancel_args(url, journal, "-i", str(ids)))
    assert run.rc == 2, run.err
    assert "Traceback" not in run.err
    assert "looks like a journal header but" in run.err and "line 1" in run.err
    assert journal.read_bytes() == before  # nothing written, nothing repaired
    assert gw.ledger[402].requests == 0  # nothing sent
    summary = await cli("journal", "summary", str(journal))
    assert summary.rc == 2 and "Traceback" not in summary.err
    assert "looks like a journal header but" in summary.err


# -- 3. unsigned refusals -------------------------------------------------------------------


def test_unsigned_refusals_are_exit_1_and_both_texts_say_a_rerun_asks_again() -> None:
    report = BatchReport(journal="j", run="r")
    report.input_ids = 1
    unsigned = PaymentNotFoundError(11068, "Payment not found")
    outcome = CancelOutcome(7, 7, OutcomeState.FAILED, 1, 0.01, error=unsigned)
    report.record(cancel_outcome(outcome, run=report.run, final=False))
    assert report.exit_code == EXIT_FAILED
    text = " ".join(report.render().split())
    assert "1 of them unsigned refusals: kept non-final in the journal" in text
    assert "a rerun asks again, though the answer is not expected to change" in text
    help_text = " ".join(EXIT_CODES_TEXT.split())
    assert "nothing is left to rerun" not in help_text
    assert "stays non-final in the journal, so a rerun asks about it again" in help_text


# -- 4. one gateway, several spellings ------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "normal"),
    [
        ("HTTP://127.0.0.1:40229", "http://127.0.0.1:40229"),
        ("http://127.0.0.1:40229/", "http://127.0.0.1:40229"),
        ("https://API.FreedomPay.kz:443", "https://api.freedompay.kz"),
        ("http://Host:80/base/", "http://host/base"),
        ("https://host:80", "https://host:80"),  # not the default port of https
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_base_urls_are_normalised(spelling: str, normal: str) -> None:
    assert normalise_base_url(spelling) == normal
    assert JournalHeader("cancel", spelling, 1, started="t").base_url == normal
    record = {**JournalHeader("cancel", normal, 1, started="t").as_record(), "base_url": spelling}
    assert JournalHeader.from_record(record) == JournalHeader("cancel", normal, 1, started="t")


async def test_another_spelling_of_the_same_gateway_resumes_the_journal(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    journal = tmp_path / "journal.jsonl"
    shouted = url.replace("http://", "HTTP://") + "/"
    first = await cli(*cancel_args(shouted, journal, "-i", str(write_ids(tmp_path / "a", [501]))))
    assert first.rc == 0, first.err
    assert json.loads(journal.read_bytes().splitlines()[0])["base_url"] == url
    ids = write_ids(tmp_path / "b", [501, 502])
    again = await cli(*cancel_args(url, journal, "-i", str(ids)))
    assert again.rc == 0, again.err
    assert "another gateway" not in again.err
    assert gw.ledger[501].requests == 1 and gw.ledger[502].requests == 1
