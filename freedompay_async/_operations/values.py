"""Shared readers and validators for request and result values of every operation.

Request side: payment ids, order ids, amounts, currencies (each a ValidationError when
unusable). Reply side: typed reads of a verified reply's scalar fields (each a
MalformedReplyError when a required field is missing or unreadable).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from .._exceptions import MalformedReplyError, ValidationError
from .._wire.fields import FieldValue

__all__ = [
    "MAX_ID_DIGITS",
    "MAX_PAYMENT_ID",
    "amount_value",
    "coerce_payment_id",
    "currency_value",
    "open_enum_parse",
    "optional_amount",
    "order_id_value",
    "reply_bool",
    "reply_decimal",
    "reply_int",
    "scalars",
]

MAX_ID_DIGITS = 20
#: Payment ids are below this (at most MAX_ID_DIGITS digits).
MAX_PAYMENT_ID = 10**MAX_ID_DIGITS


def coerce_payment_id(value: object) -> int:
    """A payment id as a positive int; accepts an int or a string of ASCII digits."""
    if isinstance(value, bool):
        raise ValidationError(f"payment id must be a positive integer, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > MAX_ID_DIGITS:
            raise ValidationError(f"payment id must be a positive integer, got {value[:40]!r}")
        number = int(text)
    else:
        raise ValidationError(f"payment id must be a positive integer, got {type(value).__name__}")
    if number <= 0 or number >= MAX_PAYMENT_ID:
        raise ValidationError(f"payment id must be a positive integer, got {number}")
    return number


_MAX_ORDER_ID = 50
_MAX_AMOUNT_DIGITS = 18
_CENT = Decimal("0.01")


def amount_value(value: object, *, name: str = "amount") -> Decimal:
    """A positive money amount with at most two decimal places (int, Decimal or string).

    Floats are refused: ``0.1`` is not exactly 0.10, and a signed amount must be exact.
    """
    if isinstance(value, bool | float):
        raise ValidationError(f"{name} must be an int, a Decimal or a decimal string (not float)")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else None
        if isinstance(value, int | Decimal):
            number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValidationError(f"{name} must be a decimal number, got {str(value)[:40]!r}")
    if number < _CENT:
        raise ValidationError(f"{name} must be at least 0.01, got {number}")
    if number.adjusted() >= _MAX_AMOUNT_DIGITS - 2 or number != number.quantize(_CENT):
        raise ValidationError(f"{name} must have at most two decimal places, got {number}")
    # At most two decimal places as sent: 100.000 is 100.00 (php_str renders any
    # exponent form, 1E+2, as plain digits).
    if int(number.as_tuple().exponent) < -2:  # finite here, so an int
        number = number.quantize(_CENT)
    return number


def optional_amount(value: object) -> Decimal | None:
    """``amount_value`` that lets None through (an optional amount)."""
    return None if value is None else amount_value(value)


def currency_value(value: object) -> str | None:
    """An ISO 4217 letter code (``KZT``), upper-cased; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str) or not (
        len(value.strip()) == 3 and value.strip().isascii() and value.strip().isalpha()
    ):
        raise ValidationError(f"currency must be a three-letter code, got {str(value)[:20]!r}")
    return value.strip().upper()


def order_id_value(value: object) -> str | None:
    """A merchant order id: printable ASCII without spaces, at most 50 characters."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError("order id must be a string or an integer")
    if isinstance(value, int):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _MAX_ORDER_ID
        or not all("!" <= ch <= "~" for ch in value)
    ):
        raise ValidationError(
            f"order id must be 1-{_MAX_ORDER_ID} printable ASCII characters without spaces"
        )
    return value


# -- reply side -----------------------------------------------------------------------------


def scalars(fields: Iterable[tuple[str, FieldValue]]) -> dict[str, str]:
    """First value of each top-level scalar field (nested groups left out)."""
    out: dict[str, str] = {}
    for key, value in fields:
        if isinstance(value, str):
            out.setdefault(key, value)
    return out


def _missing(operation: str, name: str) -> MalformedReplyError:
    return MalformedReplyError(f"{operation} reply is missing {name}", http_status=200)


def reply_int(
    known: dict[str, str], name: str, operation: str, *, required: bool = False
) -> int | None:
    """A non-negative integer field, None when absent or empty (unless required)."""
    raw = known.get(name, "").strip()
    if not raw:
        if required:
            raise _missing(operation, name)
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
        raise MalformedReplyError(f"{operation} reply has a non-numeric {name}", http_status=200)
    return int(raw)


def reply_decimal(
    known: dict[str, str], name: str, operation: str, *, required: bool = False
) -> Decimal | None:
    """A decimal amount field, None when absent or empty (unless required)."""
    raw = known.get(name, "").strip()
    if not raw:
        if required:
            raise _missing(operation, name)
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or len(raw) > 32:
        raise MalformedReplyError(f"{operation} reply has a non-numeric {name}", http_status=200)
    return number


def reply_bool(known: dict[str, str], name: str) -> bool | None:
    """A 0/1 flag (``pg_captured``); None when absent or anything else."""
    raw = known.get(name, "").strip().lower()
    return {"1": True, "0": False, "true": True, "false": False}.get(raw)


E = TypeVar("E", bound=enum.Enum)


def open_enum_parse(cls: type[E], value: str | None, unknown: E) -> E:
    """Map raw text to a member of ``cls`` by value (case-insensitive), else ``unknown``."""
    key = (value or "").strip().lower()
    for member in cls:
        if member.value == key:
            return member
    return unknown
