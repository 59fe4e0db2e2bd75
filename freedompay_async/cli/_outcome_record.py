"""A cancel outcome as a journal line: the verbose record, and whether it is final.

The journal (:mod:`._journal`) stores what :func:`outcome_record` builds, compacted;
:func:`journal_final` says whether a rerun may skip the payment.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from .._exceptions import (
    ConfigurationError,
    FreedomPayError,
    GatewayError,
    InvalidRequestSignatureError,
    ReplyError,
    SessionClosedError,
    UnknownMerchantError,
)
from .._session.batch import CancelOutcome

__all__ = ["CREDENTIAL_ERRORS", "journal_final", "outcome_record"]

#: Errors that say something about the run (credentials, URL), not about the payment:
#: never final, whatever ``CancelOutcome.final`` says, so a rerun with a fixed
#: configuration tries those ids again.
CREDENTIAL_ERRORS: tuple[type[FreedomPayError], ...] = (
    InvalidRequestSignatureError,
    UnknownMerchantError,
)
_RUN_ERRORS: tuple[type[FreedomPayError], ...] = (
    *CREDENTIAL_ERRORS,
    ConfigurationError,
    SessionClosedError,
)


def journal_final(outcome: CancelOutcome) -> bool:
    """Whether a rerun may skip this outcome's payment id.

    :attr:`CancelOutcome.final` (cancelled, already cancelled, or a failure the retry
    policy would not retry, such as "payment not found"), except failures caused by
    the run's configuration (request signature refused, unknown merchant, bad URL):
    those are retried by a rerun with fixed settings.
    """
    if outcome.error is not None and isinstance(outcome.error, _RUN_ERRORS):
        return False
    return outcome.final


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def outcome_record(
    outcome: CancelOutcome, *, run: str, now: Callable[[], str] = _now
) -> dict[str, Any]:
    """The journal line (as a dict) for one outcome. Never holds a secret or signature."""
    result, error = outcome.result, outcome.error
    record: dict[str, Any] = {
        "payment_id": outcome.payment_id,
        "state": outcome.state.value,
        "final": journal_final(outcome),
        "attempts": outcome.attempts,
        "elapsed": round(outcome.elapsed, 4),
        "revoke_id": result.revoke_id if result is not None else None,
        # One vocabulary: the parsed revoke status; how it was learnt is settled_by.
        "revoke_status": result.revoke_status.value if result is not None else None,
        "confirmed_on_retry": result.confirmed_on_retry if result is not None else False,
        "error_type": type(error).__name__ if error is not None else None,
        "error_code": error.code if isinstance(error, GatewayError) else None,
        "error_description": None,
        "http_status": error.http_status if isinstance(error, ReplyError) else None,
        "time": now(),
        "run": run,
    }
    if outcome.settled_by not in (None, "reply"):
        # How the outcome was learnt, when not from the cancel's own reply (absent:
        # the reply said it, or the state is unknown); kept out of the common line.
        record["settled_by"] = outcome.settled_by
    if isinstance(error, GatewayError):
        record["error_description"] = error.description
    elif error is not None:
        record["error_description"] = error.message
    return record
