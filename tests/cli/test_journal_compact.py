"""The compact journal: encoding, the streaming reader, old journals, journal show|summary."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freedompay_async import (
    AlreadyCancelledError,
    CancelOutcome,
    CancelResult,
    OutcomeState,
    RevokeStatus,
)
from freedompay_async.cli import _codec, _scan, main
from freedompay_async.cli._input import parse_plain, read_lines
from freedompay_async.cli._journal import Journal, JournalHeader, read_state
from freedompay_async.cli._outcome_record import outcome_record
from freedompay_async.cli._plain import plain_blocks
from freedompay_async.cli._records import decode_record, encode_record
from freedompay_async.sandbox import SandboxGateway

from .test_cli import cancel_args, cli, read_journal, write_ids

STATES = [state.value for state in OutcomeState]
SETTLED = {"cancelled", "already_cancelled"}
TEXT = st.text(max_size=30)
MAYBE_INT = st.none() | st.integers(0, 10**12)


@st.composite
def verbose_records(draw: st.DrawFn) -> dict[str, Any]:
    """Full verbose records as ``outcome_record`` writes them, plus unknown keys."""
    state = draw(st.sampled_from(STATES))
    ms = draw(st.integers(0, 4_000_000_000_000))
    record: dict[str, Any] = {
        "payment_id": draw(st.integers(1, 10**20 - 1)),
        "state": state,
        "final": True if state in SETTLED else draw(st.booleans()),
        "attempts": draw(st.integers(1, 9)),
        "elapsed": draw(st.floats(0, 1e4, allow_nan=False).map(lambda x: round(x, 4))),
        "revoke_id": draw(MAYBE_INT),
        "revoke_status": draw(st.none() | st.sampled_from(["success", "error", "Success"])),
        "confirmed_on_retry": draw(st.booleans()),
        "error_type": draw(st.none() | TEXT),
        "error_code": draw(MAYBE_INT),
        "error_description": draw(st.none() | TEXT),
        "http_status": draw(st.none() | st.integers(100, 599)),
        # Either the writer's own ISO form or any other text (kept as text).
        "time": draw(st.just(_codec.ms_to_time(ms)) | TEXT),
        "run": draw(st.none() | st.text("0123456789abcdef", min_size=12, max_size=12)),
    }
    if state == "cancelled" and record["revoke_status"] is None:
        record["revoke_status"] = "success"  # a cancelled outcome always has a result
    extra = draw(st.dictionaries(st.sampled_from(["settled_by", "note", "zz_new"]), TEXT))
    return {**record, **extra}


@settings(max_examples=300, deadline=None)
@given(verbose_records())
def test_compact_encoding_round_trips_and_keeps_unknown_keys(record: dict[str, Any]) -> None:
    compact = encode_record(record)
    line = json.dumps(compact, separators=(",", ":"))
    back = decode_record(json.loads(line))
    assert back == record
    assert "payment_id" not in compact
    assert list(compact)[:2] == ["p", "s"]  # the reader's fast frame
    for key in ("settled_by", "note", "zz_new"):
        if key in record:
            assert compact[key] == record[key]
    assert encode_record(compact) == compact  # already compact: written as it is
    assert decode_record(record) == record  # a verbose record is read as it is


def test_a_colliding_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="collides"):
        encode_record({"payment_id": 1, "state": "cancelled", "p": 2})


def _outcome_records() -> list[dict[str, Any]]:
    result = CancelResult(
        payment_id=1_234_567_890,
        revoke_id=9_876_543_210,
        status="ok",
        revoke_status=RevokeStatus.SUCCESS,
        revoke_status_raw="success",
    )
    cancelled = CancelOutcome.from_result(1_234_567_890, result, 0.0123)
    already = CancelOutcome.from_error(
        5, 5, AlreadyCancelledError(10033, "already cancelled", signed=True, bound=True), 0.2
    )
    return [
        outcome_record(outcome, run="3f2a9c1d7b4e", now=lambda: "2026-12-02T06:00:00.123+00:00")
        for outcome in (cancelled, already)
    ]


def test_appended_lines_are_compact_and_read_back_verbose(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    header = JournalHeader("cancel", "http://127.0.0.1:1", 1234, "2026-12-02T06:00:00.000+00:00")
    records = _outcome_records()
    journal, _ = Journal.open(path, header=header)
    try:
        journal.append(records[0])
        journal.append({**records[1], "settled_by": "status"})
    finally:
        journal.close()
    lines = path.read_bytes().splitlines()
    assert json.loads(lines[0])["journal"] == "freedompay-async"
    # A cancelled outcome with 10-digit ids: well under the 100-byte target.
    assert len(lines[1]) + 1 <= 100, lines[1]
    assert lines[1].startswith(b'{"p":1234567890,"s":"c",')
    assert [decode_record(json.loads(line)) for line in lines[1:]] == [
        records[0],
        {**records[1], "settled_by": "status"},
    ]
    assert json.loads(lines[2])["settled_by"] == "status"
    with path.open("rb") as stream:
        state, tail = read_state(stream)
    assert tail is None
    assert state.header == header
    assert dict(state.last) == {1_234_567_890: "cancelled", 5: "already_cancelled"}
    assert set(state.settled) == {1_234_567_890, 5}


def _naive(lines: list[bytes]) -> tuple[dict[int, str], set[int], list[int]]:
    """The old reader: json.loads per line, the old JournalState.add rule."""
    last: dict[int, str] = {}
    settled: set[int] = set()
    bad: list[int] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            bad.append(lineno)
            continue
        if not isinstance(value, dict):
            bad.append(lineno)
            continue
        record = decode_record(value)
        if lineno == 1 and "journal" in record:
            continue
        pid, state = record.get("payment_id"), record.get("state")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or state not in STATES:
            bad.append(lineno)
            continue
        final = record.get("final") is True or state in SETTLED
        if final or pid not in settled:
            last[pid] = state
        if final:
            settled.add(pid)
    return last, settled, bad


_LINE = st.one_of(
    verbose_records().map(lambda r: json.dumps(r).encode()),
    verbose_records().map(lambda r: json.dumps(encode_record(r), separators=(",", ":")).encode()),
    st.builds(
        lambda pid, state, final: json.dumps(
            encode_record({"payment_id": pid, "state": state, "final": final}),
            separators=(",", ":"),
        ).encode(),
        st.integers(1, 40),
        st.sampled_from(STATES),
        st.booleans(),
    ),
    st.sampled_from([b"", b"   ", b"not json", b"[1, 2]", b'{"p":0,"s":"c"}', b'{"p":5,"s":"x"}']),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_LINE, max_size=60),
    st.booleans(),
    st.integers(16, 400),
    st.none() | st.binary(max_size=20),
)
def test_streaming_reader_agrees_with_a_line_by_line_reader(
    lines: list[bytes], with_header: bool, block: int, torn: bytes | None
) -> None:
    if with_header:
        header = JournalHeader("cancel", "http://x", 1, "t").as_record()
        lines = [json.dumps(header, separators=(",", ":")).encode(), *lines]
    data = b"".join(line + b"\n" for line in lines)
    if torn is not None and b"\n" not in torn and torn.strip():
        data += torn
    original = _scan.BLOCK
    try:
        _scan.BLOCK = block
        state, tail = read_state(io.BytesIO(data))
    finally:
        _scan.BLOCK = original
    complete = data.split(b"\n")
    whole, partial = complete[:-1], complete[-1]
    last, settled, bad = _naive(whole)
    if partial:
        tail_last, tail_settled, tail_bad = _naive([*whole, partial])
        assert tail is not None
        assert tail[0] == ("drop" if tail_bad != bad else "complete")
        last, settled = tail_last, tail_settled
    else:
        assert tail is None
    assert dict(state.last) == last
    assert set(state.settled) == settled
    assert state.bad_lines == bad
    assert (state.header is not None) == with_header


def test_small_blocks_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # The property above relies on BLOCK being read at call time.
    monkeypatch.setattr(_scan, "BLOCK", 7)
    lines = b'{"p":1,"s":"c"}\n{"p":2,"s":"u"}\n{"p":3,"s":"f","f":1}\n'
    state, _ = read_state(io.BytesIO(lines))
    assert dict(state.last) == {1: "cancelled", 2: "unknown", 3: "failed"}
    assert set(state.settled) == {1, 3}
    assert state.counts()["final"] == 2


_INPUT_LINE = st.one_of(
    st.integers(1, 10**20 - 1).map(str),
    st.integers(1, 10**20 - 1).map(lambda n: "0" + str(n)),
    st.sampled_from(["", "  ", "# comment", "12 ", " 7", "abc", "0", "1" * 21, "5\r", "é"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_INPUT_LINE, max_size=80), st.booleans(), st.booleans(), st.integers(4, 200))
def test_bulk_plain_reader_matches_the_line_parser(
    lines: list[str], bom: bool, trailing_newline: bool, block: int
) -> None:
    import freedompay_async.cli._plain as plain

    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    stream = io.BytesIO(data)
    expected = list(parse_plain(read_lines(lambda: stream.read(5))))
    original = plain._BLOCK
    try:
        plain._BLOCK = block
        got: list[tuple[int, int | None, str]] = []
        fast = 0
        for part in plain_blocks(io.BytesIO(data), parse_plain):
            for entry in part:
                if isinstance(entry, int):
                    fast += 1
                    got.append((-1, entry, str(entry)))
                else:
                    got.append(entry)
    finally:
        plain._BLOCK = original
    assert [pid for _, pid, _ in got] == [pid for _, pid, _ in expected]
    assert [item for item in got if item[0] != -1] == [
        item for item, mine in zip(expected, got, strict=True) if mine[0] != -1
    ]


# -- through the command line ----------------------------------------------------------------


def _verbose_line(pid: int, state: str, final: bool) -> str:
    """One line of an old journal, exactly the old writer's shape."""
    record = {
        "payment_id": pid,
        "state": state,
        "final": final,
        "attempts": 1,
        "elapsed": 0.01,
        "revoke_id": pid + 10 if state == "cancelled" else None,
        "revoke_status": "success" if state == "cancelled" else None,
        "confirmed_on_retry": False,
        "error_type": None if state == "cancelled" else "ConnectionLostError",
        "error_code": None,
        "error_description": None if state == "cancelled" else "connection lost",
        "http_status": None,
        "time": "2025-01-31T12:00:00.123+00:00",
        "run": "0123456789ab",
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


async def test_an_old_verbose_journal_resumes(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    ids = list(range(6_000_001, 6_000_041))
    gw.add_payments(ids)
    settled_before, unknown_before = ids[:25], ids[25:30]
    journal = tmp_path / "old.jsonl"
    journal.write_text(
        "".join(_verbose_line(pid, "cancelled", True) for pid in settled_before)
        + "".join(_verbose_line(pid, "unknown", False) for pid in unknown_before)
    )
    summary = tmp_path / "summary.json"
    src = write_ids(tmp_path / "ids.txt", ids)
    run = await cli(*cancel_args(url, journal, "-i", str(src), "--summary-json", str(summary)))
    assert run.rc == 0, run.err
    report = json.loads(summary.read_text())
    assert report["journal_records_before"] == 30
    assert report["skipped_settled"] == 25
    assert report["sent"] == 15  # the 5 unknown ones and the 10 never tried
    assert all(gw.ledger[pid].requests == 0 for pid in settled_before)
    assert all(gw.ledger[pid].requests == 1 for pid in ids[25:])
    raw = journal.read_bytes().splitlines()
    assert all(line.startswith(b'{"payment_id"') for line in raw[:30])  # left as they were
    assert all(line.startswith(b'{"p":') for line in raw[30:])  # appended compact
    history = read_journal(journal)
    assert all(history[pid][-1]["state"] == "cancelled" for pid in ids)
    # A rerun over the mixed journal sends nothing.
    total = gw.requests_total
    again = await cli(*cancel_args(url, journal, "-i", str(src)))
    assert again.rc == 0, again.err
    assert gw.requests_total == total


def test_journal_show_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.jsonl"
    header = JournalHeader("cancel", "http://127.0.0.1:1", 1234, "2026-12-02T06:00:00.000+00:00")
    journal, _ = Journal.open(path, header=header)
    try:
        journal.append({"payment_id": 7, "state": "unknown", "final": False})
        journal.append({"payment_id": 8, "state": "failed", "final": True, "settled_by": "x"})
        journal.append({"payment_id": 7, "state": "cancelled", "final": True})
    finally:
        journal.close()
    with path.open("ab") as stream:
        stream.write(_verbose_line(9, "unknown", False).encode() + b"garbage\n")

    assert main(["journal", "show", str(path)]) == 1  # one unreadable line
    out, err = capsys.readouterr()
    shown = [json.loads(line) for line in out.splitlines()]
    assert shown[0]["journal"] == "freedompay-async"
    assert [(r["payment_id"], r["state"], r["final"]) for r in shown[1:]] == [
        (7, "unknown", False),
        (8, "failed", True),
        (7, "cancelled", True),
        (9, "unknown", False),
    ]
    assert shown[2]["settled_by"] == "x"
    assert "line 6: unreadable line skipped" in err

    assert main(["journal", "show", str(path), "--id", "7"]) == 1
    out, _ = capsys.readouterr()
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["unknown", "cancelled"]

    assert main(["journal", "summary", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["header"]["merchant_id"] == 1234
    assert summary["records"] == 4
    assert summary["ids"] == 3
    assert summary["states"] == {
        "cancelled": 1,
        "already_cancelled": 0,
        "pending": 0,
        "failed": 1,
        "unknown": 1,
    }
    assert summary["settled"] == 2
    assert summary["failed_for_good"] == 1
    assert summary["retry"] == 1
    assert summary["unreadable_lines"] == 1
    assert summary["first_unreadable_lines"] == [6]

    assert main(["journal", "summary", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
