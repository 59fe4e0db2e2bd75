"""Frozen attrs values for the operations' requests and results (cancel today)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from .._exceptions import (
    MalformedReplyError,
)
from .._wire.fields import (
    FieldValue,
)
from .._wire.messages import GatewayReply
from .receipts import ReceiptPosition, receipt_positions, receipt_positions_field
from .values import MAX_ID_DIGITS, coerce_payment_id

if TYPE_CHECKING:
    from .._exceptions import AlreadyCancelledError

__all__ = [
    "CancelRequest",
    "CancelResult",
    "RevokeStatus",
]

@attrs.frozen
class CancelRequest:
    """A ``/g2g/cancel`` of one held two-step payment, optionally with receipt positions.

    Receipt positions beyond ten are sent, but note the reference signature sorts
    position 10 before position 1 (PHP ``ksort``); whether the live gateway does the
    same is unconfirmed.
    """

    payment_id: int = attrs.field(converter=coerce_payment_id)
    receipt_positions: tuple[ReceiptPosition, ...] = attrs.field(
        default=(), converter=receipt_positions
    )

    @classmethod
    def of(cls, item: CancelRequest | int | str) -> CancelRequest:
        """Accept a CancelRequest or a bare payment id."""
        return item if isinstance(item, CancelRequest) else cls(item)

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The unsigned field tree, in the order it is signed and posted."""
        fields: list[tuple[str, FieldValue]] = [
            ("pg_merchant_id", str(merchant_id)),
            ("pg_payment_id", str(self.payment_id)),
        ]
        if self.receipt_positions:
            fields.append(receipt_positions_field(self.receipt_positions))
        fields.append(("pg_salt", salt))
        return fields


class RevokeStatus(enum.Enum):
    """``pg_revoke_status``: the documented values plus UNKNOWN for anything else."""

    SUCCESS = "success"
    PENDING = "pending"
    ERROR = "error"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> RevokeStatus:
        """Map a raw value to a member, UNKNOWN when unrecognised (the raw text is kept)."""
        member = REVOKE_BY_VALUE.get(value or "")
        if member is None:
            member = REVOKE_BY_VALUE.get((value or "").strip().lower(), cls.UNKNOWN)
        return member


REVOKE_BY_VALUE: dict[str, RevokeStatus] = {m.value: m for m in RevokeStatus}


_NO_EXTRA: Mapping[str, object] = MappingProxyType({})
CANCEL_KNOWN = frozenset(
    {"pg_payment_id", "pg_payment_revoke_id", "pg_status", "pg_revoke_status", "pg_salt", "pg_sig"}
)


def _reply_int(raw: str | None, name: str, *, required: bool) -> int | None:
    if raw is None or raw.strip() == "":
        if required:
            raise MalformedReplyError(f"cancel reply is missing {name}", http_status=200)
        return None
    text = raw.strip()
    # The length bound also keeps int() under Python's digit limit (a bare ValueError).
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_ID_DIGITS:
        raise MalformedReplyError(f"cancel reply has a non-numeric {name}", http_status=200)
    return int(text)


@attrs.frozen
class CancelResult:
    """A cancel the gateway accepted.

    ``revoke_status`` is the parsed ``pg_revoke_status`` (``revoke_status_raw`` keeps the
    text). ``confirmed_on_retry`` is True when an attempt timed out or lost its
    connection and a later attempt was answered "already cancelled": the first attempt
    did the cancel. ``earlier_maybe_processed`` says an earlier attempt of the call may
    have been acted on. ``confirmed_by_status`` is True when the cancel's answer was
    lost and ``/g2g/status_v2`` showed the payment revoked (reconciling, see
    ``AsyncSession.cancel``). ``extra`` keeps reply fields this version does not know.
    """

    payment_id: int
    revoke_id: int | None
    status: str
    revoke_status: RevokeStatus
    revoke_status_raw: str
    signed: bool = True
    attempts: int = 1
    confirmed_on_retry: bool = False
    earlier_maybe_processed: bool = False
    extra: Mapping[str, object] = _NO_EXTRA
    confirmed_by_status: bool = False

    @classmethod
    def from_reply(cls, reply: GatewayReply, payment_id: int) -> CancelResult:
        """Build from a verified ``pg_status=ok`` reply to a cancel of ``payment_id``."""
        known: dict[str, str] = {}
        has_extra = False
        for key, value in reply.fields:  # one pass: first value of each known field
            if key in CANCEL_KNOWN and isinstance(value, str):
                known.setdefault(key, value)
            else:
                has_extra = True
        extra = _NO_EXTRA
        if has_extra:
            extra = MappingProxyType(
                {k: v for k, v in reply.as_dict().items() if k not in CANCEL_KNOWN}
            )
        return cls.from_values(
            payment_id,
            known.get("pg_payment_id"),
            known.get("pg_payment_revoke_id"),
            known.get("pg_revoke_status"),
            known.get("pg_status", ""),
            reply.signed,
            reply.attempts,
            reply.earlier_maybe_processed,
            extra,
        )

    @classmethod
    def from_values(
        cls,
        payment_id: int,
        raw_id: str | None,
        raw_revoke_id: str | None,
        raw_status: str | None,
        status: str = "ok",
        signed: bool = True,
        attempts: int = 1,
        earlier_maybe_processed: bool = False,
        extra: Mapping[str, object] = _NO_EXTRA,
    ) -> CancelResult:
        """The one builder of an accepted cancel's result, from its verified reply's
        texts (``pg_payment_id``, ``pg_payment_revoke_id``, ``pg_revoke_status``): the
        reply must name ``payment_id``. :meth:`from_reply` and the direct path's reply
        shapes both build through it."""
        # The common reply repeats the id exactly; anything else is read in full.
        replied_id = (
            payment_id
            if raw_id is not None and raw_id == str(payment_id)
            else _reply_int(raw_id, "pg_payment_id", required=True)
        )
        if replied_id != payment_id:
            raise MalformedReplyError(
                f"cancel reply is for payment {replied_id}, not the one requested",
                payment_id=payment_id,
                http_status=200,
            )
        if raw_status is None:
            raise MalformedReplyError(
                "cancel reply is missing pg_revoke_status", payment_id=payment_id, http_status=200
            )
        revoke_id = (
            int(raw_revoke_id)
            if raw_revoke_id is not None
            and raw_revoke_id.isascii()
            and raw_revoke_id.isdigit()
            and len(raw_revoke_id) <= MAX_ID_DIGITS
            else _reply_int(raw_revoke_id, "pg_payment_revoke_id", required=False)
        )
        revoke_status = REVOKE_BY_VALUE.get(raw_status) or RevokeStatus.parse(raw_status)
        return cls(payment_id, revoke_id, status, revoke_status, raw_status, signed, attempts,
                   False, earlier_maybe_processed, extra)  # fmt: skip

    @classmethod
    def confirmed_by(cls, error: AlreadyCancelledError, payment_id: int) -> CancelResult:
        """Result of a call whose retry, after an ambiguous attempt, said "already cancelled"."""
        return cls(
            payment_id=payment_id,
            revoke_id=None,
            status="ok",
            revoke_status=RevokeStatus.SUCCESS,
            revoke_status_raw=str(error.code),
            signed=error.signed,
            attempts=error.attempts,
            confirmed_on_retry=True,
            earlier_maybe_processed=True,
        )
