"""Parse a gateway XML reply into a field tree, in document order, safely."""

from __future__ import annotations

from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from ._fields import FieldValue

__all__ = ["XMLReplyError", "parse_xml_fields"]


class XMLReplyError(ValueError):
    """The body is not a well-formed XML document with a root element."""


def _convert(value: Any) -> FieldValue:
    """xmltodict value -> field value. Attributes are ignored, as the reference does."""
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
                if len(value) == 1 or all(k.startswith("@") or k == "#text" for k in value):
                    return str(child)
                continue
            if isinstance(child, list):
                children.extend((key, _convert(item)) for item in child)
            else:
                children.append((key, _convert(child)))
        return children
    return str(value)


def parse_xml_fields(body: bytes) -> tuple[str, list[tuple[str, FieldValue]]]:
    """Return ``(root_name, fields)`` of an XML document. Entity declarations are refused.

    Same-name sibling elements keep their document order among themselves. xmltodict
    groups them where the first one stands, so a reply that interleaves them with other
    elements (no documented reply does) flattens differently from the sender's view and
    fails verification: it fails closed, never open.
    """
    try:
        parsed = xmltodict.parse(body, disable_entities=True)
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
