"""Fiscal receipt lines sent with a cancel or a refund (``pg_receipt_positions``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from .._exceptions import ValidationError
from .._wire.fields import FieldValue, php_str

__all__ = ["ReceiptPosition", "receipt_positions", "receipt_positions_field"]


def _decimal(value: object) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ValidationError("price must be an int, a Decimal or a decimal string (not a float)")
    try:
        number = Decimal(value) if isinstance(value, int | str | Decimal) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number < 0 or number >= 10**15:
        raise ValidationError(
            f"price must be a non-negative decimal number, got {str(value)[:40]!r}"
        )
    return number


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**18:
        raise ValidationError(f"expected a non-negative integer, got {type(value).__name__}")
    return value


#: Characters no receipt text may hold: C0 controls (tab aside), DEL, and the
#: surrogates and non-characters neither UTF-8 nor XML can carry.
_BAD_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _text_checker(
    limit: int, *, optional: bool
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """A validator: the value is text the signature and the wire can carry, or None."""

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        name = attribute.name
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
        if not value.strip() or len(value) > limit:
            raise ValidationError(f"{name} must be 1 to {limit} characters of text")
        if _BAD_TEXT.search(value):
            raise ValidationError(
                f"{name} holds a control character or invalid Unicode (lone surrogate?)"
            )

    return check


def _positive_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 10**18:
        raise ValidationError(f"count must be an integer >= 1, got {type(value).__name__}")
    return value


@attrs.frozen
class ReceiptPosition:
    """One fiscal receipt line sent with a cancel (``pg_receipt_positions[i][...]``).

    Every field is validated on construction (ValidationError), so a value that could
    not be signed or sent (a name that is not text, a lone surrogate, a control
    character, a float price) is refused before any key is near it.
    """

    count: int = attrs.field(converter=_positive_count)
    name: str = attrs.field(validator=_text_checker(1024, optional=False))
    price: Decimal = attrs.field(converter=_decimal)
    tax_type: int | None = attrs.field(default=None, converter=_optional_int)
    unit_code: int | None = attrs.field(default=None, converter=_optional_int)
    gtin: str | None = attrs.field(default=None, validator=_text_checker(64, optional=True))
    ntin: str | None = attrs.field(default=None, validator=_text_checker(64, optional=True))

    def to_fields(self) -> list[tuple[str, FieldValue]]:
        """The position's wire fields, in documented order, optional ones only when set."""
        fields: list[tuple[str, FieldValue]] = [
            ("count", php_str(self.count)),
            ("name", self.name),
            ("price", php_str(self.price)),
        ]
        optional = (
            ("tax_type", self.tax_type),
            ("UnitCode", self.unit_code),
            ("GTIN", self.gtin),
            ("NTIN", self.ntin),
        )
        fields.extend((key, php_str(value)) for key, value in optional if value is not None)
        return fields


def receipt_positions(value: Sequence[ReceiptPosition]) -> tuple[ReceiptPosition, ...]:
    """A converter: a sequence of ReceiptPosition values as a tuple (ValidationError else)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError("receipt_positions must be a sequence of ReceiptPosition values")
    positions = tuple(value)
    if not all(isinstance(p, ReceiptPosition) for p in positions):
        raise ValidationError("receipt_positions must hold ReceiptPosition values")
    return positions


def receipt_positions_field(
    positions: Sequence[ReceiptPosition],
) -> tuple[str, FieldValue]:
    """``pg_receipt_positions`` as a nested field: ``[i][count]``, ``[i][name]``, ..."""
    return ("pg_receipt_positions", [(str(i), p.to_fields()) for i, p in enumerate(positions)])
