"""Error text for an operator's screen: one printable line per error.

A garbled reply's excerpt can hold anything (gzip magic, NUL bytes, U+FFFD where bytes
did not decode, terminal escapes). Printed as it is, it garbles the line and can drive
the terminal; printed as a Python ``repr`` it shows ``\\x1f\\x00`` escapes. Here every
character that does not print is shown as ``.``, as a hex dump's text column does.
"""

from __future__ import annotations

from .._exceptions import FreedomPayError, ReplyError

__all__ = ["describe", "printable"]

_UNDECODED = "\ufffd"


def printable(text: str) -> str:
    """``text`` with every character that does not print (control characters, U+FFFD
    standing for undecodable bytes, line breaks) shown as ``.``."""
    if text.isprintable() and _UNDECODED not in text:
        return text
    return "".join(ch if ch.isprintable() and ch != _UNDECODED else "." for ch in text)


def describe(error: FreedomPayError, *, limit: int = 300) -> str:
    """One printable line about ``error``: its message, payment, HTTP status and, for a
    reply that could not be used, an excerpt of the body in quotes."""
    if not isinstance(error, ReplyError):
        return printable(str(error))[:limit]
    text = error.message
    if error.payment_id is not None:
        text += f" (payment {error.payment_id})"
    if error.http_status is not None:
        text += f" [HTTP {error.http_status}]"
    if error.body_excerpt:
        text += f": '{error.body_excerpt}'"
    return printable(text)[:limit]
