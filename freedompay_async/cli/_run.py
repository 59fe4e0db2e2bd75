"""``run_batch``: one batch job run to its end (see :class:`~._runner.BatchRun`)."""

from __future__ import annotations

from typing import TextIO

from ._options import BatchJob
from ._report import BatchReport
from ._runner import BatchRun
from ._signals import Interrupt

__all__ = ["run_batch"]


async def run_batch(
    job: BatchJob,
    *,
    interrupt: Interrupt,
    err: TextIO,
    out: TextIO,
    label: str | None = None,
) -> BatchReport:
    """Run one batch job to completion, interruption or abort; never raises for a
    per-id failure. Raises :class:`UsageError` for an unwritable output path,
    :class:`InputError` for unusable input (no id at all included) and
    :class:`JournalError` if the journal cannot be used (another gateway's, the input,
    not a journal of this tool, in use). ``out`` receives what the operation prints per
    id (``status``: its JSON lines; ``--dry-run``: the ids it would send).
    """
    return await BatchRun(job, interrupt=interrupt, err=err, out=out, label=label).run()
