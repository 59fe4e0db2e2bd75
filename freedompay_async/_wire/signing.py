"""Signing strategies: the documented md5 ``pg_sig`` and key rotation on top of it.

The documented rule (Freedom Pay "Gateway API / Introduction", same text on every
regional site): join with ``;`` the called script's name, the values of all fields in
alphabetical order of their names (``pg_salt`` included, ``pg_sig`` excluded, empty
values included), and the secret key; ``pg_sig`` is the md5 of that string in
lowercase hex.

Nested fields follow the PayBox reference ``makeFlatParamsArray`` / ``makeFlatParamsXML``
(third-party copies of the legacy official SDK): every key gets its 1-based position
among its siblings as a 3-digit suffix (``pg_sig`` uses up a position too), children are
prefixed with their parent's flat name, and the flat names are sorted byte-wise. That
keeps a nested group's values together, ordered inside their parent, and same-name XML
elements in document order.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import attrs

from .._exceptions import (
    ConfigurationError,
    ValidationError,
)
from .fields import Fields

__all__ = [
    "Md5Signer",
    "RotatingSigner",
    "Signer",
    "flatten",
    "script_name",
    "signature_string",
]

SIG = "pg_sig"


def script_name(url: str) -> str:
    """The script name a URL is signed with: its last path segment, query and fragment cut.

    ``https://api.freedompay.kz/g2g/cancel?x=1`` -> ``cancel``;
    ``/init_payment.php`` -> ``init_payment.php``. A URL ending in ``/`` gives ``""``.
    """
    end = len(url)
    for stop in ("?", "#"):
        pos = url.find(stop)
        if pos != -1 and pos < end:
            end = pos
    path = url[:end]
    return path[path.rfind("/") + 1 :]


#: Deepest nesting accepted in a signed message; no documented message nests beyond 3.
MAX_DEPTH = 32


def flatten(fields: Fields) -> dict[str, str]:
    """Flatten a field tree into ``{flat_name: value}`` as the PayBox reference does.

    Raises ValidationError for trees nested deeper than ``MAX_DEPTH``.
    """
    out: dict[str, str] = {}
    _flatten_into(fields, "", out, 1)
    return out


def _flatten_into(fields: Fields, prefix: str, out: dict[str, str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"fields nested deeper than {MAX_DEPTH} levels")
    position = 0
    for key, value in fields:
        position += 1
        if key == SIG:
            continue
        name = f"{prefix}{key}{position:03d}"
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, list | tuple):
            _flatten_into(value, name, out, depth + 1)
        else:
            raise ValidationError(
                f"field {str(key)[:60]!r} is a {type(value).__name__}, not text or a group"
            )


def _values_in_order(fields: Fields) -> list[str]:
    # Fast path for the common flat message: with no nesting, no repeated name and no
    # name that continues another name with a character sorting at or below "9" (the
    # suffix digits), sorting the names themselves gives the same order as sorting the
    # suffixed flat names.
    plain: dict[str, str] = {}
    for key, value in fields:
        if not isinstance(value, str) or key in plain:
            flat = flatten(fields)
            return [flat[name] for name in sorted(flat)]
        if key != SIG:
            plain[key] = value
    names = sorted(plain)
    for first, second in itertools.pairwise(names):
        if second.startswith(first) and second[len(first)] <= "9":
            flat = flatten(fields)
            return [flat[name] for name in sorted(flat)]
    return [plain[name] for name in names]


def signature_string(script: str, fields: Fields, secret_key: str) -> str:
    """The md5 pre-image: ``script;value;value;...;secret_key``. Holds the secret: never log it.

    For tests and diagnosis only; :class:`Md5Signer` never builds it (see there).
    """
    return ";".join([script, *_values_in_order(fields), secret_key])


def _encoded_values(script: str, fields: Fields) -> list[bytes]:
    """``script`` and the values in signing order as UTF-8, checked **without the key**.

    Raises ValidationError for a value that is not text or not valid Unicode (a lone
    surrogate), or for a tree too deep. Nothing here has seen key material, so no
    frame of such a raise can hold any.
    """
    parts = [script, *_values_in_order(fields)]
    out: list[bytes] = []
    for part in parts:
        if not isinstance(part, str):
            raise ValidationError(
                f"a field value is a {type(part).__name__}, not text; render it first"
            )
        try:
            out.append(part.encode("utf-8"))
        except UnicodeEncodeError:
            out = []  # the error below is raised outside this handler: no __context__
            break
    if not out:
        raise ValidationError("a field value is not valid Unicode text (lone surrogate?)")
    return out


@runtime_checkable
class Signer(Protocol):
    """A signing strategy: signs outgoing field trees and verifies incoming ones.

    ``fields`` may contain a ``pg_sig`` entry; it takes part in nothing but position
    counting. Implementations must compare in constant time and must never put key
    material in a ``repr``, a log line or an exception message.
    """

    def sign(self, script: str, fields: Fields) -> str:
        """Return the signature of ``fields`` for the script named ``script``."""
        ...

    def verify(self, script: str, fields: Fields, signature: str) -> bool:
        """Return whether ``signature`` is a valid signature of ``fields`` for ``script``."""
        ...


@attrs.frozen
class Md5Signer:
    """The documented ``pg_sig``: md5 over script name, sorted values and the secret key."""

    secret_key: str = attrs.field(repr=False)
    _key: bytes = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        key = self.secret_key
        if not isinstance(key, str) or not key or not _encodes(key):
            raise ConfigurationError("secret_key must be a non-empty string of valid Unicode")
        object.__setattr__(self, "_key", key.encode("utf-8"))

    def sign(self, script: str, fields: Fields) -> str:
        """Return the lowercase-hex md5 ``pg_sig`` of ``fields`` for ``script``.

        Every value is checked (text, valid Unicode, depth) before the key is touched,
        and the digest is fed piece by piece: no pre-image string exists, so no frame
        of any raise holds key material. Raises ValidationError.
        """
        parts = _encoded_values(script, fields)
        digest = hashlib.md5(usedforsecurity=False)
        for part in parts:
            digest.update(part)
            digest.update(b";")
        digest.update(self._key)
        return digest.hexdigest()

    def verify(self, script: str, fields: Fields, signature: str) -> bool:
        """Constant-time check of ``signature`` (case-insensitive hex) against ``fields``.

        Fields that cannot be signed (invalid text, nested too deep) never verify.
        """
        try:
            expected = self.sign(script, fields).encode("ascii")
        except ValidationError:
            return False
        return hmac.compare_digest(expected, signature.lower().encode("utf-8", "replace"))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _signers(value: Iterable[Signer]) -> tuple[Signer, ...]:
    return tuple(value)


@attrs.frozen
class RotatingSigner:
    """Signs with ``current``; accepts signatures made by ``current`` or any of ``previous``.

    Lets a merchant rotate its secret key without downtime: deploy with the new key as
    ``current`` and the old one in ``previous`` until Freedom Pay has switched over.
    """

    current: Signer
    previous: tuple[Signer, ...] = attrs.field(default=(), converter=_signers)

    @classmethod
    def md5(cls, current_key: str, *previous_keys: str) -> RotatingSigner:
        """Build a rotating md5 signer from the current key and any previous keys."""
        previous: tuple[Signer, ...] = tuple(Md5Signer(key) for key in previous_keys)
        return cls(Md5Signer(current_key), previous)

    def sign(self, script: str, fields: Fields) -> str:
        """Sign with the current key."""
        return self.current.sign(script, fields)

    def verify(self, script: str, fields: Fields, signature: str) -> bool:
        """Accept a signature by the current or any previous key (every key is tried)."""
        ok = self.current.verify(script, fields, signature)
        for signer in self.previous:
            # No early exit: the time taken does not tell which key matched.
            ok = signer.verify(script, fields, signature) | ok
        return ok
