"""``multipart/form-data``: signed fields rendered once as bytes, and the one reader.

aiohttp's ``FormData`` sends str-only fields urlencoded unless told otherwise and picks
its own boundary; rendering ourselves gives a deterministic body that is signed once and
re-sent byte for byte on every retry. :func:`parse_multipart` reads such a body back
(the merchant side's callbacks, the sandbox's requests) the way PHP does: each part's
``name`` and raw value, ``filename`` and part headers ignored.
"""

from __future__ import annotations

import random
import re
from urllib.parse import unquote

from .._exceptions import ValidationError
from .fields import (
    Fields,
    form_pairs,
)

__all__ = ["multipart_boundary", "parse_multipart", "render_multipart"]


def _quote_name(name: str) -> str:
    # Field names are ours (pg_*), but escape as browsers do so nothing can break framing.
    return name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


# Part headers by field name: the same few pg_* names on every request. Bounded, so
# names a caller makes up cannot grow it without limit.
_HEADS: dict[str, bytes] = {}
_HEADS_MAX = 512


def _part_head(name: str) -> bytes:
    head = _HEADS.get(name)
    if head is None:
        head = (
            b'\r\nContent-Disposition: form-data; name="'
            + _quote_name(name).encode("utf-8")
            + b'"\r\n\r\n'
        )
        if len(_HEADS) < _HEADS_MAX:
            _HEADS[name] = head
    return head


def render_multipart(fields: Fields, boundary: str | None = None) -> tuple[bytes, str]:
    """Return ``(body, content_type)`` for ``fields`` in tree order, nested names in brackets."""
    pairs = [(_part_head(name), value.encode("utf-8")) for name, value in form_pairs(fields)]
    while True:
        # A boundary must not occur inside any part; a random one practically never does,
        # and the check below makes sure. It needs no secrecy, so it comes from `random`:
        # the os.urandom() system call it replaces took ~2.5% of a cancel's CPU time.
        mark = (boundary or f"fp{random.getrandbits(128):032x}").encode("ascii")
        if not any(mark in value for _, value in pairs):
            break
        if boundary is not None:
            raise ValueError("the given boundary occurs inside a field value")
    dash = b"--" + mark
    chunks: list[bytes] = []
    for head, value in pairs:
        chunks += (dash, head, value, b"\r\n")
    chunks += (dash, b"--\r\n")
    return b"".join(chunks), "multipart/form-data; boundary=" + mark.decode("ascii")


# --- reading -----------------------------------------------------------------------

_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_MAX_BOUNDARY = 200


def multipart_boundary(content_type: str) -> str | None:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type, or None."""
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != "multipart/form-data":
        return None
    for key, raw in _PARAM.findall(";" + params):
        if key.lower() == "boundary":
            value = _unquote_param(raw)
            return value if 0 < len(value) <= _MAX_BOUNDARY else None
    return None


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"multipart {what} is not valid UTF-8") from None


def _unquote_param(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
    return raw


def _part_name(headers: list[str]) -> str | None:
    for line in headers:
        key, sep, value = line.partition(":")
        if not sep or key.strip().lower() != "content-disposition":
            continue
        disposition, *_ = value.split(";", 1)
        if disposition.strip().lower() != "form-data":
            break
        params = {k.lower(): v for k, v in _PARAM.findall(value[len(disposition) :])}
        if "name*" in params:  # RFC 5987: charset'language'percent-encoded
            charset, _, rest = params["name*"].strip().partition("'")
            _, _, encoded = rest.partition("'")
            if charset.lower() not in ("utf-8", "utf8"):
                raise ValidationError("multipart field name in an unsupported charset")
            try:
                return unquote(encoded, errors="strict")
            except UnicodeDecodeError:
                raise ValidationError("multipart field name is not valid UTF-8") from None
        if "name" in params:
            name = _unquote_param(params["name"])
            # Browsers (and the WHATWG parser) escape these three in field names.
            return name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
        break
    return None


def parse_multipart(
    body: bytes, boundary: str | None, *, skip_nameless: bool = False
) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a ``multipart/form-data`` body, in body order.

    CRLF line ends, as RFC 7578 requires; a preamble and an epilogue are ignored. A part
    without a form-data name is a ValidationError, or skipped (as PHP skips it) with
    ``skip_nameless``. Raises ValidationError for a body that is not well framed or text
    that is not UTF-8.
    """
    if not boundary or len(boundary) > _MAX_BOUNDARY or not boundary.isascii():
        raise ValidationError("multipart body without a usable boundary")
    delimiter = b"--" + boundary.encode("ascii")
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        first = body.find(b"\r\n" + delimiter)  # skip a preamble
        if first == -1:
            raise ValidationError("multipart body without its boundary")
        pos = first + 2 + len(delimiter)
    pairs: list[tuple[str, str]] = []
    while True:
        if body.startswith(b"--", pos):
            return pairs  # the close delimiter; an epilogue is ignored
        line_end = body.find(b"\r\n", pos)
        if line_end == -1 or body[pos:line_end].strip(b" \t"):
            raise ValidationError("malformed multipart delimiter line")
        pos = line_end + 2
        header_end = pos if body.startswith(b"\r\n", pos) else body.find(b"\r\n\r\n", pos)
        if header_end == -1:
            raise ValidationError("multipart part with unterminated headers")
        headers = _utf8(body[pos:header_end], "header").split("\r\n")
        content_start = header_end + (2 if header_end == pos else 4)
        content_end = body.find(b"\r\n" + delimiter, content_start)
        if content_end == -1:
            raise ValidationError("multipart body is truncated")
        name = _part_name(headers)
        if name is not None:
            pairs.append((name, _utf8(body[content_start:content_end], "field")))
        elif not skip_nameless:
            raise ValidationError("multipart part without a form-data name")
        pos = content_end + 2 + len(delimiter)
