"""The gateway's side of the merchant callbacks, sent when a test asks: the redirect
back, the result notification and the check request (``SandboxGateway.send_*``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .._operations.values import coerce_payment_id
from ._outbound import (
    Pairs,
    Tamper,
    check_fields,
    deliver,
    redirect_fields,
    result_fields,
    sign_pairs,
)

__all__ = ["CallbackSender"]


class CallbackSender:
    """``send_redirect``, ``send_result_notify`` and ``send_check``, signed with
    ``secret_key`` and each URL's script name."""

    secret_key: str

    async def send_redirect(
        self,
        url: str,
        *,
        payment_id: int,
        order_id: str,
        success: bool = True,
        params: Mapping[str, str] | None = None,
        method: str = "POST",
        signed: bool = True,
        error_code: int | None = None,
        error_description: str | None = None,
        tamper: Tamper | None = None,
    ) -> tuple[int, bytes]:
        """Send the buyer's redirect back to ``success_url``/``failure_url`` (reference 4.3).

        Fields: ``pg_order_id``, ``pg_payment_id``, the merchant ``params``, on failure
        ``pg_error_code`` and ``pg_error_description``, then ``pg_salt`` and ``pg_sig``
        (signed with ``script_name(url)``; both left out when ``signed`` is False).
        ``method`` POST sends multipart; GET appends the fields to the URL's query (an
        existing query is kept, and is not signed). ``tamper`` may rewrite the pairs
        after signing. Returns ``(status, body)``.
        """
        pairs = redirect_fields(
            payment_id=coerce_payment_id(payment_id),
            order_id=order_id,
            success=success,
            params=params,
            error_code=error_code,
            error_description=error_description,
        )
        if signed:
            pairs = sign_pairs(self.secret_key, url, pairs)
        if tamper is not None:
            pairs = tamper(list(pairs))
        return await deliver(url, pairs, method)

    async def _send_signed(
        self, url: str, build: Callable[..., Pairs], payment_id: int, **fields: object
    ) -> tuple[int, bytes]:
        """Build a server-to-server callback with ``build``, sign it, POST it as multipart."""
        pairs = build(payment_id=coerce_payment_id(payment_id), **fields)
        return await deliver(url, sign_pairs(self.secret_key, url, pairs))

    async def send_result_notify(
        self,
        url: str,
        *,
        payment_id: int,
        order_id: str,
        amount: str = "100",
        currency: str = "KZT",
        result: int = 1,
        can_reject: bool = True,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """POST the ``result_url`` notification (reference 4.2), signed, as multipart.

        Returns ``(status, body)``; the body is the merchant's XML answer.
        """
        return await self._send_signed(
            url,
            result_fields,
            payment_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            result=result,
            can_reject=can_reject,
            params=params,
        )

    async def send_check(
        self,
        url: str,
        *,
        payment_id: int,
        order_id: str,
        amount: str = "100",
        currency: str = "KZT",
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """POST the ``check_url`` request (reference 4.1), signed, as multipart.

        Returns ``(status, body)``; the body is the merchant's XML answer.
        """
        return await self._send_signed(
            url,
            check_fields,
            payment_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            params=params,
        )
