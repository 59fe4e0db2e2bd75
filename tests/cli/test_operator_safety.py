"""The command line never reports silent non-work: each way a run can do nothing (or
less than it says) ends in a clear message and a non-zero exit code. Here: a journal
of another gateway, inputs without ids, and gateways that are plainly wrong.

Every end-to-end test runs ``python -m freedompay_async cancel`` as a subprocess
against a server on loopback (the sandbox, or a small aiohttp app that counts what it
receives) and checks what the server saw against what the CLI journaled and said.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, serve
from .operator_helpers import Counted, closed_port
from .test_cli import cancel_args, cli, cli_env, read_journal, write_ids


@pytest.fixture
async def other_gateway() -> AsyncIterator[tuple[SandboxGateway, str]]:
    """A second sandbox (same merchant and key) on another port."""
    gw = SandboxGateway(MERCHANT, SECRET)
    gw.add_payments(range(1, 2001))
    async with gw.serve() as url:
        yield gw, url


# -- 1. a journal belongs to one gateway and merchant -----------------------------------------


async def test_a_journal_of_another_gateway_or_merchant_is_refused_naming_both(
    served: tuple[SandboxGateway, str],
    other_gateway: tuple[SandboxGateway, str],
    tmp_path: Path,
) -> None:
    _, url_a = served
    gw_b, url_b = other_gateway
    ids = list(range(1, 21))
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"

    first = await cli(*cancel_args(url_a, journal, "-i", str(src)))
    assert first.rc == 0, first.err
    header = json.loads(journal.read_bytes().splitlines()[0])
    assert header["journal"] == "freedompay-async"
    assert header["base_url"] == url_a
    assert header["merchant_id"] == MERCHANT
    assert header["operation"] == "cancel"

    # The same journal against another gateway: today that said "cancelled 20", exit 0,
    # and sent nothing. Now it is refused, naming both gateways, and sends nothing.
    before = journal.read_bytes()
    other = await cli(*cancel_args(url_b, journal, "-i", str(src)))
    assert other.rc == 2, other.out + other.err
    assert url_a in other.err and url_b in other.err
    assert "--start-over" in other.err
    assert gw_b.requests_total == 0
    assert journal.read_bytes() == before
    assert f"gateway     {url_a} (merchant {MERCHANT})" in first.out  # the summary names it

    # ... and against another merchant.
    merchant = await cli(
        *cancel_args(url_a, journal, "-i", str(src)), env=cli_env(FREEDOMPAY_MERCHANT_ID="999")
    )
    assert merchant.rc == 2
    assert "merchant_id 1234 (journal) vs 999 (this run)" in merchant.err

    # --start-over keeps the old journal aside and cancels at the new gateway.
    over = await cli(*cancel_args(url_b, journal, "-i", str(src), "--start-over"))
    assert over.rc == 0, over.err
    assert all(gw_b.ledger[pid].state == "cancelled" for pid in ids)
    (aside,) = [p for p in tmp_path.iterdir() if p.name.endswith(".old")]  # noqa: ASYNC240
    assert aside.read_bytes() == before
    assert json.loads(journal.read_bytes().splitlines()[0])["base_url"] == url_b


# -- 2. input is strict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "extra", "expected"),
    [
        (b"", [], "holds no payment ids"),
        (b"# only a comment\n\n   \n", [], "holds no payment ids"),
        (b"order,payment_id\nA1,11\nA2,12\n", [], "looks like CSV: pass --csv-column"),
        ("11\n12\n".encode("utf-16-le"), [], "not UTF-8 text"),
        (b"payment_id\n", ["--csv-column", "payment_id"], "holds no payment ids"),
    ],
    ids=["empty", "comments", "csv-without-column", "utf16-no-bom", "csv-header-only"],
)
async def test_an_input_without_ids_exits_2_before_any_journal_or_request(
    served: tuple[SandboxGateway, str],
    tmp_path: Path,
    content: bytes,
    extra: list[str],
    expected: str,
) -> None:
    gw, url = served
    src = tmp_path / "ids.txt"
    src.write_bytes(content)
    journal = tmp_path / "journal.jsonl"
    run = await cli(*cancel_args(url, journal, "-i", str(src), *extra))
    assert run.rc == 2, run.out + run.err
    assert expected in run.err
    assert "every input id is cancelled" not in run.out
    assert not journal.exists()
    assert gw.requests_total == 0


async def test_an_empty_pipe_exits_2_and_leaves_no_journal(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    journal = tmp_path / "journal.jsonl"
    run = await cli(*cancel_args(url, journal), stdin=b"# nothing\n")
    assert run.rc == 2, run.out + run.err
    assert "holds no payment ids" in run.out + run.err
    assert not journal.exists()
    assert gw.requests_total == 0


async def test_comments_after_an_id_utf16_with_a_bom_and_a_csv_delimiter(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    plain = tmp_path / "ids.txt"
    plain.write_text("11  # customer asked\n12#no space\n")
    utf16 = tmp_path / "ids16.txt"
    utf16.write_bytes("13\r\n14\r\n".encode("utf-16"))  # with its byte-order mark
    semi = tmp_path / "export.csv"
    semi.write_text("order;payment_id\nA1;15\nA2;16\n")
    runs = [
        await cli(*cancel_args(url, tmp_path / "j1", "-i", str(plain))),
        await cli(*cancel_args(url, tmp_path / "j2", "-i", str(utf16))),
        await cli(
            *cancel_args(
                url,
                tmp_path / "j3",
                "-i",
                str(semi),
                "--csv-column",
                "payment_id",
                "--csv-delimiter",
                ";",
            )
        ),
    ]
    assert [r.rc for r in runs] == [0, 0, 0], [r.err for r in runs]
    assert set(read_journal(tmp_path / "j1")) == {11, 12}
    assert set(read_journal(tmp_path / "j2")) == {13, 14}
    assert set(read_journal(tmp_path / "j3")) == {15, 16}
    assert all(gw.ledger[pid].state == "cancelled" for pid in range(11, 17))

    # Without the delimiter, the error says which one the header seems to use.
    wrong = await cli(
        *cancel_args(url, tmp_path / "j4", "-i", str(semi), "--csv-column", "payment_id")
    )
    assert wrong.rc == 2
    assert "--csv-delimiter ';'" in wrong.err


async def test_output_paths_and_the_input_are_checked_before_the_journal_exists(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    src = write_ids(tmp_path / "ids.txt", [21, 22])
    journal = tmp_path / "journal.jsonl"
    summary = await cli(
        *cancel_args(url, journal, "-i", str(src), "--summary-json", str(tmp_path / "no/s.json"))
    )
    assert summary.rc == 2
    assert "--summary-json" in summary.err and "no such directory" in summary.err
    unsettled = await cli(
        *cancel_args(url, journal, "-i", str(src), "--unsettled-out", str(tmp_path))
    )
    assert unsettled.rc == 2
    assert "is a directory" in unsettled.err
    missing = await cli(*cancel_args(url, journal, "-i", str(tmp_path / "none.txt")))
    assert missing.rc == 2
    assert "cannot open input" in missing.err
    assert not journal.exists()
    assert gw.requests_total == 0


# -- 3. fail fast on a gateway that is plainly wrong -------------------------------------------


async def test_a_dead_port_with_2000_ids_stops_after_the_first_attempts(tmp_path: Path) -> None:
    sock = closed_port()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        src = write_ids(tmp_path / "ids.txt", range(1, 2001))
        journal = tmp_path / "journal.jsonl"
        summary = tmp_path / "summary.json"
        run = await cli(*cancel_args(url, journal, "-i", str(src), "--summary-json", str(summary)))
    finally:
        sock.close()
    assert run.rc == 2, run.out + run.err
    assert f"{url}/g2g/cancel" in run.err
    assert "ConnectError" in run.err
    assert run.err.count("first ConnectError:") == 1  # each class's first reason, once
    report = json.loads(summary.read_text())
    # Today: every id tried with every retry (8,000 attempts). Now: the first 20 attempts
    # trip the rule, the 20 ids in flight finish without further retries.
    assert report["sent"] <= 40
    assert report["attempts"] <= 80
    assert report["not_reached"] >= 1960
    assert report["states"]["cancelled"] == 0
    records = read_journal(journal)
    assert len(records) == report["sent"]
    assert all(not h[-1]["final"] for h in records.values())  # a rerun sends them again


async def test_an_html_200_server_is_stopped_within_200_requests(tmp_path: Path) -> None:
    server = Counted(200, b"<html><body>Welcome to nginx!</body></html>")
    async with serve(server.app()) as url:
        src = write_ids(tmp_path / "ids.txt", range(1, 2001))
        journal = tmp_path / "journal.jsonl"
        run = await cli(*cancel_args(url, journal, "-i", str(src)))
    assert run.rc == 2, run.out + run.err
    assert 20 <= server.requests <= 200  # today: 5,469 requests for 2,000 ids
    assert "MalformedReplyError" in run.err
    assert "Welcome to nginx" in run.err  # the first reason, with the body excerpt
    assert "stopped: the gateway looks wrong" in run.out
    records = read_journal(journal)
    assert records and all(h[-1]["state"] == "unknown" for h in records.values())


async def test_a_404_from_a_wrong_base_url_is_named(tmp_path: Path) -> None:
    server = Counted(404, b"Not Found", "text/plain")
    async with serve(server.app()) as url:
        src = write_ids(tmp_path / "ids.txt", range(1, 501))
        run = await cli(*cancel_args(url + "/g2g/cancel", tmp_path / "j", "-i", str(src)))
    assert run.rc == 2, run.out + run.err
    assert server.requests <= 60
    assert "without /g2g/cancel" in run.err


async def test_a_server_that_never_answers_shows_timeouts_and_stops(tmp_path: Path) -> None:
    release = asyncio.Event()
    seen = [0]

    async def hang(request: web.Request) -> web.Response:
        seen[0] += 1
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/g2g/cancel", hang)
    async with serve(app) as url:
        src = write_ids(tmp_path / "ids.txt", range(1, 201))
        try:
            run = await cli(
                *cancel_args(
                    url,
                    tmp_path / "j",
                    "-i",
                    str(src),
                    "--attempt-timeout",
                    "0.2",
                    "--progress",
                    "plain",
                    "--concurrency",
                    "10",
                )
            )
        finally:
            release.set()  # let the hanging handlers end before the server stops
    assert run.rc == 2, run.out + run.err
    assert "ResponseTimeoutError" in run.err
    progress = [line for line in run.err.splitlines() if line.startswith("cancel:")]
    assert progress and "timeouts" in progress[-1] and "attempts" in progress[-1]
    assert seen[0] <= 50  # 10 ids x 4 attempts would be 40 before any new id


async def test_fail_fast_can_be_switched_off(tmp_path: Path) -> None:
    sock = closed_port()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        src = write_ids(tmp_path / "ids.txt", range(1, 31))
        run = await cli(
            *cancel_args(
                url,
                tmp_path / "j",
                "-i",
                str(src),
                "--fail-fast-after",
                "0",
                "--attempts",
                "1",
            )
        )
    finally:
        sock.close()
    assert run.rc == 3  # every id tried, every one left to rerun
    assert "this run    30 ids" in run.out
