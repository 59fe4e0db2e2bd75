"""Clearings and refunds: each payment's movements one at a time, each settled by status.

A money movement is judged by what status shows before and after it (a refund against
its baseline), so the session holds the payment (:mod:`.._settling.guard`: a lock in
one process, a coordinator's lease across a fleet) from the baseline read through the
send to the settling. Under a lease the holder also:

- leaves a **note** naming the movement (its operation and amount, and a refund's
  baseline) before it sends it, and removes it once the outcome is known; a worker
  that takes the lease over and finds a note for the same movement (a redelivered
  job, a retry on another pod) resumes it: status is watched a whole settle window
  before anything is sent again, against the baseline in the note;
- checks that the lease is still its own before every send and before it returns any
  outcome, so a worker whose lease expired finds out before it confirms anything
  (:class:`~freedompay_async.LeaseLostError`, outcome unknown once it sent);
- leaves a note of the refunds it knows happened (``refunds:recent``: refund id,
  amount and when, kept one settle window), because status lags a refund by seconds:
  the next holder, maybe another worker, completes its baseline with them, so that an
  earlier refund showing up in status late is never taken for its own (the fleet-wide
  form of the session's own memory, :mod:`.._settling.memory`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from .._exceptions import (
    CoordinationError,
    FreedomPayError,
    MalformedReplyError,
    ValidationError,
)
from .._operations.definitions import Operation, Req, Res
from .._operations.families import OperationSet
from .._operations.money import (
    ClearRequest,
    ClearResult,
    RefundBaseline,
    RefundRequest,
    RefundResult,
    RefundStatus,
    full_refund_request,
)
from .._operations.receipts import ReceiptPosition
from .._operations.status import StatusRequest, StatusResult
from .._settling.guard import Held, MoneyGuard
from .._settling.loop import settle
from .._settling.memory import RecentRefunds
from .._settling.policy import SettlePolicy
from .._settling.rules import CLEAR_RULE, RefundRule, Rule, ambiguous

__all__ = ["RECENT_REFUNDS_NOTE", "MoneyPath", "clearing_note", "refund_note"]

logger = logging.getLogger(__name__)

#: The note of the refunds a holder knows happened: ``[[refund id, amount, unix time]]``.
RECENT_REFUNDS_NOTE = "refunds:recent"

Call = Callable[[Operation[Any, Any], Any], Awaitable[Any]]
StatusCall = Callable[[StatusRequest], Awaitable[StatusResult]]


def _amount(amount: Decimal) -> str:
    """One spelling per amount (``100``, ``100.0`` and ``1E+2`` are ``100.00``), so a
    redelivered job finds the note its first try left however it writes the amount."""
    cents = amount.quantize(_CENT) if amount == amount.quantize(_CENT) else None
    return f"{cents:.2f}" if cents is not None else format(amount.normalize(), "f")


_CENT = Decimal("0.01")


def clearing_note(request: ClearRequest) -> str:
    """The note naming a clearing: ``clearing:<amount>`` (``all`` for the whole)."""
    return f"clearing:{'all' if request.amount is None else _amount(request.amount)}"


def refund_note(request: RefundRequest) -> str:
    """The note naming a refund: ``refund:<amount>:<currency>``."""
    return f"refund:{_amount(request.amount)}:{request.currency or ''}"


#: Results the gateway itself calls unfinished: the movement may still happen.
_OPEN_RESULTS = (RefundStatus.PENDING, RefundStatus.UNKNOWN)


def _known(outcome: object) -> bool:
    """Whether an outcome is settled: a result the gateway calls finished, or an error
    whose outcome is known. A refund answered pending is not: its note stays, so that
    the job, redelivered because it is not done, settles it instead of sending again."""
    if isinstance(outcome, RefundResult):
        return outcome.refund_status not in _OPEN_RESULTS
    return not (isinstance(outcome, FreedomPayError) and outcome.outcome_unknown)


def _described(outcome: object) -> str:
    if isinstance(outcome, FreedomPayError):
        return f"{type(outcome).__name__}: {outcome}"
    confirmed = getattr(outcome, "confirmed_by_status", False)
    return f"{type(outcome).__name__} (confirmed_by_status={confirmed})"


class _Movement:
    """One clearing or refund under a held payment."""

    __slots__ = ("held", "name", "resume", "sent")

    def __init__(self, held: Held, name: str, resume: bool) -> None:
        self.held = held
        self.name = name
        #: An earlier call or holder may have sent it: nothing goes out before status
        #: was watched a whole window.
        self.resume = resume
        self.sent = False

    def may_have_acted(self, error: CoordinationError) -> None:
        """Mark ``error``'s outcome unknown when something may have been sent."""
        if self.sent or self.resume:
            error.earlier_maybe_processed = True

    async def settled(self, outcome: object) -> None:
        """Before ``outcome`` is returned: still held? Then drop the note if it is
        known (an unknown outcome keeps it for whoever tries the movement again)."""
        try:
            await self.held.check()
        except CoordinationError as exc:
            exc.add_note(f"this worker would have reported {_described(outcome)}")
            raise
        if _known(outcome):
            await self.held.drop(self.name)


