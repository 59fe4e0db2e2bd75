"""The command line never reports silent non-work: each way a run can do nothing (or
less than it says) ends in a clear message and a non-zero exit code.

Every end-to-end test runs ``python -m freedompay_async cancel`` as a subprocess
against a server on loopback (the sandbox, or a small aiohttp app that counts what it
receives) and checks what the server saw against what the CLI journaled and said.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import MERCHANT, SECRET, serve
from .test_cli import SETTLED, Run, cancel_args, cli, cli_env, read_journal, write_ids

# -- helpers ---------------------------------------------------------------------------------


class Counted:
    """A loopback server that answers every request the same way and counts them."""

    def __init__(self, status: int, body: bytes, content_type: str = "text/html") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.requests = 0

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.requests += 1
            await request.read()
            return web.Response(status=self.status, body=self.body, content_type=self.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


@pytest.fixture
async def other_gateway() -> AsyncIterator[tuple[SandboxGateway, str]]:
    """A second sandbox (same merchant and key) on another port."""
    gw = SandboxGateway(MERCHANT, SECRET)
    gw.add_payments(range(1, 2001))
    async with gw.serve() as url:
        yield gw, url


def closed_port() -> socket.socket:
    """A bound, never listening socket: connecting to its port is refused, and no other
    process can take the port while the test holds it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class Streaming:
    """A CLI subprocess whose stderr is read as it comes (to wait for a message)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.err_lines: list[str] = []
        self._reader = asyncio.create_task(self._read())
        self._out = asyncio.create_task(self._read_out())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.err_lines.append(line.decode())

    async def _read_out(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read()

    async def wait_err(self, text: str) -> None:
        async with asyncio.timeout(30):
            while not any(text in line for line in self.err_lines):
                assert self.proc.returncode is None, "".join(self.err_lines)
                await asyncio.sleep(0.02)

    async def finish(self) -> Run:
        async with asyncio.timeout(60):
            out = await self._out
            await self._reader
            rc = await self.proc.wait()
        return Run(rc, out.decode(), "".join(self.err_lines))


async def start_streaming(*args: str, preexec: object = None) -> Streaming:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "freedompay_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        preexec_fn=preexec,  # type: ignore[arg-type]
    )
    return Streaming(proc)


async def wait_requests(gw: SandboxGateway, count: int, run: Streaming) -> None:
    async with asyncio.timeout(30):
        while gw.requests_total < count:
            assert run.proc.returncode is None, "".join(run.err_lines)
            await asyncio.sleep(0.02)


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
            record = json.loads(line)
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
    run = await cli(*cancel_args(url, tmp_path / "j", "-i", str(src), "--unsettled-out", str(out)))
    assert run.rc == 3, run.out + run.err
    assert sorted(map(int, out.read_text().split())) == [5, 999_999]
    assert "to rerun    1 id not settled (1 unknown)" in run.out
    assert "1 id failed for good" in run.out
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
