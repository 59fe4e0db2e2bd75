"""``freedompay-async demo``: the batch cancel, end to end, against a faulty local sandbox.

The sandbox runs in the same event loop on loopback. Its fault plan hits a share of
requests with every kind of fault (connection resets before and after processing,
503, 429 with Retry-After, gateway error 9999, garbage bodies, slow and forged
replies). The cancels go through :func:`freedompay_async.cli.run_batch`, exactly
the code path of ``freedompay-async cancel``, journal included; ids left unsettled
(an unknown outcome after a forged reply, say) are retried by a rerun on the same
journal, as a user would. Finally the journal is checked against the sandbox ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from .._config import Credentials, GatewayURL
from .._layers.retry import RetryPolicy
from .._session.batch import OutcomeState
from ._exit import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_RERUN, PROG
from ._options import CancelJob, settle_policy
from ._records import decode_record
from ._report import BatchReport
from ._run import run_batch
from ._signals import Interrupt

__all__ = ["DEMO_RETRY", "DEMO_SETTLE", "check_journal", "run_demo"]

#: The first payment id the demo holds.
FIRST_ID = 700_000_001
#: Reruns on the same journal after the first pass, at most.
MAX_RERUNS = 3
#: Real retry logic, with waits scaled down so the demo takes seconds, not minutes.
#: A slow reply (2.5 s) outlasts the attempt timeout, so some attempts time out after
#: the sandbox has cancelled: the retry then learns "already cancelled". The timeout
#: leaves room for a busy machine: a loop held up for longer than it lets an intact
#: answer wait unread until the attempt times out, and the ledger check then counts
#: the retry as a cancel asked again after the outcome was told.
DEMO_RETRY = RetryPolicy(
    attempts=6, attempt_timeout=2.0, deadline=30.0, wait_initial=0.02, wait_max=0.5
)
SLOW_DELAY = 2.5
RETRY_AFTER = 1
#: The settle window for the in-process sandbox: its status answers at once (cancels
#: show no lag), so a few seconds of watching settle any open outcome; the gateway's
#: 60 s would only make a rare unsettled id wait longer.
DEMO_SETTLE = settle_policy(window=5.0, poll=0.2)


def _read_journal(path: Path) -> tuple[dict[int, list[dict[str, Any]]], int]:
    """Every record by payment id, and the number of lines that did not parse."""
    records: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    bad = 0
    with path.open("rb") as stream:
        for line in stream:
            try:
                record = decode_record(json.loads(line))
                if "journal" in record and "payment_id" not in record:
                    continue  # the header line
                records[int(record["payment_id"])].append(record)
            except (ValueError, KeyError, TypeError):
                bad += 1
    return records, bad


def check_journal(journal: Path, ids: range, ledger: Any) -> list[tuple[bool, str]]:
    """Compare the journal with the sandbox ledger; a list of (passed, description)."""
    records, bad = _read_journal(journal)
    n = len(ids)
    not_one_final = held_but_settled = cancelled_not_settled = doubled = revoke_mismatch = 0
    asked_again = 0
    for pid in ids:
        history = records.get(pid, [])
        finals = sum(1 for record in history if record.get("final") is True)
        if finals != 1 or not history[-1].get("final"):
            not_one_final += 1
        entry = ledger[pid]
        doubled += entry.cancellations > 1
        asked_again += entry.cancels_after_told
        settled = bool(history) and history[-1].get("state") in OutcomeState.settled_values()
        if entry.state == "cancelled" and not settled:
            cancelled_not_settled += 1
        if entry.state != "cancelled" and settled:
            held_but_settled += 1
        revoke_id = history[-1].get("revoke_id") if history else None
        if revoke_id is not None and revoke_id != entry.revoke_id:
            revoke_mismatch += 1
    strangers = sum(1 for pid in records if pid not in ids)
    cancelled = sum(1 for pid in ids if ledger[pid].state == "cancelled")
    return [
        (bad == 0, f"every journal line parses ({sum(map(len, records.values()))} records)"),
        (
            not_one_final == 0 and strangers == 0,
            f"every one of the {n} ids has exactly one final outcome, its last record"
            + (f" ({not_one_final} do not)" if not_one_final else "")
            + (f" ({strangers} unexpected ids)" if strangers else ""),
        ),
        (
            doubled == 0 and cancelled == n,
            f"ledger: {cancelled} of {n} payments cancelled, none more than once"
            + (f" ({doubled} cancelled twice!)" if doubled else ""),
        ),
        (
            asked_again == 0,
            "no cancel re-sent after an intact answer had told the outcome"
            + (f" ({asked_again} were)" if asked_again else ""),
        ),
        (
            held_but_settled == 0 and cancelled_not_settled == 0 and revoke_mismatch == 0,
            "journal and ledger agree on every id (state and revoke id)"
            + (
                f" (journal says settled, ledger says held: {held_but_settled}; "
                f"ledger cancelled, journal not: {cancelled_not_settled}; "
                f"revoke ids differ: {revoke_mismatch})"
                if held_but_settled or cancelled_not_settled or revoke_mismatch
                else ""
            ),
        ),
    ]


@contextlib.contextmanager
def _workdir(keep: str | None) -> Iterator[Path]:
    if keep is not None:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="freedompay-demo-") as tmp:
        yield Path(tmp)


async def run_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the demo the parsed ``demo`` options describe; returns the exit status."""
    interrupt = Interrupt(err)
    interrupt.install()
    try:
        with _workdir(args.keep) as workdir:
            return await _demo(args, workdir, interrupt, out, err)
    except asyncio.CancelledError:
        interrupt.swallow()
        print(f"{PROG} demo: interrupted", file=err)
        return EXIT_INTERRUPTED
    finally:
        interrupt.uninstall()


