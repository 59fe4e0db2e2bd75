"""``status`` on the batch runner: one JSON line per id on stdout, read through
``/g2g/status_v2``; it changes nothing and keeps no journal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, TextIO

from .._exceptions import (
    ConnectionLostError,
    FreedomPayError,
    GatewayError,
    InternalError,
    ReplyError,
)
from .._operations.status import PaymentState, StatusResult
from .._session.session import AsyncSession
from ._journal import Journal, JournalState
from ._options import BatchJob
from ._outcome import Ids, Outcome
from ._pool import run_pool
from ._report import BatchReport
from ._select import Selector
from ._source import Input, open_id_input
from ._text import printable
from ._watch import credential_refusal

__all__ = ["StatusOperation", "status_outcome", "status_record"]

#: The state of an id the gateway could not answer.
ERROR = "error"


def _text(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def _result_record(payment_id: int, result: StatusResult) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "state": result.state.value,
        "payment_status": result.payment_status_raw,
        "amount": _text(result.amount),
        "clearing_amount": _text(result.clearing_amount),
        "refund_amount": _text(result.refund_amount),
        "currency": result.currency,
        "captured": result.captured,
        "payment_date": result.payment_date,
        "order_id": result.order_id,
        "revoked_payments": [r.payment_id for r in result.revoked_payments],
        "refund_payments": [
            {"payment_id": r.payment_id, "status": r.payment_status_raw, "amount": _text(r.amount)}
            for r in result.refund_payments
        ],
        "attempts": result.attempts,
    }


def status_record(
    payment_id: int, result: StatusResult | None, error: FreedomPayError | None
) -> dict[str, Any]:
    """The JSON line for one id: the status value's fields (amounts as strings, the
    derived ``state``), or the error. Holds no card data (the value never keeps any)."""
    if result is not None:
        return _result_record(payment_id, result)
    assert error is not None
    description = error.description if isinstance(error, GatewayError) else error.message
    return {
        "payment_id": payment_id,
        "state": ERROR,
        "error_type": type(error).__name__,
        "error_code": error.code if isinstance(error, GatewayError) else None,
        "error_description": printable(description),
        "http_status": error.http_status if isinstance(error, ReplyError) else None,
        "attempts": error.attempts,
    }


def status_outcome(
    payment_id: int, result: StatusResult | None, error: FreedomPayError | None
) -> Outcome:
    """The runner's :class:`Outcome` of one status query.

    An answer settles the id. A gateway refusal that is not transient (the documented
    11068 "not found" comes unsigned, and is final here: a status query changes
    nothing, so believing it risks nothing) is refused for good; anything else is to
    ask again.
    """
    record = status_record(payment_id, result, error)
    if result is not None:
        return Outcome(payment_id, result.state.value, True, True, result.attempts, record=record)
    assert error is not None
    refused = (
        isinstance(error, GatewayError)
        and not error.retryable
        and credential_refusal(error) is None
    )
    return Outcome(
        payment_id,
        ERROR,
        settled=False,
        final=refused,
        attempts=error.attempts,
        error=error,
        permanent=refused,
        rerun_as="" if refused else "not answered",
        record=record,
    )


class StatusOperation:
    """Read the status of payments; prints each answer as one JSON line on ``out``."""

    name = "status"
    states = (*(state.value for state in PaymentState), ERROR)
    settled_states = frozenset(state.value for state in PaymentState)
    verb = "asked"
    journaled = False
    unit = "id"

    def __init__(self, out: TextIO) -> None:
        self.out = out

    async def _one(self, fp: AsyncSession, payment_id: int) -> Outcome:
        try:
            return status_outcome(payment_id, await fp.status(payment_id), None)
        except FreedomPayError as exc:
            return status_outcome(payment_id, None, exc)
        except Exception as exc:  # a bug must not lose the id's line
            error = InternalError(f"unexpected {type(exc).__name__} during status")
            error.payment_id = payment_id
            return status_outcome(payment_id, None, error)

    def outcomes(self, fp: AsyncSession, ids: Ids, concurrency: int) -> AsyncIterator[Outcome]:
        """``status`` of every id, ``concurrency`` at a time."""
        return run_pool(lambda pid: self._one(fp, pid), ids, concurrency)

    def open_input(self, job: BatchJob, selector: Selector, report: BatchReport) -> Input:
        """Payment ids, one per line or from a CSV column."""
        return open_id_input(job, selector, report)

    def bind(self, source: Input, journal: Journal | None, state: JournalState) -> None:
        """Nothing to learn: each id is sent as it comes."""

    def abandoned(self, payment_id: int) -> Outcome:
        """Asked, not answered: an error line, asked again by a rerun."""
        error = ConnectionLostError(
            "abandoned in flight when the run was stopped", payment_id=payment_id
        )
        return status_outcome(payment_id, None, error)

    def show(self, outcome: Outcome) -> None:
        """The id's JSON line on ``out``."""
        print(json.dumps(outcome.record, ensure_ascii=False), file=self.out, flush=True)

    def plan(self, payment_id: int) -> str:
        """The id, as an input line."""
        return str(payment_id)
