"""In-process checks of the operator-safety pieces: input parsing, the journal header,
the attempt watch (fail fast), the summary's wording and exit codes, progress, signals."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
from pathlib import Path

import pytest

from freedompay_async import (
    AlreadyCancelledError,
    ConnectError,
    FreedomPayError,
    GatewayRequest,
    MalformedReplyError,
    PaymentNotFoundError,
    ResponseTimeoutError,
    RetryPolicy,
    SignatureVerificationError,
    TransientGatewayError,
    UnconfirmedReplyError,
)
from freedompay_async._session.batch import (
    CancelOutcome,
    OutcomeState,
)
from freedompay_async._wire.messages import GatewayReply
from freedompay_async.cli._exit import EXIT_FAILED, EXIT_OK, EXIT_RERUN
from freedompay_async.cli._input import parse_csv, parse_plain, read_lines, why_no_ids
from freedompay_async.cli._journal import Journal, JournalHeader
from freedompay_async.cli._op_cancel import cancel_outcome
from freedompay_async.cli._progress import PlainProgress
from freedompay_async.cli._report import BatchReport
from freedompay_async.cli._signals import _SIGNALS
from freedompay_async.cli._watch import AttemptWatch, not_a_gateway

# -- input -----------------------------------------------------------------------------------


def test_a_comment_after_an_id_is_ignored() -> None:
    items = list(parse_plain(["12345 # asked by phone\n", "# whole line\n", "67#x\n", "ab #c\n"]))
    assert [(line, pid) for line, pid, _ in items] == [(1, 12345), (3, 67), (4, None)]


def test_csv_with_another_delimiter() -> None:
    lines = ["order;payment_id\n", "A1;11\n", 'A2;"12"\n']
    assert [pid for _, pid, _ in parse_csv(lines, "payment_id", ";")] == [11, 12]


def test_a_utf16_input_with_a_byte_order_mark_is_decoded() -> None:
    chunks = [b"", "7\n8\n".encode("utf-16")]
    assert [pid for _, pid, _ in parse_plain(read_lines(chunks.pop))] == [7, 8]


def test_why_no_ids_names_the_likely_cause() -> None:
    assert "holds no payment ids" in why_no_ids(0, None, None)
    assert "--csv-column" in why_no_ids(2, "line 1: not a payment id: 'a,b'", None)
    assert "UTF-16" in why_no_ids(1, "line 1: not a payment id: '1\\x002\\x00'", None)
    assert "--csv-column" not in why_no_ids(1, "line 2: not a payment id: 'a,b'", "id")


# -- the journal header ----------------------------------------------------------------------


def test_a_new_journal_starts_with_its_header_and_reads_it_back(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    header = JournalHeader("cancel", "http://127.0.0.1:8080", 1234, started="2026-01-01T00:00")
    journal, state = Journal.open(path, header=header)
    journal.append({"payment_id": 5, "state": "cancelled", "final": True})
    journal.close()
    assert state.header == header
    first = json.loads(path.read_bytes().splitlines()[0])
    assert first == {
        "journal": "freedompay-async",
        "version": 2,
        "operation": "cancel",
        "base_url": "http://127.0.0.1:8080",
        "merchant_id": 1234,
        "started": "2026-01-01T00:00",
    }
    other = JournalHeader("cancel", "http://127.0.0.1:9090", 1234)
    journal, state = Journal.open(path, header=other)  # not new: the header stays
    journal.close()
    assert state.header == header
    assert state.bad_lines == []  # the header is not an unreadable record
    assert state.settled == {5}
    assert header.differs_from(other) == [
        "base_url 'http://127.0.0.1:8080' (journal) vs 'http://127.0.0.1:9090' (this run)"
    ]


def test_a_legacy_journal_gets_no_header(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"payment_id": 5, "state": "cancelled", "final": true}\n')
    journal, state = Journal.open(path, header=JournalHeader("cancel", "http://x", 1))
    journal.close()
    assert state.header is None
    assert state.settled == {5}
    assert path.read_text().count("\n") == 1


# -- the attempt watch -----------------------------------------------------------------------


def _request(attempt: int = 1) -> GatewayRequest:
    return GatewayRequest(
        "cancel", "http://gw/g2g/cancel", "cancel", 1, (), b"", "x", timeout=1, attempt=attempt
    )


async def _attempt(watch: AttemptWatch, error: FreedomPayError | None, attempt: int = 1) -> None:
    async def call_next(request: GatewayRequest) -> GatewayReply:
        if error is not None:
            raise error
        return None  # type: ignore[return-value]

    with contextlib.suppress(FreedomPayError):
        await watch(_request(attempt), call_next)


def test_what_counts_as_not_a_gateway() -> None:
    assert not_a_gateway(ConnectError("refused"))
    assert not_a_gateway(ResponseTimeoutError("slow"))
    assert not_a_gateway(MalformedReplyError("html", http_status=200))
    assert not_a_gateway(MalformedReplyError("404", http_status=404))
    assert not_a_gateway(SignatureVerificationError("forged"))
    assert not not_a_gateway(MalformedReplyError("429", http_status=429))
    assert not not_a_gateway(PaymentNotFoundError(11068, "not found"))
    assert not not_a_gateway(TransientGatewayError(9999, "busy"))
    # The gateway answered "already cancelled" without naming the payment: an answer
    # (status binds it), not a wrong URL. A rerun after a lost journal gets one per id.
    claim = AlreadyCancelledError(10033, "already cancelled", signed=True)
    assert not not_a_gateway(UnconfirmedReplyError(claim, payment_id=1))


async def test_the_watch_trips_after_n_consecutive_failures_and_a_gateway_answer_resets() -> None:
    err = io.StringIO()
    trips: list[str] = []
    watch = AttemptWatch(3, err, on_trip=trips.append)
    await _attempt(watch, ConnectError("refused"))
    await _attempt(watch, ConnectError("refused again"), attempt=2)
    await _attempt(watch, PaymentNotFoundError(11068, "not found"))  # a gateway answered
    await _attempt(watch, MalformedReplyError("slow down", http_status=429))  # neutral
    await _attempt(watch, ResponseTimeoutError("no reply"))
    await _attempt(watch, ConnectError("refused"))
    assert trips == [] and watch.tripped is None
    await _attempt(watch, ResponseTimeoutError("no reply"))
    assert len(trips) == 1 and watch.tripped == trips[0]
    assert "3 consecutive attempts against http://gw/g2g/cancel" in trips[0]
    await _attempt(watch, ConnectError("refused"))  # refused unsent: the run has stopped
    assert len(trips) == 1  # once
    # Each error class's first reason, once.
    lines = err.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["freedompay-async"] * 4
    assert sum("first ConnectError: refused" in line for line in lines) == 1
    assert watch.status() == "attempts 7, retries 1, timeouts 2, in flight 0"
    # Once tripped, nothing is retried.
    policy = watch.retry_policy(RetryPolicy())
    assert policy.on(ConnectError("refused")) is False


async def test_a_burst_of_failures_in_flight_together_counts_once() -> None:
    """One stall timing out every attempt in flight is one event, not a dead gateway."""
    watch = AttemptWatch(5, io.StringIO())
    gate = asyncio.Event()

    async def stalled(request: GatewayRequest) -> GatewayReply:
        await gate.wait()
        raise ResponseTimeoutError("no reply")

    tasks = [asyncio.create_task(watch(_request(), stalled)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert watch.streak == 1 and watch.tripped is None
    for _ in range(4):  # attempts started after the stall keep failing: a dead gateway
        await _attempt(watch, ResponseTimeoutError("no reply"))
    assert watch.tripped is not None


async def test_a_threshold_of_0_never_trips() -> None:
    watch = AttemptWatch(0, io.StringIO())
    for _ in range(50):
        await _attempt(watch, ConnectError("refused"))
    assert watch.tripped is None


def test_progress_shows_the_attempt_figures() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = PlainProgress(
        20, stream, label="cancel", clock=lambda: now[0], status=lambda: "attempts 40, timeouts 20"
    )
    now[0] = 80.0
    progress.close()
    assert stream.getvalue() == "cancel: 0/20 (0.0%), 0.0/s, eta ? (attempts 40, timeouts 20)\n"


# -- the summary -----------------------------------------------------------------------------


def _outcome(pid: int, state: OutcomeState, error: FreedomPayError | None = None) -> CancelOutcome:
    return CancelOutcome(pid, pid, state, 1, 0.01, error=error)


def _count(report: BatchReport, outcome: CancelOutcome, *, final: bool) -> None:
    """Count a cancel's outcome as the runner does: classified by the operation first."""
    report.record(cancel_outcome(outcome, run=report.run, final=final))


