"""Salts and the md5 constructor every signature of the default signer uses.

Salts come from a :class:`SaltPool`: one ``os.urandom`` read cut into many 16-hex-digit
salts, each handed out once, instead of a system call per request.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, cast

__all__ = ["SaltPool", "new_md5", "take_salt"]


def _openssl_md5(data: bytes = b"") -> Any:
    return hashlib.md5(data, usedforsecurity=False)


def _pick_md5() -> Callable[[bytes], Any]:
    """CPython's built-in md5 when present: for the few dozen bytes of a pre-image it
    costs about half of what setting up an OpenSSL digest context does (same digest)."""
    try:
        import _md5  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # an interpreter built without it
        return _openssl_md5
    return cast("Callable[[bytes], Any]", _md5.md5)


new_md5 = _pick_md5()

_SALT_HEX = 16  # the same length as secrets.token_hex(8)
_POOL_SALTS = 256


class SaltPool:
    """Salts of 16 lowercase hex digits cut from one ``os.urandom`` read, each used once."""

    __slots__ = ("_hex", "_pos", "_salts")

    def __init__(self, salts: int = _POOL_SALTS) -> None:
        self._salts = salts
        self._hex = ""
        self._pos = 0

    def refill(self) -> None:
        """Drop what is left and read a fresh buffer (after a fork, so no salt repeats)."""
        self._hex = os.urandom(self._salts * _SALT_HEX // 2).hex()
        self._pos = 0

    def take(self) -> str:
        """The next unused salt."""
        pos = self._pos
        end = pos + _SALT_HEX
        if end > len(self._hex):
            self.refill()
            pos, end = 0, _SALT_HEX
        self._pos = end
        return self._hex[pos:end]


_POOL = SaltPool()
# A forked child must not hand out the salts its parent is handing out too.
os.register_at_fork(after_in_child=_POOL.refill)
take_salt = _POOL.take
