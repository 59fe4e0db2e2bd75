"""The gateway's ``<response>`` XML document: read safely into a field tree, and written.

:func:`parse_xml_fields` reads a reply (or an XML-mode callback) into fields in
document order; :func:`render_response` and :func:`signed_response` are the one writer
of the document, used for the merchant's callback answers, the sandbox's replies and
test fixtures alike.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any
from xml.parsers import expat
from xml.parsers.expat import ExpatError

import xmltodict

from .._exceptions import ValidationError
from .fields import (
    Fields,
    FieldValue,
)
from .signing import Signer

__all__ = [
    "XMLReplyError",
    "parse_xml_fields",
    "render_response",
    "sign_response_fields",
    "signed_response",
]


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


#: Deepest element nesting accepted in a reply by default; no documented reply nests
#: beyond 3. ``Limits.max_xml_depth`` sets it per session.
MAX_DEPTH = 32
#: Most elements accepted in one document by default (the root included): a status
#: reply listing hundreds of refunds stays far below. ``Limits.max_xml_elements``.
MAX_ELEMENTS = 10_000


class _Budget:
    """Counts elements and depth *while* expat parses, and stops it at a limit.

    A handler that raises aborts ``Parse`` at once, so a 100,000-deep or 130,000-wide
    document costs the parse of at most the limit's worth of elements, never the
    whole tree.
    """

    __slots__ = ("depth", "elements", "max_depth", "max_elements")

    def __init__(self, max_depth: int, max_elements: int) -> None:
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.depth = 0
        self.elements = 0

    def enter(self) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > self.max_depth:
            raise XMLReplyError(f"elements nested deeper than {self.max_depth} levels")
        if self.elements > self.max_elements:
            raise XMLReplyError(f"more than {self.max_elements} elements")

    def leave(self) -> None:
        self.depth -= 1


class _BoundedParser:
    """An expat parser whose element handlers, as xmltodict installs them, are counted."""

    def __init__(self, parser: Any, budget: _Budget) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_budget", budget)

    def __setattr__(self, name: str, value: Any) -> None:
        budget: _Budget = object.__getattribute__(self, "_budget")
        if name == "StartElementHandler":
            start = value

            def counted_start(*args: Any) -> None:
                budget.enter()
                start(*args)

            value = counted_start
        elif name == "EndElementHandler":
            end = value

            def counted_end(*args: Any) -> None:
                budget.leave()
                end(*args)

            value = counted_end
        setattr(object.__getattribute__(self, "_parser"), name, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_parser"), name)


class _BoundedExpat:
    """The ``expat`` module as xmltodict uses it (``ParserCreate``), with a budget."""

    def __init__(self, budget: _Budget) -> None:
        self._budget = budget

    def ParserCreate(self, *args: Any) -> _BoundedParser:
        return _BoundedParser(expat.ParserCreate(*args), self._budget)


def _convert(value: Any, depth: int = 1, max_depth: int = MAX_DEPTH) -> FieldValue:
    """xmltodict value -> field value. Attributes are ignored, as the reference does."""
    if depth > max_depth:
        raise XMLReplyError(f"elements nested deeper than {max_depth} levels")
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
                children.extend((key, _convert(item, depth + 1, max_depth)) for item in child)
            else:
                children.append((key, _convert(child, depth + 1, max_depth)))
        return children
    return str(value)


def parse_xml_fields(
    body: bytes, *, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS
) -> tuple[str, list[tuple[str, FieldValue]]]:
    """Return ``(root_name, fields)`` of an XML document. Entity declarations are refused.

    Parse work is bounded: more than ``max_elements`` elements (the root included) or
    nesting deeper than ``max_depth`` is an XMLReplyError, detected while parsing (and,
    for the element count, by a cheap count of ``<`` before parsing starts: every
    element needs at least one and at most two, so a document with more than
    ``2 * max_elements + 16`` of them is refused unparsed).

    Same-name sibling elements keep their document order among themselves. xmltodict
    groups them where the first one stands, so a reply that interleaves them with other
    elements (no documented reply does) flattens differently from the sender's view and
    fails verification: it fails closed, never open.
    """
    if body.count(b"<") > 2 * max_elements + 16:
        raise XMLReplyError(f"more than {max_elements} elements")
    flat = _parse_flat(body)
    if flat is not None and len(flat[1]) < max_elements and max_depth >= 2:
        return flat
    return parse_with_xmltodict(body, max_depth=max_depth, max_elements=max_elements)


def parse_with_xmltodict(
    body: bytes, *, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS
) -> tuple[str, list[tuple[str, FieldValue]]]:
    """The full parser behind :func:`parse_xml_fields`, the authority on any document."""
    budget = _Budget(max_depth, max_elements)
    try:
        parsed = xmltodict.parse(
            body,
            disable_entities=True,
            strip_whitespace=_STRIP_TEXT,
            expat=_BoundedExpat(budget),
        )
    except XMLReplyError:
        raise
    except (ExpatError, ValueError) as exc:
        raise XMLReplyError(str(exc)) from exc
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise XMLReplyError("no single root element")
    root, content = next(iter(parsed.items()))
    converted = _convert(content, 1, max_depth)
    if isinstance(converted, str):
        # <response/> or <response>text</response>: a root with no child elements.
        return root, []
    return root, list(converted)


# --- writing -------------------------------------------------------------------------

_PROLOG = '<?xml version="1.0" encoding="utf-8"?>'
# Characters XML 1.0 cannot carry at all (even as character references).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _text(name: str, value: str) -> str:
    if _XML_INVALID.search(value):
        raise ValidationError(f"{name[:60]} holds a character XML cannot carry")
    # A literal CR would reach the reader's parser as LF; a character reference keeps it.
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _check(fields: Fields, depth: int = 1) -> None:
    """Refuse what cannot be written (before anything is signed)."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"fields nested deeper than {MAX_DEPTH} levels")
    for name, value in fields:
        if not isinstance(name, str) or not _XML_NAME.fullmatch(name):
            raise ValidationError(f"{str(name)[:60]!r} is not a usable XML element name")
        if isinstance(value, str):
            _text(name, value)
        else:
            _check(value, depth + 1)


