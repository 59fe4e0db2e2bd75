"""cancel_many: bounded-concurrency cancels that yield exactly one outcome per input."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

import attrs

from .._exceptions import (
    AlreadyCancelledError,
    ConfigurationError,
    FreedomPayError,
    GatewayError,
    InternalError,
    NotDoneError,
    SessionClosedError,
    ValidationError,
)
from .._layers.slots import Slots
from .._layers.spacing import PARKING
from .._operations.cancel import (
    CancelRequest,
    CancelResult,
    RevokeStatus,
)
from .._operations.values import MAX_PAYMENT_ID
from .._settling.loop import Settled, SettledBy
from .._settling.rules import ambiguous

__all__ = ["CancelOutcome", "OutcomeState", "run_cancel_many"]


class OutcomeState(enum.Enum):
    """What became of one payment in a batch."""

    #: The gateway cancelled it now (revoke status success), possibly confirmed on a retry.
    CANCELLED = "cancelled"
    #: The gateway says (signed) it was cancelled before this call.
    ALREADY_CANCELLED = "already_cancelled"
    #: The gateway accepted the cancel and is still processing it.
    PENDING = "pending"
    #: Definitely not cancelled by this call: see ``error`` (or the revoke status).
    FAILED = "failed"
    #: The gateway may or may not have acted (timeout, lost connection, untrusted reply).
    UNKNOWN = "unknown"

    @property
    def settled(self) -> bool:
        """Whether the hold is known to be released: CANCELLED or ALREADY_CANCELLED.

        The one definition of "settled" that the journal, the command line and the
        demo share.
        """
        return self in _SETTLED

    @classmethod
    def settled_values(cls) -> frozenset[str]:
        """The ``value`` strings of the settled states (as a journal records them)."""
        return _SETTLED_VALUES


_SETTLED = frozenset({OutcomeState.CANCELLED, OutcomeState.ALREADY_CANCELLED})
_SETTLED_VALUES = frozenset(state.value for state in _SETTLED)


@attrs.frozen
class CancelOutcome:
    """The outcome of one input of :meth:`AsyncSession.cancel_many`.

    ``payment_id`` is None only when the input was not a valid payment id (``item``
    keeps the input). ``elapsed`` is seconds from the start of this item's cancel.
    ``settled_by`` says how the outcome was learnt: ``"reply"`` (the cancel's own
    answer), ``"retry"`` (a retry answered "already cancelled" after an ambiguous
    attempt), ``"status"`` (status_v2 showed it revoked, not found or no longer held),
    ``"resent"`` (status showed it held and a second cancel's answer decided); None
    when it is UNKNOWN or the input was invalid.
    """

    item: object
    payment_id: int | None
    state: OutcomeState
    attempts: int
    elapsed: float
    result: CancelResult | None = None
    error: FreedomPayError | None = None
    settled_by: str | None = None

    @property
    def final(self) -> bool:
        """Whether trying again could not change anything (a rerun may skip this id).

        CANCELLED and ALREADY_CANCELLED are final. FAILED is final only when the input
        is invalid, status showed the hold gone another way (:class:`NotDoneError`), or
        the gateway refused in a signed reply *bound* to the payment (naming it, or
        confirmed by status) with a code that is not transient. UNKNOWN, PENDING,
        transient, unsigned or unbound refusals, a revoke status ``error`` and failures
        of the client or its configuration are not.
        """
        if self.state is OutcomeState.FAILED:
            error = self.error
            if isinstance(error, ValidationError | NotDoneError):
                return True
            return (
                isinstance(error, GatewayError)
                and error.signed
                and error.bound
                and not error.retryable
            )
        return self.state.settled

    @classmethod
    def from_result(cls, item: object, result: CancelResult, elapsed: float) -> CancelOutcome:
        """Classify an accepted cancel by its revoke status.

        A revoke status ``error`` is FAILED, unless an earlier attempt of the call may
        have been acted on: then the payment may be cancelled after all (UNKNOWN).
        """
        state = _STATE_BY_REVOKE.get(result.revoke_status, OutcomeState.UNKNOWN)
        if state is OutcomeState.FAILED and result.earlier_maybe_processed:
            state = OutcomeState.UNKNOWN
        by = None
        if state is not OutcomeState.UNKNOWN:
            by = SettledBy.RETRY if result.confirmed_on_retry else SettledBy.REPLY
            if result.confirmed_by_status:
                by = SettledBy.STATUS
        return cls(
            item,
            result.payment_id,
            state,
            result.attempts,
            elapsed,
            result=result,
            settled_by=by.value if by is not None else None,
        )

    @classmethod
    def from_error(
        cls, item: object, payment_id: int | None, error: FreedomPayError, elapsed: float
    ) -> CancelOutcome:
        """Classify a failed call: unknown whenever the gateway may have acted."""
        if isinstance(error, AlreadyCancelledError):
            # Only a signed "already cancelled" bound to the payment is believed: an
            # unsigned one could be forged, an unbound one replayed from another payment.
            bound = error.signed and error.bound
            state = OutcomeState.ALREADY_CANCELLED if bound else OutcomeState.UNKNOWN
        elif error.outcome_unknown:
            state = OutcomeState.UNKNOWN
        else:
            state = OutcomeState.FAILED
        # Only the gateway's own answer settles an id; a client-side failure (no
        # connection, a closed session) says nothing about the payment.
        answer = isinstance(error, GatewayError | NotDoneError)
        settled = state is not OutcomeState.UNKNOWN and answer
        by = SettledBy.REPLY.value if settled else None
        return cls(item, payment_id, state, error.attempts, elapsed, error=error, settled_by=by)

    @classmethod
    def from_reconciled(
        cls, item: object, payment_id: int, settled: Settled[CancelResult], elapsed: float
    ) -> CancelOutcome:
        """Classify what settling an ambiguous cancel found (see ``settle``)."""
        if settled.result is not None:
            outcome = cls.from_result(item, settled.result, elapsed)
        elif settled.error is not None:
            outcome = cls.from_error(item, payment_id, settled.error, elapsed)
        else:  # neither: a bug in settling; the cancel may have gone out
            error = InternalError("settling found neither a result nor an error")
            error.payment_id = payment_id
            error.attempts = settled.attempts
            return cls.from_error(item, payment_id, error, elapsed)
        by = settled.settled_by
        if outcome.state is OutcomeState.UNKNOWN or by is None:
            by_value = outcome.settled_by if outcome.state is not OutcomeState.UNKNOWN else None
        else:
            by_value = by.value
        return attrs.evolve(outcome, attempts=settled.attempts, settled_by=by_value)


_STATE_BY_REVOKE = {
    RevokeStatus.SUCCESS: OutcomeState.CANCELLED,
    RevokeStatus.PENDING: OutcomeState.PENDING,
    RevokeStatus.ERROR: OutcomeState.FAILED,
}
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


async def run_cancel_many(
    cancel: Callable[[CancelRequest | int], Awaitable[CancelResult]],
    items: Iterable[CancelRequest | int | str] | AsyncIterable[CancelRequest | int | str],
    *,
    concurrency: int,
    clock: Callable[[], float] = time.monotonic,
    settle: Callable[
        [CancelRequest, CancelResult | FreedomPayError], Awaitable[Settled[CancelResult]]
    ]
    | None = None,
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
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError("concurrency must be an integer >= 1")
    iterator: Any = None  # a plain iterable is read with next(), no coroutine per item
    pull: Callable[[], Awaitable[Any]] | None = None
    if isinstance(items, AsyncIterable):
        source = aiter(items)
        lock = asyncio.Lock()

        async def pull_async() -> Any:
            async with lock:
                return await anext(source, _END)

        pull = pull_async
    else:
        iterator = iter(items)

    outcomes: asyncio.Queue[CancelOutcome | None] = asyncio.Queue(maxsize=concurrency)
    stop: list[BaseException] = []  # the first error that ends the batch

    async def one(item: object) -> CancelOutcome:
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
            result = await cancel(request)
        except FreedomPayError as exc:
            if isinstance(exc, SessionClosedError):
                stop.append(exc)
            elif settle is not None and ambiguous(exc):
                return await reconcile(item, CancelRequest.of(request), exc, start)
            return CancelOutcome.from_error(item, pid, exc, clock() - start)
        except Exception as exc:  # a bug must not lose an outcome: the cancel may have gone out
            error = InternalError(f"unexpected {type(exc).__name__} during cancel")
            error.__cause__ = exc
            return CancelOutcome.from_error(item, pid, error, clock() - start)
        if settle is not None and ambiguous(result):
            return await reconcile(item, CancelRequest.of(request), result, start)
        return CancelOutcome.from_result(item, result, clock() - start)

    async def reconcile(
        item: object, request: CancelRequest, first: CancelResult | FreedomPayError, start: float
    ) -> CancelOutcome:
        assert settle is not None
        pid = request.payment_id
        try:
            settled = await settle(request, first)
        except FreedomPayError as exc:  # e.g. the session closed meanwhile
            if isinstance(exc, SessionClosedError):
                stop.append(exc)
            if isinstance(first, FreedomPayError):
                return CancelOutcome.from_error(item, pid, first, clock() - start)
            return CancelOutcome.from_result(item, first, clock() - start)
        except Exception as exc:  # a bug must not lose an outcome
            return internal(item, pid, exc, start)
        try:
            return CancelOutcome.from_reconciled(item, pid, settled, clock() - start)
        except Exception as exc:  # classifying too: a dead worker would hang the batch
            return internal(item, pid, exc, start)

    def internal(item: object, pid: int, exc: Exception, start: float) -> CancelOutcome:
        error = InternalError(f"unexpected {type(exc).__name__} while reconciling")
        error.__cause__ = exc
        return CancelOutcome.from_error(item, pid, error, clock() - start)

    # ``concurrency`` slots bound the cancels in flight. A worker whose request waits
    # for its payment's spacing slot gives its slot up meanwhile (see PARKING), so a
    # second set of workers can keep other payments moving: waiting is not work.
    # Workers back from a spacing wait take the first line: a parked request never
    # starves behind new items, and a worker keeps its slot from item to item.
    pool = Slots(concurrency)

    async def worker() -> None:
        # A worker keeps its slot from one item to the next: it gives it up only while
        # parked, so the extra workers run only while others wait for spacing.
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
                item = next(iterator, _END) if pull is None else await pull()
            except Exception as exc:  # the input failed: finish what was started, then raise
                stop.append(exc)
                break
            if item is _END:
                break
            outcome = await one(item)
            if outcomes.full():
                await outcomes.put(outcome)
            else:
                outcomes.put_nowait(outcome)
        slot.release()
        await outcomes.put(None)

    total = concurrency * _WORKERS_PER_SLOT
    workers = [asyncio.create_task(worker()) for _ in range(total)]
    try:
        running = total
        while running:
            got = outcomes.get_nowait() if not outcomes.empty() else await outcomes.get()
            if got is None:
                running -= 1
            else:
                yield got
        if stop:
            raise stop[0]
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
