"""The Gateway API operations as declarative definitions.

An :class:`Operation` says everything the session's one send path needs to know about a
call: its path (and so its script name), how its request value becomes fields, how a
verified reply becomes its result value, and how it may be retried. Adding an
operation is one definition here plus a thin typed method on the session. The
Merchant API's twins of these four are in ``merchant.py``; ``families.py`` groups
each family's set.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import attrs

from .._exceptions import (
    FreedomPayError,
    ReplyError,
    TransportError,
)
from .._wire.fields import FieldValue
from .._wire.messages import GatewayReply
from .cancel import (
    CancelRequest,
    CancelResult,
)
from .money import (
    ClearRequest,
    ClearResult,
    RefundRequest,
    RefundResult,
)
from .status import (
    StatusRequest,
    StatusResult,
)

__all__ = [
    "CANCEL",
    "CLEARING",
    "OPERATIONS",
    "REFUND",
    "STATUS",
    "Operation",
    "RetryRule",
    "retry_predicate",
]


class _Renders(Protocol):
    @property
    def payment_id(self) -> int | None: ...

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]: ...


Req = TypeVar("Req", bound=_Renders)
Res = TypeVar("Res")


class RetryRule(enum.Enum):
    """How an operation's attempts may be retried by the retry middleware.

    - READ_ONLY: asking again changes nothing, so every failure that is not a final
      gateway answer is retried (lost connections, timeouts, garbled or forged replies).
    - CONFIRMING: the session's retry policy as it is; a repeated cancel is answered
      "already cancelled", which confirms the first attempt.
    - MONEY: a failure after which the gateway may have acted is never re-sent blindly;
      only failures that certainly did nothing (no connection, HTTP 429, a signed
      transient error) are retried. The session settles the rest by asking status.
    """

    READ_ONLY = "read_only"
    CONFIRMING = "confirming"
    MONEY = "money"


def retry_predicate(
    rule: RetryRule, base: Callable[[FreedomPayError], bool]
) -> Callable[[FreedomPayError], bool]:
    """The retry policy's ``on`` for an operation with ``rule``, built on ``base``."""
    if rule is RetryRule.READ_ONLY:

        def read_only(error: FreedomPayError) -> bool:
            if base(error):
                return True
            # Asking again is safe: retry lost, garbled and forged answers too, but
            # not gateway refusals, client errors or a wrong URL's 404.
            if isinstance(error, TransportError):
                return True
            return isinstance(error, ReplyError) and error.http_status in (None, 200)

        return read_only
    if rule is RetryRule.MONEY:

        def money(error: FreedomPayError) -> bool:
            return base(error) and not error.maybe_processed

        return money
    return base


Render = Callable[[Any, int, str], list[tuple[str, FieldValue]]]


@attrs.frozen
class Operation(Generic[Req, Res]):
    """One API call: ``name`` (as in logs and ``GatewayRequest.operation``; the same
    in both families), ``path`` (its last segment is the script name), the request
    type, the reply parser ``parse(reply, payment_id)`` (``payment_id`` is the
    request's, None for a call that names no payment), the :class:`RetryRule`, and
    ``render(request, merchant_id, salt)`` when the fields differ from the request's
    own ``to_fields`` (another family's field names)."""

    name: str
    path: str
    request_type: type[Req]
    parse: Callable[[GatewayReply, Any], Res]
    retry: RetryRule
    render: Render | None = None

    def fields(self, request: Req, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The request's unsigned fields."""
        if self.render is not None:
            return self.render(request, merchant_id, salt)
        return request.to_fields(merchant_id, salt)

    def result(self, reply: GatewayReply, payment_id: int | None) -> Res:
        """``parse`` the verified reply; a parse error carries the reply's attempt count
        and ambiguity, as errors from the chain do."""
        try:
            return self.parse(reply, payment_id)
        except FreedomPayError as exc:
            exc.attempts = reply.attempts
            exc.earlier_maybe_processed = reply.earlier_maybe_processed
            raise


CANCEL: Operation[CancelRequest, CancelResult] = Operation(
    "cancel", "/g2g/cancel", CancelRequest, CancelResult.from_reply, RetryRule.CONFIRMING
)
STATUS: Operation[StatusRequest, StatusResult] = Operation(
    "status", "/g2g/status_v2", StatusRequest, StatusResult.from_reply, RetryRule.READ_ONLY
)
CLEARING: Operation[ClearRequest, ClearResult] = Operation(
    "clearing", "/g2g/clearing", ClearRequest, ClearResult.from_reply, RetryRule.MONEY
)
REFUND: Operation[RefundRequest, RefundResult] = Operation(
    "refund", "/g2g/refund", RefundRequest, RefundResult.from_reply, RetryRule.MONEY
)

#: Every operation, by name.
OPERATIONS: dict[str, Operation[Any, Any]] = {
    op.name: op for op in (CANCEL, STATUS, CLEARING, REFUND)
}
