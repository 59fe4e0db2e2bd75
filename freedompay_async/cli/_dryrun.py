"""``--dry-run``: what a run would send, and whether the gateway takes the credentials.

The input and the journal are read as for a real run (the journal without a lock and
without changing it), what would be sent is printed on stdout, one line per id or row
(as the operation plans it), and one signed status query about one of the payments
checks the credentials. No cancel, clearing or refund is sent.

The runner (:class:`~._runner.BatchRun`) calls :func:`dry_run` in place of sending; what
the dry run reads of it is :class:`RunToPlan`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TextIO

from .._exceptions import FreedomPayError, GatewayError
from .._layers.retry import RetryPolicy
from .._session.session import AsyncSession
from ._exit import EXIT_USAGE
from ._flow import Gate
from ._journal import JournalState
from ._operation import BatchOperation
from ._options import BatchJob
from ._report import BatchReport
from ._source import Input
from ._text import describe
from ._watch import REFUSED, credential_refusal

__all__ = ["RunToPlan", "check_credentials", "dry_run"]


class RunToPlan(Protocol):
    """What a dry run reads of a run that has opened its input and journal."""

    @property
    def job(self) -> BatchJob: ...
    @property
    def input(self) -> Input | None: ...
    @property
    def state(self) -> JournalState: ...
    @property
    def gate(self) -> Gate: ...
    @property
    def out(self) -> TextIO: ...
    @property
    def operation(self) -> BatchOperation: ...
    @property
    def report(self) -> BatchReport: ...


async def _each(ids: Iterator[int] | AsyncIterator[int]) -> AsyncIterator[int]:
    if isinstance(ids, Iterator):
        for pid in ids:
            yield pid
    else:
        async for pid in ids:
            yield pid


async def dry_run(run: RunToPlan) -> None:
    """Plan ``run`` without sending: the ids on stdout, the credentials checked."""
    assert run.input is not None
    report = run.report
    report.dry_run = True
    run.input.prepare(run.state)
    first: int | None = None
    async for item in _each(run.input.ids(run.gate)):
        run.gate.done(item)
        run.out.write(run.operation.plan(item) + "\n")
        report.planned += 1
        first = run.input.payment_of(item) if first is None else first
    run.out.flush()
    probe = first if first is not None else run.input.any_id()
    if probe is None:
        return  # no id at all: the run's own check says so
    verdict, accepted = await check_credentials(run.job, probe)
    report.credentials = verdict
    if not accepted:
        report.aborted = verdict
        report.abort_code = EXIT_USAGE


async def check_credentials(job: BatchJob, payment_id: int) -> tuple[str, bool]:
    """Ask the status of ``payment_id`` once: what the answer says of the credentials,
    and whether they were accepted (any gateway answer but a refusal of them)."""
    session = AsyncSession(
        job.credentials,
        base_url=job.base_url,
        retry=RetryPolicy.none(attempt_timeout=job.retry.attempt_timeout),
        spacing=None,
        api=job.api,
    )
    async with session as fp:
        try:
            result = await fp.status(payment_id)
        except FreedomPayError as exc:
            code = credential_refusal(exc)
            if code is not None:
                name = type(exc).__name__
                check = "check the merchant id and secret key"
                return f"{REFUSED} ({name}, code {code}): {check}", False
            if isinstance(exc, GatewayError):
                answer = f"the gateway answered for payment {payment_id}: {describe(exc)}"
                return f"accepted ({answer})", True
            return f"not checked: the gateway did not answer: {describe(exc)}", False
    return f"accepted (payment {payment_id} is {result.state.value})", True
