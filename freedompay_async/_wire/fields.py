"""The field tree every signed Freedom Pay message is made of, and its wire forms.

A message is an ordered sequence of ``(name, value)`` pairs. A value is a string or,
for nested data, another such sequence. Order is the order on the wire (form fields as
posted, XML elements in document order) and matters for the signature's position
suffixes. The same name may appear more than once (repeated XML elements).

Form posts carry nesting in bracket notation: ``pg_receipt_positions[0][count]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TypeAlias

from .._exceptions import ValidationError

FieldValue: TypeAlias = "str | Sequence[tuple[str, FieldValue]]"
Fields: TypeAlias = Sequence[tuple[str, FieldValue]]

__all__ = ["FieldValue", "Fields", "form_pairs", "from_form_pairs", "php_str", "split_bracket_name"]


def php_str(value: object) -> str:
    """Render a scalar the way PHP's string cast does, so both sides sign the same text.

    ``True`` is ``"1"``, ``False`` and ``None`` are ``""``; integers and ``Decimal`` keep
    their exact digits, a ``Decimal`` always in positional notation (``1E+2`` is
    ``100``). Floats (``10.0`` would sign as ``"10.0"`` here and ``"10"`` in PHP) and
    every other type are refused with ValidationError; so is a non-finite ``Decimal``
    (PHP has no such value) and an integer over 18 digits (PHP's int ends there, and a
    huge one would cost quadratic time to render).
    """
    if isinstance(value, str):
        return value
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, int):
        if -(10**18) < value < 10**18:
            return str(value)
        raise ValidationError("cannot sign an integer of more than 18 digits")
    if isinstance(value, Decimal):
        # Positional digits, never str()'s exponent form: Decimal("1E+2") must go out
        # as "100", which is what the gateway parses and PHP's cast would sign.
        exponent = value.as_tuple().exponent  # a letter for NaN and infinities
        if isinstance(exponent, int) and exponent >= -64 and value.adjusted() < 64:
            return format(value, "f")
        raise ValidationError("cannot sign a non-finite or absurdly large Decimal")
    raise ValidationError(
        f"cannot sign a value of type {type(value).__name__}; pass str, int or Decimal"
    )


def form_pairs(fields: Fields) -> list[tuple[str, str]]:
    """Flatten a field tree into ``(bracket_name, value)`` pairs in tree order."""
    out: list[tuple[str, str]] = []
    _form_walk(fields, None, out)
    return out


def _form_walk(fields: Fields, prefix: str | None, out: list[tuple[str, str]]) -> None:
    for key, value in fields:
        name = key if prefix is None else f"{prefix}[{key}]"
        if isinstance(value, str):
            out.append((name, value))
        else:
            _form_walk(value, name, out)


def split_bracket_name(name: str) -> list[str]:
    """``a[0][b]`` -> ``["a", "0", "b"]``; a name without well-formed brackets is one part."""
    head, sep, rest = name.partition("[")
    if not sep or not head or not rest.endswith("]"):
        return [name]
    inner = rest[:-1].split("][")
    if any("[" in part or "]" in part for part in inner):
        return [name]
    return [head, *inner]


def from_form_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, FieldValue]]:
    """Rebuild a field tree from posted ``(bracket_name, value)`` pairs.

    Nested groups appear where their first member appeared, as PHP's ``$_POST`` builds
    them. A plain name posted twice is kept twice, in order (PHP would keep the last
    one; keeping both means a duplicated field never verifies against a signature made
    over just one of them).
    """
    root: list[tuple[str, FieldValue]] = []
    groups: dict[tuple[str, ...], list[tuple[str, FieldValue]]] = {(): root}
    for name, value in pairs:
        parts = split_bracket_name(name)
        if len(parts) == 1:
            root.append((name, value))
            continue
        parent = root
        path: tuple[str, ...] = ()
        for part in parts[:-1]:
            path = (*path, part)
            group = groups.get(path)
            if group is None:
                group = []
                groups[path] = group
                parent.append((part, group))
            parent = group
        parent.append((parts[-1], value))
    return root
