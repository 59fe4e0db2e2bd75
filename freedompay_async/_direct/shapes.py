"""Verified ``pg_status=ok`` replies read by a pattern specialised to the shape last seen.

The gateway answers every cancel with the same document: the same elements in the same
order, the same declaration and whitespace; only the texts differ. After the general
reader (:func:`~freedompay_async._replies.interpret`) has accepted such a reply, a
:class:`ReplyShapes` learns its shape: the fixed bytes between the element texts become
literals of one regular expression, so one match yields every value, and the signature
order of those names is worked out once. A later reply of that shape is decoded once,
matched once and verified with that order.

A fast read answers only when the reply matched, its ``pg_status`` is exactly ``ok`` and
its signature verified; then the result is what the general reader gives (the tests hold
it to that). Anything else (another shape, an error, a bad or missing signature, a
non-200 status) answers None and the general reader decides, so every refusal and every
error comes from one place.
"""

from __future__ import annotations

import hmac
import operator
import re
from collections.abc import Callable

from .._operations.cancel import CANCEL_KNOWN, REVOKE_BY_VALUE, CancelResult
from .._operations.values import MAX_ID_DIGITS
from .._wire.messages import GatewayReply
from .._wire.salts import new_md5
from .._wire.signing import signature_string
from .._wire.xml import (
    _FLAT_CHILD,
    _FLAT_DOC,
)

__all__ = ["ReplyShapes"]

#: Element text the general fast reader accepts (printable ASCII without markup, "]" or
#: the signature's ";", which the general reader refuses).
_TEXT = r"([\t\n\x20-\x25\x27-\x3a\x3d\x3f-\x5c\x5e-\x7e]*)"
#: Distinct shapes kept per session (a few operations, a few gateway versions).
_MAX_SHAPES = 8
_SENTINEL = "\x00"


class _CancelIndex:
    """Where a plain cancel reply's values stand in its shape (no fields beyond the
    known ones, so its result has no ``extra``)."""

    __slots__ = ("payment", "revoke_id", "revoke_status")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.payment = names.index("pg_payment_id")
        self.revoke_status = names.index("pg_revoke_status")
        revoke_id = "pg_payment_revoke_id"
        self.revoke_id = names.index(revoke_id) if revoke_id in names else -1

    def result(self, values: tuple[str, ...], payment_id: int) -> CancelResult | None:
        """The result these matched values make, built by the one builder of cancel
        results (:meth:`CancelResult.from_values`), when they are the common values it
        cannot refuse; None for anything else (the reply is then read in full, and any
        refusal comes from where it always does)."""
        raw_status = values[self.revoke_status]
        raw_id = values[self.payment]
        if raw_status not in REVOKE_BY_VALUE or raw_id != str(payment_id):
            return None
        at = self.revoke_id
        revoke_id = values[at] if at >= 0 else None
        if revoke_id is not None and not (revoke_id.isdigit() and len(revoke_id) <= MAX_ID_DIGITS):
            return None  # ASCII: the pattern admits nothing else
        return CancelResult.from_values(payment_id, raw_id, revoke_id, raw_status)


class _Shape:
    __slots__ = ("cancel", "names", "order", "pattern", "sig_index", "signed", "status_index")

    def __init__(self, pattern: re.Pattern[str], names: tuple[str, ...], order: tuple[int, ...],
                 sig_index: int, status_index: int) -> None:  # fmt: skip
        self.pattern = pattern
        self.names = names
        self.order = order
        #: The values in signature order, as a tuple (``order`` as one C call).
        self.signed: Callable[[tuple[str, ...]], tuple[str, ...]] = (
            operator.itemgetter(*order) if len(order) > 1 else lambda v: (v[order[0]],)
        )
        self.sig_index = sig_index
        self.status_index = status_index
        plain = set(names) <= CANCEL_KNOWN and {"pg_payment_id", "pg_revoke_status"} <= set(names)
        self.cancel = _CancelIndex(names) if plain else None

    def reply(self, values: tuple[str, ...]) -> GatewayReply:
        """The verified reply these matched values make."""
        return GatewayReply(list(zip(self.names, values, strict=True)), 200, signed=True)


