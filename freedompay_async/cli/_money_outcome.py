"""What became of one money row (``clear``, ``refund``), and its journal lines.

A row's outcome is one of :data:`~._states.MONEY_STATES`:

- ``done``: the gateway's reply, bound to the payment, says it cleared or refunded it
  (a clearing status ``1``, a refund status ``success``), or status confirmed it;
- ``already_done``: a signed reply bound to the payment (confirmed by status) says it
  was cleared or refunded before (``AlreadyClearedError``, ``AlreadyRefundedError``);
- ``failed``: nothing moved. Final only when the gateway's refusal is signed and bound,
  or status shows the movement cannot happen (``NotDoneError``), or the row is invalid;
- ``unknown``: the money may have moved (``outcome_unknown``, or a resumed movement
  status could not settle): the row's intent stays open and a rerun settles it by
  status before anything is sent again;
- ``held``: not sent, because an earlier movement of the same payment is unsettled.

Before a movement is sent its *intent* is journaled (:func:`intent_record`): the row,
and for a refund the baseline that status showed before it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .._exceptions import (
    AlreadyClearedError,
    AlreadyRefundedError,
    FreedomPayError,
    GatewayError,
    NotDoneError,
    ReplyError,
    UnsettledError,
    ValidationError,
)
from .._operations.money import ClearResult, RefundBaseline, RefundResult, RefundStatus
from ._outcome import Outcome
from ._outcome_record import CREDENTIAL_ERRORS
from ._rowinput import PlannedRow
from ._states import ALREADY_DONE, DONE, HELD, INTENT, SETTLED

__all__ = [
    "HELD_LAG",
    "HELD_OPEN",
    "MoneyResult",
    "error_outcome",
    "held_outcome",
    "intent_record",
    "result_outcome",
]

MoneyResult = ClearResult | RefundResult
_FAILED, _UNKNOWN = "failed", "unknown"
_ALREADY = (AlreadyClearedError, AlreadyRefundedError)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _record(planned: PlannedRow, state: str, final: bool, run: str, now: str) -> dict[str, Any]:
    """A verbose money record with every key (see :mod:`._money_codec`)."""
    row = planned.row
    return {
        "row": planned.key,
        "payment_id": row.payment_id,
        "state": state,
        "final": final,
        "attempts": 1,
        "elapsed": None,
        "line": planned.line,
        "amount": None if row.amount is None else f"{row.amount:.2f}",
        "currency": row.currency,
        "baseline": None,
        "refund_id": None,
        "error_type": None,
        "error_code": None,
        "error_description": None,
        "http_status": None,
        "time": now,
        "run": run,
    }


def intent_record(
    planned: PlannedRow,
    baseline: RefundBaseline | None,
    *,
    run: str,
    now: Callable[[], str] = _now,
) -> dict[str, Any]:
    """The line journaled (and fsynced) before a movement is sent."""
    record = _record(planned, INTENT, False, run, now())
    record["attempts"] = 0
    record["baseline"] = None if baseline is None else baseline.to_json()
    return record


def _result_state(result: MoneyResult) -> tuple[str, bool]:
    """(state, final) of a reply bound to the payment (or confirmed by status)."""
    if isinstance(result, ClearResult):
        return (DONE, True) if result.completed else (_UNKNOWN, False)
    if result.refund_status is RefundStatus.SUCCESS:
        return DONE, True
    if result.refund_status is RefundStatus.ERROR:
        return _FAILED, True  # the gateway says, about this payment, that it failed
    return _UNKNOWN, False  # pending, or a status it does not document: settle later


def result_outcome(
    planned: PlannedRow, result: MoneyResult, elapsed: float, *, run: str,
    expected_refunded: Decimal | None = None, now: Callable[[], str] = _now,
) -> Outcome:  # fmt: skip
    """The outcome of a movement the gateway answered (or status confirmed);
    ``expected_refunded``: the refunded total a done refund brings its payment to
    (journaled, see :mod:`._refund_floor`)."""
    state, final = _result_state(result)
    record = _record(planned, state, final, run, now())
    record.update(attempts=result.attempts, elapsed=round(elapsed, 4))
    if isinstance(result, RefundResult):
        record["refund_id"] = result.refund_id
        if state == DONE and expected_refunded is not None:
            record["expected_refunded"] = f"{expected_refunded:.2f}"
        if state != DONE:
            record["refund_status"] = result.refund_status_raw
    else:
        amount = result.clearing_amount
        record["clearing_amount"] = None if amount is None else f"{amount:.2f}"
        if state != DONE:
            record["clearing_status"] = result.clearing_status_raw
    if result.confirmed_by_status:
        record["settled_by"] = "status"
    rerun_as = "" if final else _UNKNOWN
    return _outcome(planned, record, state, final, result.attempts, None, rerun_as=rerun_as)


def _error_verdict(error: FreedomPayError) -> tuple[str, bool, bool, str]:
    """(state, final, permanent, rerun_as) of a movement that ended in ``error``."""
    if isinstance(error, _ALREADY) and error.signed and error.bound:
        return ALREADY_DONE, True, False, ""
    if isinstance(error, UnsettledError) or error.outcome_unknown:
        return _UNKNOWN, False, False, _UNKNOWN
    if isinstance(error, ValidationError | NotDoneError):
        return _FAILED, True, True, ""
    refusal = isinstance(error, GatewayError) and not error.retryable
    if refusal and not isinstance(error, CREDENTIAL_ERRORS):
        # A refusal. Believed for good only when signed and bound to the payment; an
        # unbound one could be a reply captured for another payment, so a rerun asks
        # again, though the answer is not expected to change.
        assert isinstance(error, GatewayError)
        return _FAILED, error.signed and error.bound, True, ""
    return _FAILED, False, False, "transient failure"


def error_outcome(
    planned: PlannedRow, error: FreedomPayError, elapsed: float, *, run: str,
    now: Callable[[], str] = _now,
) -> Outcome:  # fmt: skip
    """The outcome of a movement that ended in ``error`` (sent or not)."""
    state, final, permanent, rerun_as = _error_verdict(error)
    record = _record(planned, state, final, run, now())
    record.update(
        attempts=error.attempts,
        elapsed=round(elapsed, 4),
        error_type=type(error).__name__,
        error_code=error.code if isinstance(error, GatewayError) else None,
        error_description=error.description if isinstance(error, GatewayError) else error.message,
        http_status=error.http_status if isinstance(error, ReplyError) else None,
    )
    return _outcome(
        planned, record, state, final, error.attempts, error, permanent=permanent,
        rerun_as=rerun_as,
    )  # fmt: skip


#: Why a row is held back (the record's ``held_by``).
HELD_OPEN = "an earlier movement of this payment is open"
HELD_LAG = "status does not show this payment's earlier refunds yet"


def held_outcome(
    planned: PlannedRow, why: str = HELD_OPEN, *, run: str, now: Callable[[], str] = _now
) -> Outcome:
    """A row not sent, and why: an earlier movement of its payment is unsettled, or
    status does not show it yet."""
    record = _record(planned, HELD, False, run, now())
    record["attempts"] = 0
    record["held_by"] = why
    return _outcome(planned, record, HELD, False, 0, None, rerun_as="held back")


def _outcome(
    planned: PlannedRow, record: dict[str, Any], state: str, final: bool, attempts: int,
    error: FreedomPayError | None, *, permanent: bool = False, rerun_as: str = "",
) -> Outcome:  # fmt: skip
    return Outcome(
        payment_id=planned.row.payment_id,
        state=state,
        settled=state in SETTLED,
        final=final,
        attempts=attempts,
        error=error,
        permanent=permanent,
        rerun_as=rerun_as,
        record=record,
        key=planned.key,
    )
