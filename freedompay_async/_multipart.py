"""Render signed fields as one ``multipart/form-data`` body, once, as bytes.

aiohttp's ``FormData`` sends str-only fields urlencoded unless told otherwise and picks
its own boundary; rendering ourselves gives a deterministic body that is signed once and
re-sent byte for byte on every retry.
"""

from __future__ import annotations

import random

from ._fields import Fields, form_pairs

__all__ = ["render_multipart"]


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
