"""What every sandbox endpoint does first and what a fault does to its answer: the
request's merchant id and signature checked, then a fault applied around the
operation (``_faulty``)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable

from aiohttp import web

from .._wire.fields import Fields, FieldValue
from . import _http
from ._faults import Fault, FaultPlan
from ._processing import Processing
from ._replies import (
    BAD_SIGNATURE,
    SYSTEM_ERROR,
    UNKNOWN_MERCHANT,
    UNKNOWN_MERCHANT_PHP,
    ReplyBuilder,
)

__all__ = ["Endpoints", "Tree", "checked_faults", "digits", "top_level"]

Tree = list[tuple[str, FieldValue]]
_DEFAULT_PLAN = FaultPlan()
_NO_FAULT_BEFORE = frozenset({Fault.RESET_BEFORE, Fault.HTTP_503, Fault.HTTP_429, Fault.ERROR_9999})
#: A lost reply holds the connection at least this long: longer than a client's usual
#: attempt timeout (the library's default is 20 s), so the client times out first.
_LOST_REPLY_HOLD = 60.0


def checked_faults(faults: Iterable[Fault | None]) -> list[Fault | None]:
    """``faults`` as a list; TypeError for anything but Fault members and None."""
    checked = list(faults)
    for fault in checked:
        if fault is not None and not isinstance(fault, Fault):
            raise TypeError(f"inject() takes Fault members or None, got {fault!r}")
    return checked


def top_level(fields: Iterable[tuple[str, FieldValue]], name: str) -> str | None:
    """The top-level text field ``name``, or None."""
    for key, value in fields:
        if key == name and isinstance(value, str):
            return value
    return None


def digits(text: str | None) -> int | None:
    """``text`` as a non-negative integer of at most 20 digits, or None."""
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        return None
    return int(text)


class Endpoints:
    """The checks and the fault handling every endpoint shares."""

    merchant_id: int
    faults: FaultPlan | None
    requests_total: int
    requests_by_operation: collections.Counter[str]
    _builders: dict[str, ReplyBuilder]
    _processing: Processing

    async def _signed_fields(self, script: str, request: web.Request) -> Tree | web.Response:
        """The request's fields once merchant id and signature check out, else the reply."""
        replies = self._builders[script]
        self.requests_total += 1
        self.requests_by_operation[script] += 1
        fields = await _http.read_fields(request)
        if fields is None:
            return web.Response(status=400, text="malformed form body")
        if digits(top_level(fields, "pg_merchant_id")) != self.merchant_id:
            unknown = UNKNOWN_MERCHANT_PHP if script.endswith(".php") else UNKNOWN_MERCHANT
            return _http.xml_response(replies.error(unknown, signed=False))
        signature = top_level(fields, "pg_sig")
        if signature is None or not replies.verify(fields, signature):
            return _http.xml_response(replies.error(BAD_SIGNATURE))
        return fields

    async def _faulty(
        self,
        request: web.Request,
        fault: Fault,
        script: str,
        apply: Callable[[], Fields],
        told: Callable[[], None],
        forged: Callable[[Fields], Fields],
    ) -> web.Response:
        plan = self.faults or _DEFAULT_PLAN
        if fault in _NO_FAULT_BEFORE:
            if fault is Fault.RESET_BEFORE:
                return _http.abort(request)
            if fault is Fault.HTTP_503:
                return _http.http_503()
            if fault is Fault.HTTP_429:
                return _http.http_429(plan.retry_after)
            return _http.xml_response(self._builders[script].error(SYSTEM_ERROR))
        if fault is Fault.SLOW_PROCESSING:
            # Applied even if the client goes away meanwhile; told only if it stayed.
            reply = await self._processing.later(plan.processing_delay, apply)
            told()
            return _http.xml_response(reply)
        reply = apply()
        if fault is Fault.LOST_REPLY:
            await self._processing.hold(max(4 * plan.processing_delay, _LOST_REPLY_HOLD))
            return _http.abort(request)
        if fault is Fault.RESET_AFTER:
            return _http.abort(request)
        if fault is Fault.GARBAGE:
            return _http.garbage_response()
        if fault is Fault.FORGED:
            return _http.xml_response(forged(reply))
        await asyncio.sleep(plan.slow_delay)  # Fault.SLOW
        return _http.xml_response(reply)