class MoneyPath:
    """The session's clearings and refunds under ``guard`` (see the module docstring),
    sent with the operations of the session's API family (``ops``)."""

    def __init__(
        self,
        call: Call,
        status: StatusCall,
        guard: MoneyGuard,
        recent: RecentRefunds,
        ops: OperationSet,
    ) -> None:
        self._call = call
        self._status = status
        self.guard = guard
        #: Refunds this session knows happened, that a lagging status may not show yet.
        self.recent = recent
        self._clearing = ops.clearing
        self._refund = ops.refund

    async def clear(self, request: ClearRequest, resume: bool, policy: SettlePolicy) -> ClearResult:
        """A reconciled clearing (``resume``: an earlier run may have sent it)."""
        async with self.guard.hold(request.payment_id) as held:
            name = clearing_note(request)
            move = _Movement(held, name, resume or name in held.notes)
            try:
                await held.write(name, "{}")
                return await self._move(CLEAR_RULE, self._clearing, request, move, policy)
            except CoordinationError as exc:
                move.may_have_acted(exc)
                raise

    async def refund(
        self,
        request: RefundRequest,
        baseline: RefundBaseline | None,
        resume: bool,
        policy: SettlePolicy,
    ) -> RefundResult:
        """A reconciled refund against ``baseline`` (read first when None)."""
        async with self.guard.hold(request.payment_id) as held:
            return await self._refund_held(held, request, baseline, resume, policy)

    async def refund_all(
        self,
        payment_id: int,
        currency: str | None,
        receipt_positions: Sequence[ReceiptPosition],
        policy: SettlePolicy,
    ) -> RefundResult:
        """A reconciled refund of all that status shows captured and not refunded yet:
        status is read under the hold, and its remainder sent as the amount, spelt out
        (that reading is the baseline). ValidationError when nothing is left."""
        async with self.guard.hold(payment_id) as held:
            seen = await self._before_refund(payment_id)
            request = full_refund_request(seen, currency, receipt_positions)
            baseline = RefundBaseline.of(seen)
            return await self._refund_held(held, request, baseline, False, policy)

    async def _refund_held(
        self,
        held: Held,
        request: RefundRequest,
        baseline: RefundBaseline | None,
        resume: bool,
        policy: SettlePolicy,
    ) -> RefundResult:
        name = refund_note(request)
        left = held.notes.get(name)
        move = _Movement(held, name, resume or left is not None)
        try:
            if left is not None:
                # The movement in flight is judged against its own baseline, whatever
                # the caller read since (a fresher one may show it done).
                baseline = _noted_baseline(left, request.payment_id)
            if baseline is None:
                baseline = await self._baseline(request.payment_id)
            await held.write(name, json.dumps(baseline.to_json()))
            noted = _noted_refunds(held, request.payment_id, policy.window)
            known = {*self.recent.known(request.payment_id), *_pairs(noted)}
            rule = RefundRule(baseline, sorted(known))
            vet = functools.partial(_not_listed, rule.baseline)
            result = await self._move(rule, self._refund, request, move, policy, vet)
        except CoordinationError as exc:
            move.may_have_acted(exc)
            raise
        if not _known(result):  # pending: its redelivered job resumes it
            return result
        self.recent.remember(request.payment_id, result.refund_id, request.amount)
        if result.refund_id is not None:
            noted.append((result.refund_id, request.amount, time.time()))
            await _note_refunds(held, request.payment_id, noted)
        return result

    async def _baseline(self, payment_id: int) -> RefundBaseline:
        return RefundBaseline.of(await self._before_refund(payment_id))

    async def _before_refund(self, payment_id: int) -> StatusResult:
        try:
            return await self._status(StatusRequest(payment_id))
        except FreedomPayError as exc:
            exc.maybe_processed = exc.earlier_maybe_processed = False  # no refund was sent
            exc.add_note("the refund was not sent: its baseline status could not be read")
            raise

    async def _move(
        self,
        rule: Rule[Req, Res],
        operation: Operation[Req, Res],
        request: Req,
        move: _Movement,
        policy: SettlePolicy,
        vet: Callable[[Res], None] = lambda _result: None,
    ) -> Res:
        """Send (unless resuming) and settle an outcome left open; the payment is held,
        so what status shows before and after is this call's alone. ``vet`` refuses a
        reply that cannot be this send's (raising makes the outcome open)."""

        async def send(request: Req) -> Res:
            await move.held.check()
            move.sent = True
            result: Res = await self._call(operation, request)
            vet(result)
            return result

        first: Res | FreedomPayError | None = None
        if not move.resume:
            try:
                result = await send(request)
            except CoordinationError:
                raise
            except FreedomPayError as exc:
                if not ambiguous(exc):
                    await move.settled(exc)
                    raise
                first = exc
            else:
                await move.settled(result)
                return result
        payment_id = request.payment_id
        assert payment_id is not None  # a clearing or a refund names its payment
        settled = await settle(
            rule, send, self._status, request, first, payment_id=payment_id, policy=policy
        )
        await move.settled(settled.error if settled.error is not None else settled.result)
        return settled.unwrap()


