"""The sandbox's XML replies: documented shapes, signed like the gateway signs them."""

from __future__ import annotations

import datetime

from .._wire.fields import (
    Fields,
    FieldValue,
)
from .._wire.signing import Md5Signer
from .._wire.xml import sign_response_fields

__all__ = [
    "ALREADY_CANCELLED",
    "BAD_PARAMETER",
    "BAD_SIGNATURE",
    "NOT_FOUND",
    "SYSTEM_ERROR",
    "UNKNOWN_MERCHANT",
    "UNKNOWN_MERCHANT_PHP",
    "ReplyBuilder",
    "gateway_date",
    "utc_now",
]

Pairs = list[tuple[str, str]]

# (pg_error_code, pg_error_description) of every error the sandbox answers.
UNKNOWN_MERCHANT = (9998, "Некорректный идентификатор магазина")
#: The Merchant API intro's code for the same (legacy numbering), unsigned as well.
UNKNOWN_MERCHANT_PHP = (101, "Неверный номер магазина")
BAD_SIGNATURE = (1100, "Некорректная подпись запроса")
# No documented code for a missing or non-numeric pg_payment_id: the legacy PayBox table's
# "missing / invalid parameter" is used. Clients see a final GatewayDeclinedError.
BAD_PARAMETER = (200, "Некорректный параметр: pg_payment_id")
NOT_FOUND = (11068, "Payment not found.")
ALREADY_CANCELLED = (10033, "Ошибка отмены платежа: отмена уже была произведена ранее")
SYSTEM_ERROR = (9999, "Системная ошибка")


#: Dates without an offset (``pg_payment_date``, ``pg_create_date``) were seen live in
#: Almaty time, UTC+5 (no daylight saving).
_GATEWAY_ZONE = datetime.timezone(datetime.timedelta(hours=5))


def utc_now() -> str:
    """``pg_datetime`` as the documented examples write it: ISO 8601, UTC, ``+00:00``."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def gateway_date() -> str:
    """Now, as ``YYYY-MM-DD hh:mm:ss`` without an offset, in the gateway's local time."""
    return datetime.datetime.now(_GATEWAY_ZONE).strftime("%Y-%m-%d %H:%M:%S")


class ReplyBuilder:
    """Builds reply field lists for one script name, signed with the gateway's key."""

    __slots__ = ("_script", "_signer")

    def __init__(self, secret_key: str, script: str) -> None:
        self._signer = Md5Signer(secret_key)
        self._script = script

    def __repr__(self) -> str:
        return f"<ReplyBuilder script={self._script!r}>"

    def verify(self, fields: Fields, signature: str) -> bool:
        """Whether ``signature`` signs the request ``fields`` for this script."""
        return self._signer.verify(self._script, fields, signature)

    def sign(self, fields: Pairs) -> Pairs:
        """Append a fresh ``pg_salt`` and the ``pg_sig`` over everything."""
        signed = sign_response_fields(self._script, self._signer, fields)
        return [(name, value) for name, value in signed if isinstance(value, str)]

    def sign_tree(self, fields: list[tuple[str, FieldValue]]) -> list[tuple[str, FieldValue]]:
        """Like :meth:`sign`, for a reply with nested groups (status_v2's lists)."""
        return sign_response_fields(self._script, self._signer, fields)

    def error(self, error: tuple[int, str], *, signed: bool = True) -> Pairs:
        """An error reply; unsigned ones have the shape of the official unsigned sample."""
        code, description = error
        fields: Pairs = [
            ("pg_status", "error"),
            ("pg_error_code", str(code)),
            ("pg_error_description", description),
        ]
        if not signed:
            return fields
        fields.append(("pg_datetime", utc_now()))
        return self.sign(fields)

    def cancelled(self, payment_id: int, revoke_id: int, revoke_status: str) -> Pairs:
        """The documented success reply of ``/g2g/cancel``."""
        return self.sign(
            [
                ("pg_payment_id", str(payment_id)),
                ("pg_payment_revoke_id", str(revoke_id)),
                ("pg_status", "ok"),
                ("pg_revoke_status", revoke_status),
            ]
        )

    @staticmethod
    def forge(fields: Fields) -> list[tuple[str, FieldValue]]:
        """The same reply with a ``pg_sig`` that is well-formed hex but wrong."""
        out: list[tuple[str, FieldValue]] = []
        for name, value in fields:
            if name == "pg_sig" and isinstance(value, str):
                value = format(int(value, 16) ^ 0x5A5A, "032x")
            out.append((name, value))
        return out