def _elements(fields: Fields, out: list[str], indent: str | None, level: int) -> None:
    pad = "" if indent is None else "\n" + indent * level
    for name, value in fields:
        if isinstance(value, str):
            out.append(f"{pad}<{name}>{_text(name, value)}</{name}>")
        else:
            out.append(f"{pad}<{name}>")
            _elements(value, out, indent, level + 1)
            out.append(f"{pad}</{name}>")


def render_response(fields: Fields, *, pretty: bool = False) -> bytes:
    """``<?xml ...?><response>`` with one escaped element per field, as UTF-8 bytes.

    Nested values become child elements. ``pretty`` puts each element on its own
    indented line, as the gateway's documented samples are laid out. Raises
    ValidationError for a name or a character XML cannot carry.
    """
    _check(fields)
    out = [_PROLOG, "\n<response>" if pretty else "<response>"]
    _elements(fields, out, "    " if pretty else None, 1)
    out.append("\n</response>\n" if pretty else "</response>")
    return "".join(out).encode("utf-8")


def sign_response_fields(
    script: str,
    signer: Signer,
    fields: Sequence[tuple[str, FieldValue]],
    *,
    salt: str | None = None,
) -> list[tuple[str, FieldValue]]:
    """``fields`` with ``pg_salt`` (fresh and random unless given) and ``pg_sig`` appended.

    Everything is checked writable first, so nothing unwritable is ever signed.
    """
    if salt is None:
        salt = secrets.token_hex(8)
    elif not isinstance(salt, str) or not salt:
        raise ValidationError("salt must be a non-empty string")
    signed: list[tuple[str, FieldValue]] = [*fields, ("pg_salt", salt)]
    _check(signed)
    signed.append(("pg_sig", signer.sign(script, signed)))
    return signed


def signed_response(
    script: str,
    signer: Signer,
    fields: Sequence[tuple[str, FieldValue]],
    *,
    salt: str | None = None,
    pretty: bool = False,
) -> bytes:
    """The signed ``<response>`` document: ``fields``, ``pg_salt`` and ``pg_sig``.

    ``script`` is the script name the reader verifies with (``cancel`` for a
    ``/g2g/cancel`` reply, the callback URL's last path segment for a merchant's
    answer). Used by callback answers, the sandbox, tests and benchmarks.
    """
    return render_response(sign_response_fields(script, signer, fields, salt=salt), pretty=pretty)
