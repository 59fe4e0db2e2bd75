"""Render signed fields as one ``multipart/form-data`` body, once, as bytes.

aiohttp's ``FormData`` sends str-only fields urlencoded unless told otherwise and picks
its own boundary; rendering ourselves gives a deterministic body that is signed once and
re-sent byte for byte on every retry.
"""

from __future__ import annotations

import secrets

from ._fields import Fields, form_pairs

__all__ = ["render_multipart"]


def _quote_name(name: str) -> str:
    # Field names are ours (pg_*), but escape as browsers do so nothing can break framing.
    return name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def render_multipart(fields: Fields, boundary: str | None = None) -> tuple[bytes, str]:
    """Return ``(body, content_type)`` for ``fields`` in tree order, nested names in brackets."""
    pairs = [
        (_quote_name(name).encode("utf-8"), value.encode("utf-8"))
        for name, value in form_pairs(fields)
    ]
    while True:
        mark = (boundary or "fp" + secrets.token_hex(16)).encode("ascii")
        # A boundary must not occur inside any part; a random one practically never does.
        if not any(mark in value for _, value in pairs):
            break
        if boundary is not None:
            raise ValueError("the given boundary occurs inside a field value")
    dash = b"--" + mark
    chunks: list[bytes] = []
    for name, value in pairs:
        chunks += (
            dash,
            b'\r\nContent-Disposition: form-data; name="',
            name,
            b'"\r\n\r\n',
            value,
            b"\r\n",
        )
    chunks += (dash, b"--\r\n")
    return b"".join(chunks), "multipart/form-data; boundary=" + mark.decode("ascii")
