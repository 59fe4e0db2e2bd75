"""Typed reading of a verified field tree: known ``pg_`` fields, unknown ones, the rest."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from .._exceptions import ValidationError
from .._operations.values import coerce_payment_id
from .._wire.fields import (
    Fields,
    FieldValue,
    form_pairs,
)
from ._receive import SIG

__all__ = ["Reader", "allowed_names", "frozen_map", "names_only"]

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_INT_DIGITS = 20


def allowed_names(names: Iterable[str]) -> frozenset[str]:
    """``allow_fields=`` as a set of ``pg_`` names; ValidationError for anything else."""
    if isinstance(names, str):
        raise ValidationError("allow_fields must be a collection of field names, not a str")
    allowed = frozenset(names)
    for name in allowed:
        if not isinstance(name, str) or not name.startswith("pg_"):
            raise ValidationError("allow_fields holds pg_ field names only")
    return allowed


def frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


def names_only(value: Mapping[str, str]) -> str:
    # Merchant parameters and unknown fields may carry personal data: repr shows names.
    return f"<{', '.join(sorted(value))}>"


class Reader:
    """Splits a verified tree into known pg_ fields, other pg_ fields and the rest.

    Open world (the default): a ``pg_`` name that is not ``known`` lands in ``extra``;
    the gateway adds fields over time, and a genuine message must never be refused for
    a field this version does not list. ``strict``: such a name is refused
    (ValidationError) unless in ``allowed``, since field names are not covered by the
    signature. Either way a known name must hold a plain value and appear once.
    """

    def __init__(
        self,
        kind: str,
        tree: Fields,
        known: frozenset[str],
        allowed: frozenset[str] = frozenset(),
        *,
        strict: bool = False,
    ) -> None:
        self.kind = kind
        self.values: dict[str, str] = {}
        extra: dict[str, str] = {}
        params: dict[str, str] = {}
        for key, value in tree:
            if key == SIG:
                continue
            if key in known:
                self._known(key, value)
                continue
            is_pg = key.startswith("pg_")
            if is_pg and strict and key not in allowed:
                raise ValidationError(
                    f"{kind} carries the unknown field {key[:60]!r} (strict mode); pass "
                    "its name in allow_fields= if Freedom Pay really sends it"
                )
            # Repeated unknown names keep their first value (all of them were verified).
            target = extra if is_pg else params
            for name, leaf in form_pairs([(key, value)]):
                target.setdefault(name, leaf)
        self.extra: Mapping[str, str] = MappingProxyType(extra)
        self.params: Mapping[str, str] = MappingProxyType(params)

    def _known(self, key: str, value: FieldValue) -> None:
        if not isinstance(value, str):
            raise ValidationError(f"{self.kind} field {key} is not a plain value")
        if key in self.values:
            raise ValidationError(f"{self.kind} field {key} appears more than once")
        self.values[key] = value

    def text(self, name: str) -> str | None:
        """The field's value, None when absent or empty."""
        value = self.values.get(name)
        return value if value else None

    def required_text(self, name: str) -> str:
        """The field's value; ValidationError when absent or blank."""
        value = self.values.get(name)
        if value is None or not value.strip():
            raise ValidationError(f"{self.kind} has no {name}")
        return value

    def payment_id(self, name: str = "pg_payment_id") -> int:
        """A required payment id (a positive integer)."""
        raw = self.required_text(name)
        try:
            return coerce_payment_id(raw)
        except ValidationError:
            raise ValidationError(
                f"{self.kind} has a {name} that is not a positive integer"
            ) from None

    def optional_payment_id(self, name: str = "pg_payment_id") -> int | None:
        """An optional payment id."""
        return None if self.text(name) is None else self.payment_id(name)

    def integer(self, name: str) -> int:
        """A required non-negative integer."""
        text = self.required_text(name).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > _MAX_INT_DIGITS:
            raise ValidationError(f"{self.kind} has a non-numeric {name}")
        return int(text)

    def choice(self, name: str, allowed: frozenset[str]) -> str:
        """A required value that must be one of ``allowed`` (compared stripped)."""
        text = self.required_text(name).strip()
        if text not in allowed:
            raise ValidationError(f"{self.kind} has a {name} outside {sorted(allowed)}")
        return text

    def currency(self, name: str, *, required: bool) -> str | None:
        """A currency code: three ASCII letters (ISO 4217), None when optional and absent."""
        raw = self.required_text(name) if required else self.text(name)
        if raw is None:
            return None
        text = raw.strip()
        if not (len(text) == 3 and text.isascii() and text.isalpha()):
            raise ValidationError(f"{self.kind} has a {name} that is not a currency code")
        return raw

    def optional_integer(self, name: str) -> int | None:
        """An optional non-negative integer."""
        return None if self.text(name) is None else self.integer(name)

    def decimal(self, name: str) -> Decimal:
        """A required decimal amount (digits, optional sign and fraction; no exponent)."""
        text = self.required_text(name).strip()
        if not _DECIMAL.fullmatch(text):
            raise ValidationError(f"{self.kind} has a non-decimal {name}")
        return Decimal(text)

    def optional_decimal(self, name: str) -> Decimal | None:
        """An optional decimal amount."""
        return None if self.text(name) is None else self.decimal(name)

    def flag(self, name: str) -> bool | None:
        """A 0/1 flag (also true/false), None when absent or empty."""
        raw = self.text(name)
        if raw is None:
            return None
        text = raw.strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false"):
            return False
        raise ValidationError(f"{self.kind} has a {name} that is neither 0 nor 1")