def test_the_not_settled_line_lists_what_is_left_and_never_ends_in_a_colon() -> None:
    report = BatchReport(journal="j", run="r", gateway="http://gw", merchant_id=1)
    report.input_ids = 126
    _count(report, _outcome(1, OutcomeState.UNKNOWN, ResponseTimeoutError("slow")), final=False)
    text = report.render()
    assert not any(
        line.rstrip().endswith(":") and "not settled" in line for line in text.split("\n")
    )
    assert "126 ids not settled (1 unknown, 125 not reached): rerun with the same --journal" in text
    assert "gateway     http://gw (merchant 1)" in text
    assert "ResponseTimeoutError 1, e.g. slow\n" in text
    assert report.exit_code == EXIT_RERUN


def test_permanent_failures_are_not_told_to_rerun() -> None:
    report = BatchReport(journal="j", run="r")
    report.input_ids = 2
    signed = PaymentNotFoundError(11068, "Payment not found", signed=True)
    _count(report, _outcome(1, OutcomeState.FAILED, signed), final=True)
    unsigned = PaymentNotFoundError(11068, "Payment not found")
    _count(report, _outcome(2, OutcomeState.FAILED, unsigned), final=False)
    text = report.render()
    assert "rerun with the same --journal" not in text
    assert "to rerun" not in text
    assert "2 ids failed for good" in text
    assert report.exit_code == EXIT_FAILED
    assert report.as_dict()["failed_for_good"] == 2


def test_all_cancelled_is_exit_0_and_transient_failures_are_to_rerun() -> None:
    report = BatchReport(journal="j", run="r")
    report.input_ids = 1
    _count(report, _outcome(1, OutcomeState.CANCELLED), final=True)
    assert report.exit_code == EXIT_OK
    assert "exit code   0" in report.render()
    assert "exit code" not in report.render(exit_line=False)
    report.input_ids = 2
    busy = TransientGatewayError(9999, "busy", signed=True)
    _count(report, _outcome(2, OutcomeState.FAILED, busy), final=False)
    assert report.exit_code == EXIT_RERUN
    assert "(1 transient failure)" in report.render()


# -- signals ---------------------------------------------------------------------------------


def test_sighup_is_handled_like_sigint_and_sigterm() -> None:
    assert set(_SIGNALS) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@pytest.mark.parametrize("value", ["tab", ";", "|"])
def test_csv_delimiter_option_values(value: str) -> None:
    from freedompay_async.cli._options import _delimiter

    assert len(_delimiter(value)) == 1