def _not_listed(baseline: RefundBaseline, result: RefundResult) -> None:
    """A refund reply naming a refund that status listed before this one was sent is an
    earlier refund's reply (replayed): no proof of this refund, whose outcome is open."""
    if result.refund_id is not None and result.refund_id in baseline.refund_ids:
        raise MalformedReplyError(
            f"the refund reply names refund {result.refund_id}, which was listed before "
            "this refund was sent: an earlier refund's reply is no proof of this one",
            payment_id=result.payment_id,
            http_status=200,
        )


def _noted_baseline(text: str, payment_id: int) -> RefundBaseline:
    """The baseline a note holds; CoordinationError for a note that cannot be read."""
    try:
        return RefundBaseline.from_json(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise CoordinationError(
            "a note about an unsettled refund of this payment cannot be read; nothing was sent",
            payment_id=payment_id,
        ) from exc


Noted = list[tuple[int, Decimal, float]]


def _pairs(noted: Noted) -> list[tuple[int, Decimal]]:
    return [(rid, amount) for rid, amount, _ in noted]


def _noted_refunds(held: Held, payment_id: int, window: float) -> Noted:
    """The refunds earlier holders noted in the last settle window (``window`` plus a
    margin for clocks apart); CoordinationError for a note that cannot be read."""
    text = held.notes.get(RECENT_REFUNDS_NOTE)
    if text is None:
        return []
    try:
        rows = [
            (int(rid), Decimal(str(amount)), float(when)) for rid, amount, when in json.loads(text)
        ]
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise CoordinationError(
            "the note of this payment's recent refunds cannot be read; nothing was sent",
            payment_id=payment_id,
        ) from exc
    cutoff = time.time() - 2 * window
    return [row for row in rows if row[2] >= cutoff]


async def _note_refunds(held: Held, payment_id: int, noted: Noted) -> None:
    """Leave ``noted`` for the next holder. The refund is done whatever happens here:
    a lease lost meanwhile is logged, never raised over the known outcome."""
    value = json.dumps([[rid, str(amount), when] for rid, amount, when in noted[-32:]])
    try:
        await held.write(RECENT_REFUNDS_NOTE, value)
    except CoordinationError as exc:
        logger.warning(
            "payment=%s: the refund is done, but could not be noted for other workers (%s); "
            "the next holder's baseline may miss it while status lags",
            payment_id,
            exc,
        )