def _gateway(args: argparse.Namespace, ids: range) -> Any:
    from ..sandbox import FaultPlan, SandboxGateway

    plan = FaultPlan(
        rate=args.fault_rate,
        kinds=FaultPlan.DEFAULT_KINDS,
        seed=args.seed,
        slow_delay=SLOW_DELAY,
        retry_after=RETRY_AFTER,
    )
    gateway = SandboxGateway(faults=plan)
    gateway.add_payments(ids)
    return gateway


def _intro(args: argparse.Namespace, n: int, url: str, journal: Path) -> list[str]:
    from ..sandbox import FaultPlan

    return [
        f"{PROG} demo: {n} held payments in a sandbox gateway at {url}",
        f"  faults:  {args.fault_rate:.0%} of requests, drawn from "
        f"{', '.join(kind.value for kind in FaultPlan.DEFAULT_KINDS)} (seed {args.seed})",
        f"  retry:   {DEMO_RETRY.attempts} attempts, {DEMO_RETRY.attempt_timeout} s per "
        f"attempt, {DEMO_RETRY.deadline:g} s deadline, full-jitter backoff up to "
        f"{DEMO_RETRY.wait_max} s, Retry-After honoured",
        f"  settle:  an open outcome is settled by status within {DEMO_SETTLE.window:g} s",
        f"  journal: {journal}",
    ]


async def _passes(
    job: CancelJob,
    url: str,
    interrupt: Interrupt,
    say: Callable[[str], None],
    streams: tuple[TextIO, TextIO],
) -> list[BatchReport]:
    """The first pass and up to MAX_RERUNS reruns on the same journal, as a user would
    (``streams``: the demo's stdout and stderr)."""
    out, err = streams
    reports: list[BatchReport] = []
    journal = Path(job.journal or "")
    for run in range(1 + MAX_RERUNS):
        say("")
        if run == 0:
            say(
                f"$ {PROG} cancel --base-url {url} --input {Path(job.input_path or '').name} "
                f"--journal {journal.name} --concurrency {job.concurrency}"
            )
        else:
            left = reports[-1].states()
            settled = OutcomeState.settled_values()
            unsettled = sum(c for s, c in left.items() if s not in settled)
            unsettled += reports[-1].not_reached
            say(f"# {unsettled} ids not settled: rerun with the same journal")
            say(f"$ {PROG} cancel ... --journal {journal.name}   (rerun {run})")
        report = await run_batch(job, interrupt=interrupt, err=err, out=out)
        reports.append(report)
        # No "exit code" line mid-demo: a first pass that leaves ids to rerun is
        # expected here, and the demo's own verdict comes at the end.
        say(report.render(exit_line=False))
        if report.interrupted or report.exit_code != EXIT_RERUN:
            break
    return reports


async def _demo(
    args: argparse.Namespace, workdir: Path, interrupt: Interrupt, out: TextIO, err: TextIO
) -> int:
    n: int = args.n
    ids = range(FIRST_ID, FIRST_ID + n)
    gateway = _gateway(args, ids)
    ids_file = workdir / "payment-ids.txt"
    ids_file.write_text("".join(f"{pid}\n" for pid in ids), encoding="ascii")
    journal = workdir / "journal.jsonl"
    journal.unlink(missing_ok=True)

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    async with gateway.serve() as url:
        for line in _intro(args, n, url, journal):
            say(line)
        job = CancelJob(
            credentials=Credentials(gateway.merchant_id, gateway.secret_key),
            base_url=GatewayURL(url),
            journal=journal,
            input_path=str(ids_file),
            concurrency=args.concurrency,
            retry=DEMO_RETRY,
            settle=DEMO_SETTLE,
            progress=args.progress,
            summary_json=workdir / "summary.json",
        )
        start = time.monotonic()
        reports = await _passes(job, url, interrupt, say, (out, err))
        if reports[-1].interrupted:
            return EXIT_INTERRUPTED
        wall = time.monotonic() - start
        requests = gateway.requests_total
        sent = sum(report.sent for report in reports)
        say()
        say(
            f"throughput: {n} ids in {wall:.2f} s over {len(reports)} run(s): "
            f"{n / wall:.0f} ids/s, {requests / wall:.0f} HTTP requests/s "
            f"({requests} requests for {sent} cancels)"
        )
        say("check against the sandbox ledger:")
        results = check_journal(journal, ids, gateway.ledger)
        for passed, text in results:
            say(f"  {'ok  ' if passed else 'FAIL'} {text}")
    if all(passed for passed, _ in results) and reports[-1].exit_code == EXIT_OK:
        say("demo passed")
        return EXIT_OK
    say("demo FAILED")
    return EXIT_INCOMPLETE
