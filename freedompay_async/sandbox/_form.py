"""A small, fast ``multipart/form-data`` reader for the sandbox's hot path.

aiohttp's ``request.post()`` spends most of a cancel request's server time parsing
``Content-Disposition`` headers. This reader does what PHP (the real gateway's side)
does with a form post: it takes each part's ``name`` (and ignores ``filename``,
``Content-Type`` and ``Content-Transfer-Encoding``) and keeps the raw value, decoded
as UTF-8. Anything it cannot frame returns None.
"""

from __future__ import annotations

import re

__all__ = ["multipart_boundary", "parse_multipart"]

_NAME = re.compile(r'(?:^|;)\s*name\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^";\s]+))', re.IGNORECASE)
_BACKSLASH = re.compile(r"\\(.)")


def multipart_boundary(content_type: str) -> str | None:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type, or None."""
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value if 0 < len(value) <= 200 else None
    return None


def _part_name(headers: bytes) -> str | None:
    for line in headers.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        kind, _, params = value.partition(";")
        if kind.strip().lower() != "form-data":
            return None
        match = _NAME.search(";" + params)
        if match is None:
            return None
        quoted, bare = match.groups()
        return _BACKSLASH.sub(r"\1", quoted) if quoted is not None else bare
    return None


def parse_multipart(body: bytes, boundary: str) -> list[tuple[str, str]] | None:
    """``(name, value)`` pairs in body order, or None if the body is not well framed."""
    delimiter = b"\r\n--" + boundary.encode("latin-1", "replace")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        return None
    pairs: list[tuple[str, str]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return pairs  # the close delimiter; the epilogue is ignored
        line_end = chunk.find(b"\r\n")
        if line_end == -1 or chunk[:line_end].strip(b" \t"):
            return None
        rest = chunk[line_end + 2 :]
        if rest.startswith(b"\r\n"):
            continue  # a part without headers has no name: skipped, as PHP does
        split = rest.find(b"\r\n\r\n")
        if split == -1:
            return None
        name = _part_name(rest[:split])
        if name is not None:
            pairs.append((name, rest[split + 4 :].decode("utf-8", "replace")))
    return None  # no close delimiter: truncated
