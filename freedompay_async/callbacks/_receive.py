"""Receiving a merchant-side message: script name, input limits, and the field tree.

What arrives (form pairs, a mapping, an XML body or a ``pg_xml`` field) becomes one
field tree, in the order received, before anything is verified. Limits are enforced
here: nesting depth, and text that cannot be signed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias
from urllib.parse import parse_qsl, urlsplit

import attrs

from .._exceptions import ConfigurationError, ValidationError
from .._wire.fields import (
    Fields,
    FieldValue,
    from_form_pairs,
    split_bracket_name,
)
from .._wire.signing import script_name
from .._wire.xml import (
    XMLReplyError,
    parse_xml_fields,
)

__all__ = [
    "SIG",
    "CallbackFields",
    "Received",
    "callback_script_name",
    "is_text",
    "nested_signature",
    "receive",
]

#: What the verify functions accept: the received ``(name, value)`` pairs in order
#: (duplicates kept; bracket names such as ``a[0][b]`` are rebuilt into a tree), a
#: mapping of name to value, or the raw bytes of an XML body (XML request mode).
CallbackFields: TypeAlias = Sequence[tuple[str, str]] | Mapping[str, str] | bytes

SIG = "pg_sig"
#: The deepest nesting accepted in a callback (``a[b][c]`` is 3 levels; XML counts alike).
_MAX_DEPTH = 32


def callback_script_name(url: str) -> str:
    """The script name an incoming message to ``url`` is signed with; refuses ``""``.

    ``url`` is a full URL, a path, or a bare script name (``"result"``). A URL ending
    in ``/`` has an empty script name: whether the gateway signs with ``""`` or with
    the segment before the slash is not documented, so that is a ConfigurationError
    rather than a guess.
    """
    if not isinstance(url, str):
        raise ValidationError(f"url must be a str, not {type(url).__name__}")
    name = script_name(url)
    if not is_text(name):
        raise ValidationError("callback URL's script name is not valid Unicode text")
    if not name:
        path = re.split(r"[?#]", url, maxsplit=1)[0]
        raise ConfigurationError(
            f"callback URL {path[:200]!r} ends in '/', so its script name (the last path "
            "segment, which the signature covers) is empty and ambiguous; register the "
            "URL at Freedom Pay without a trailing slash, or pass url= explicitly"
        )
    return name


def is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (no lone surrogate), as the signature needs."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep() -> ValidationError:
    return ValidationError(f"callback fields are nested deeper than {_MAX_DEPTH} levels")


def _check_depth(tree: Fields) -> None:
    """Refuse a tree nested deeper than ``_MAX_DEPTH`` levels (walked without recursion)."""
    stack: list[tuple[Fields, int]] = [(tree, 1)]
    while stack:
        items, depth = stack.pop()
        for _key, value in items:
            if not isinstance(value, str):
                if depth >= _MAX_DEPTH:
                    raise _too_deep()
                stack.append((value, depth + 1))


def nested_signature(tree: Fields) -> bool:
    """Whether a ``pg_sig`` key stands anywhere below the top level (walked without recursion).

    The reference flattening skips every ``pg_sig`` key at any depth together with
    what it holds, so nothing under a nested one is covered by the signature.
    """
    stack: list[Fields] = [value for _key, value in tree if not isinstance(value, str)]
    while stack:
        for key, value in stack.pop():
            if key == SIG:
                return True
            if not isinstance(value, str):
                stack.append(value)
    return False


def _xml_tree(body: bytes) -> list[tuple[str, FieldValue]]:
    tree: list[tuple[str, FieldValue]] = []
    error: ValidationError | None = None
    try:
        _root, tree = parse_xml_fields(body)
    except XMLReplyError as exc:
        error = ValidationError(f"callback XML is not well-formed ({exc})")
    except RecursionError:
        error = _too_deep()
    if error is not None:
        raise error  # outside the handler: no parser state rides along as __context__
    _check_depth(tree)
    return tree


def _pairs(fields: Sequence[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    for pair in pairs:
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            raise ValidationError("callback fields must be (str, str) pairs")
        name, value = pair
        if not (is_text(name) and is_text(value)):
            # A lone surrogate (e.g. from surrogateescape decoding) cannot be signed.
            raise ValidationError("a callback field is not valid Unicode text")
        # Checked before the tree is built: a name thousands of brackets deep would
        # cost quadratic time and memory there.
        if name.count("[") >= _MAX_DEPTH and len(split_bracket_name(name)) > _MAX_DEPTH:
            raise _too_deep()
    return pairs


def _own_query(url: str) -> list[tuple[str, str]]:
    """The query parameters written into ``url`` itself (the merchant's, not the gateway's)."""
    query = urlsplit(url).query
    try:
        return parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return []


@attrs.frozen
class Received:
    """A received message: its tree, and the tree without the URL's own query, if it has one."""

    tree: list[tuple[str, FieldValue]]
    without_own_query: list[tuple[str, FieldValue]] | None = None


def receive(url: str, fields: CallbackFields) -> Received:
    if isinstance(fields, bytes | bytearray | memoryview):
        return Received(_xml_tree(bytes(fields)))
    pairs = _pairs(fields)
    tree = from_form_pairs(pairs)
    _check_depth(tree)
    xml = [value for key, value in tree if key == "pg_xml"]
    if xml:
        document = xml[0]
        if len(tree) != 1 or not isinstance(document, str):
            raise ValidationError("pg_xml must be the only field of an XML-mode callback")
        return Received(_xml_tree(document.encode("utf-8")))
    # A GET callback to a URL with a query string of its own: the gateway appends its
    # fields after the merchant's. When ``url`` is the configured URL, its own query is
    # the leading run of received pairs, and the gateway may have signed only the rest.
    own = _own_query(url)
    if (
        own
        and len(pairs) > len(own)
        and pairs[: len(own)] == own
        and all(name != SIG for name, _ in own)
    ):
        return Received(tree, from_form_pairs(pairs[len(own) :]))
    return Received(tree)