def _text_spans(body: str) -> list[tuple[str, int, int]] | None:
    """``(name, start, end)`` of each element text, for a document the flat reader takes."""
    data = body.encode("ascii")
    match = _FLAT_DOC.fullmatch(data)
    if match is None:
        return None
    return [
        (child.group(1).decode("ascii"), child.start(2), child.end(2))
        for child in _FLAT_CHILD.finditer(data, match.start(2), match.end(2))
    ]


def _learn(script: str, body: str) -> _Shape | None:
    spans = _text_spans(body)
    if spans is None:
        return None
    names = tuple(name for name, _, _ in spans)
    if len(set(names)) != len(names) or "pg_sig" not in names or "pg_status" not in names:
        return None
    literals: list[str] = []
    pos = 0
    for _, start, end in spans:
        literals.append(re.escape(body[pos:start]))
        pos = end
    literals.append(re.escape(body[pos:]))
    pattern = re.compile(_TEXT.join(literals), re.DOTALL)
    # The signature order, as the generic signer computes it: sign sentinel values and
    # read back which value stands where.
    marked = [(name, f"{_SENTINEL}{i}{_SENTINEL}") for i, name in enumerate(names)]
    pre = signature_string(script, marked, "")[len(script) + 1 : -1]
    order = tuple(int(part.strip(_SENTINEL)) for part in pre.split(";"))
    if sorted(order) != [i for i, name in enumerate(names) if name != "pg_sig"]:
        return None
    return _Shape(pattern, names, order, names.index("pg_sig"), names.index("pg_status"))


class ReplyShapes:
    """Per session: the shapes of accepted replies, by script, the last one seen first.

    Holds the signer's key bytes: never put it in a repr or a log line.
    """

    __slots__ = ("_key", "_known", "_last")

    def __init__(self, secret_key: bytes) -> None:
        self._key = secret_key
        self._last: dict[str, _Shape] = {}
        self._known: dict[tuple[str, str], _Shape] = {}

    def __repr__(self) -> str:
        return f"<ReplyShapes shapes={len(self._known)}>"

    def read(self, script: str, body: bytes) -> GatewayReply | None:
        """The verified ok reply in ``body`` if it has the last shape seen, else None."""
        found = self._match(script, body)
        if found is None:
            return None
        shape, values = found
        return shape.reply(values)

    def read_cancel(
        self, script: str, body: bytes, payment_id: int
    ) -> CancelResult | GatewayReply | None:
        """``read``, then, for a plain cancel reply about ``payment_id``, its
        :class:`CancelResult` built straight from the matched values (what
        ``CancelResult.from_reply`` makes of that reply); else the reply or None."""
        found = self._match(script, body)
        if found is None:
            return None
        shape, values = found
        if shape.cancel is not None:
            result = shape.cancel.result(values, payment_id)
            if result is not None:
                return result
        return shape.reply(values)

    def _match(self, script: str, body: bytes) -> tuple[_Shape, tuple[str, ...]] | None:
        shape = self._last.get(script)
        if shape is None:
            return None
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return None
        match = shape.pattern.fullmatch(text)
        if match is None:
            return None
        values = match.groups()
        if values[shape.status_index] != "ok":
            return None
        digest = new_md5(";".join((script, *shape.signed(values), "")).encode())
        digest.update(self._key)  # never joined into a pre-image
        # Both ASCII (the pattern admits nothing else), so compare_digest takes the str.
        if not hmac.compare_digest(digest.hexdigest(), values[shape.sig_index].lower()):
            return None
        return shape, values

    def learn(self, script: str, body: bytes) -> None:
        """Remember the shape of ``body``, a reply the general reader has just accepted."""
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return
        shape = self._last.get(script)
        if shape is not None and shape.pattern.fullmatch(text) is not None:
            return
        key = (script, _skeleton(text))
        shape = self._known.get(key)
        if shape is None or shape.pattern.fullmatch(text) is None:
            shape = _learn(script, text)
            if shape is None:
                return
            if len(self._known) >= _MAX_SHAPES:
                self._known.clear()
            self._known[key] = shape
        self._last[script] = shape


_TEXTS = re.compile(r">[^<]*</")


def _skeleton(text: str) -> str:
    """The document with element texts cut out: equal for replies of one shape."""
    return _TEXTS.sub("></", text)
