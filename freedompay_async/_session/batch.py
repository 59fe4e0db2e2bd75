"""cancel_many: bounded-concurrency cancels that yield exactly one outcome per input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

from .._exceptions import (
    ConfigurationError,
    FreedomPayError,
    InternalError,
    SessionClosedError,
)
from .._layers.slots import Slots
from .._layers.spacing import PARKING
from .._operations.cancel import CancelRequest, CancelResult, RevokeStatus
from .._operations.values import MAX_PAYMENT_ID
from .._settling.loop import Settled
from .._settling.rules import ambiguous
from .outcome import CancelOutcome, OutcomeState

__all__ = ["CancelBatch", "CancelOutcome", "OutcomeState", "run_cancel_many"]

Items = Iterable[CancelRequest | int | str] | AsyncIterable[CancelRequest | int | str]
CancelCall = Callable[[CancelRequest | int], Awaitable[CancelResult]]
SettleCall = Callable[
    [CancelRequest, CancelResult | FreedomPayError], Awaitable[Settled[CancelResult]]
]
_END: Any = object()
#: Worker tasks per concurrency slot: the extra ones run while others wait for spacing.
_WORKERS_PER_SLOT = 2


class _Slot:
    """One worker's hold on a slot of the pool, lent to the spacing layer as its
    Parking; release and acquire are idempotent."""

    __slots__ = ("_held", "_pool")

    def __init__(self, pool: Slots) -> None:
        self._pool = pool
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        """Take a slot back after a wait (served before idle workers)."""
        if not self._held:
            await self._pool.take(first=True)
            self._held = True

    async def start(self) -> None:
        """Take a slot to start an item."""
        if not self._held:
            await self._pool.take()
            self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._pool.give()


class _Source:
    """The input, read lazily by every worker: a plain iterable with :meth:`next` (no
    coroutine per item), an async one with :meth:`anext` under a lock."""

    def __init__(self, items: Items) -> None:
        self.sync = not isinstance(items, AsyncIterable)
        self._iterator: Any = iter(items) if self.sync else aiter(items)  # type: ignore[arg-type]
        self._lock = asyncio.Lock()

    def next(self) -> Any:
        """The next item of a plain iterable, or ``_END``."""
        return next(self._iterator, _END)

    async def anext(self) -> Any:
        """The next item of an async iterable, or ``_END``."""
        async with self._lock:
            return await anext(self._iterator, _END)


class CancelBatch:
    """The worker pool behind ``AsyncSession.cancel_many`` (see :func:`run_cancel_many`).

    ``concurrency`` slots bound the cancels in flight. A worker whose request waits for
    its payment's spacing slot gives its slot up meanwhile (see PARKING), so a second
    set of workers keeps other payments moving: waiting is not work. Workers back from
    a spacing wait take the first line: a parked request never starves behind new
    items, and a worker keeps its slot from item to item.
    """

    def __init__(
        self,
        cancel: CancelCall,
        items: Items,
        *,
        concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        settle: SettleCall | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError("concurrency must be an integer >= 1")
        self._cancel = cancel
        self._source = _Source(items)
        self._concurrency = concurrency
        self._clock = clock
        self._settle = settle
        self._outcomes: asyncio.Queue[CancelOutcome | None] = asyncio.Queue(maxsize=concurrency)
        self._stop: list[BaseException] = []  # the first error that ends the batch
        self._pool = Slots(concurrency)

    async def run(self) -> AsyncGenerator[CancelOutcome, None]:
        """Yield every outcome as it comes; then raise what ended the batch, if anything."""
        total = self._concurrency * _WORKERS_PER_SLOT
        workers = [asyncio.create_task(self._worker()) for _ in range(total)]
        outcomes = self._outcomes
        try:
            running = total
            while running:
                got = outcomes.get_nowait() if not outcomes.empty() else await outcomes.get()
                if got is None:
                    running -= 1
                else:
                    yield got
            if self._stop:
                raise self._stop[0]
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        # A worker keeps its slot from one item to the next: it gives it up only while
        # parked, so the extra workers run only while others wait for spacing.
        pool, stop, outcomes, source = self._pool, self._stop, self._outcomes, self._source
        slot = _Slot(pool)
        PARKING.set(slot)
        while not stop:
            if pool.first_waiting:  # a worker back from a spacing wait goes first
                slot.release()
            if not slot.held:
                await slot.start()
                if stop:
                    break
            try:
                item = source.next() if source.sync else await source.anext()
            except Exception as exc:  # the input failed: finish what was started, then raise
                stop.append(exc)
                break
            if item is _END:
                break
            outcome = await self._one(item)
            if outcomes.full():
                await outcomes.put(outcome)
            else:
                outcomes.put_nowait(outcome)
        slot.release()
        await outcomes.put(None)

    async def _one(self, item: object) -> CancelOutcome:
        clock = self._clock
        start = clock()
        request: CancelRequest | int
        if type(item) is int and 0 < item < MAX_PAYMENT_ID:
            request = pid = item  # a plain id needs no request value (CancelRequest(item))
        else:
            try:
                request = CancelRequest.of(item)  # type: ignore[arg-type]
            except FreedomPayError as exc:
                return CancelOutcome.from_error(item, None, exc, clock() - start)
            pid = request.payment_id
        try:
            result = await self._cancel(request)
        except FreedomPayError as exc:
            if isinstance(exc, SessionClosedError):
                self._stop.append(exc)
            elif self._settle is not None and ambiguous(exc):
                return await self._reconcile(item, CancelRequest.of(request), exc, start)
            return CancelOutcome.from_error(item, pid, exc, clock() - start)
        except Exception as exc:  # a bug must not lose an outcome: the cancel may have gone out
            return self._internal(item, pid, exc, start, "during cancel")
        open_ = result.revoke_status is not RevokeStatus.SUCCESS and ambiguous(result)
        if open_ and self._settle is not None:
            return await self._reconcile(item, CancelRequest.of(request), result, start)
        return CancelOutcome.from_result(item, result, clock() - start)

    async def _reconcile(
        self,
        item: object,
        request: CancelRequest,
        first: CancelResult | FreedomPayError,
        start: float,
    ) -> CancelOutcome:
        assert self._settle is not None
        pid = request.payment_id
        elapsed = self._clock
        try:
            settled = await self._settle(request, first)
        except FreedomPayError as exc:  # e.g. the session closed meanwhile
            if isinstance(exc, SessionClosedError):
                self._stop.append(exc)
            if isinstance(first, FreedomPayError):
                return CancelOutcome.from_error(item, pid, first, elapsed() - start)
            return CancelOutcome.from_result(item, first, elapsed() - start)
        except Exception as exc:  # a bug must not lose an outcome
            return self._internal(item, pid, exc, start, "while reconciling")
        try:
            return CancelOutcome.from_reconciled(item, pid, settled, elapsed() - start)
        except Exception as exc:  # classifying too: a dead worker would hang the batch
            return self._internal(item, pid, exc, start, "while reconciling")

    def _internal(
        self, item: object, pid: int, exc: Exception, start: float, where: str
    ) -> CancelOutcome:
        error = InternalError(f"unexpected {type(exc).__name__} {where}")
        error.__cause__ = exc
        return CancelOutcome.from_error(item, pid, error, self._clock() - start)


def run_cancel_many(
    cancel: CancelCall,
    items: Items,
    *,
    concurrency: int,
    clock: Callable[[], float] = time.monotonic,
    settle: SettleCall | None = None,
) -> AsyncGenerator[CancelOutcome, None]:
    """Worker pool behind ``AsyncSession.cancel_many``.

    ``concurrency`` workers pull items lazily from one shared iterator and push
    outcomes into a queue of the same size, so neither the input nor the output is ever
    buffered beyond ``concurrency`` items. If the input raises, or the session is
    closed under the batch, no more items are pulled, the outcomes of items already
    started are still yielded, and then the error is raised. The workers are cancelled
    and awaited when the consumer stops or is cancelled.

    With ``settle`` an ambiguous cancel (see ``ambiguous``) is passed to it with its
    result or error, and the outcome is what it finds (``CancelOutcome.from_reconciled``).
    ``concurrency`` is checked here, before anything starts (ConfigurationError).
    """
    return CancelBatch(cancel, items, concurrency=concurrency, clock=clock, settle=settle).run()
