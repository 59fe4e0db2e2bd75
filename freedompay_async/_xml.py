"""Parse a gateway XML reply into a field tree, in document order, safely."""

from __future__ import annotations

import re
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from ._fields import FieldValue

__all__ = ["XMLReplyError", "parse_xml_fields"]


class XMLReplyError(ValueError):
    """The body is not a well-formed XML document with a root element."""


# The fast path: a deliberately narrow, regular subset of XML that every gateway success
# reply falls in: an optional plain XML declaration (version 1.0, UTF-8 or no encoding),
# one root element without attributes, and one level of children without attributes,
# each holding printable-ASCII text with no markup, entity or "]" in it, and no name
# twice. For such a document expat is certain to accept it and xmltodict to give the
# tree built here, so this answers without the ~15 us per reply of pyexpat callbacks.
# Anything else (attributes, nesting, entities, CDATA, comments, non-ASCII text, CR in
# text, a repeated name, another encoding...) returns None and takes the full parser,
# which stays the only authority on malformed input.

#: Element text is never stripped: the gateway signs values exactly as sent, so a
#: stripped " x " would fail verification (xmltodict strips by default).
_STRIP_TEXT = False

_WS = rb"[ \t\r\n]*"
_NAME = rb"[A-Za-z_][A-Za-z0-9_.\-]*"
_TEXT = rb"[\t\n\x20-\x25\x27-\x3b\x3d\x3f-\x5c\x5e-\x7e]*"
_DECL = (
    rb"<\?xml[ \t\r\n]+version=(?:\"1\.0\"|'1\.0')"
    rb"(?:[ \t\r\n]+encoding=(?:\"(?i:utf-8)\"|'(?i:utf-8)'))?[ \t\r\n]*\?>"
)
_FLAT_DOC = re.compile(
    rb"(?:" + _DECL + rb")?" + _WS
    + rb"<(" + _NAME + rb")>"
    + rb"((?:" + _WS + rb"<(" + _NAME + rb")>" + _TEXT + rb"</\3>)+)"
    + _WS + rb"</\1>" + _WS
)  # fmt: skip
_FLAT_CHILD = re.compile(_WS + rb"<(" + _NAME + rb")>(" + _TEXT + rb")</\1>")


def _parse_flat(body: bytes) -> tuple[str, list[tuple[str, FieldValue]]] | None:
    """``(root, fields)`` for a document in the narrow flat subset above, else None."""
    match = _FLAT_DOC.fullmatch(body)
    if match is None:
        return None
    fields: list[tuple[str, FieldValue]] = [
        (
            name.decode("ascii"),
            text.decode("ascii").strip() if _STRIP_TEXT else text.decode("ascii"),
        )
        for name, text in _FLAT_CHILD.findall(body, match.start(2), match.end(2))
    ]
    if len({name for name, _ in fields}) != len(fields):
        return None  # xmltodict groups repeated names: leave their order to it
    return match.group(1).decode("ascii"), fields


#: Deepest element nesting accepted in a reply; no documented reply nests beyond 3.
MAX_DEPTH = 32


def _convert(value: Any, depth: int = 1) -> FieldValue:
    """xmltodict value -> field value. Attributes are ignored, as the reference does."""
    if depth > MAX_DEPTH:
        raise XMLReplyError(f"elements nested deeper than {MAX_DEPTH} levels")
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        children: list[tuple[str, FieldValue]] = []
        for key, child in value.items():
            if key.startswith("@"):
                continue
            if key == "#text":
                if all(k.startswith("@") or k == "#text" for k in value):
                    return str(child)
                continue  # whitespace (or stray text) between child elements
            if isinstance(child, list):
                children.extend((key, _convert(item, depth + 1)) for item in child)
            else:
                children.append((key, _convert(child, depth + 1)))
        return children
    return str(value)


def parse_xml_fields(body: bytes) -> tuple[str, list[tuple[str, FieldValue]]]:
    """Return ``(root_name, fields)`` of an XML document. Entity declarations are refused.

    Same-name sibling elements keep their document order among themselves. xmltodict
    groups them where the first one stands, so a reply that interleaves them with other
    elements (no documented reply does) flattens differently from the sender's view and
    fails verification: it fails closed, never open.
    """
    flat = _parse_flat(body)
    return flat if flat is not None else parse_with_xmltodict(body)


def parse_with_xmltodict(body: bytes) -> tuple[str, list[tuple[str, FieldValue]]]:
    """The full parser behind :func:`parse_xml_fields`, the authority on any document."""
    try:
        parsed = xmltodict.parse(body, disable_entities=True, strip_whitespace=_STRIP_TEXT)
    except (ExpatError, ValueError) as exc:
        raise XMLReplyError(str(exc)) from exc
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise XMLReplyError("no single root element")
    root, content = next(iter(parsed.items()))
    converted = _convert(content)
    if isinstance(converted, str):
        # <response/> or <response>text</response>: a root with no child elements.
        return root, []
    return root, list(converted)
