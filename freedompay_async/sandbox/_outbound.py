"""What the sandbox sends to a merchant: redirects back, result notifications, checks.

Every message is signed as the gateway signs it: the script name is the last path
segment of the merchant's own URL (query stripped), the key is the gateway's secret,
and bracket names (``items[0][sku]``) are signed as the tree PHP's ``$_POST`` makes
of them, with the reference flattening (which skips any ``pg_sig`` key, at any depth).

Like the real gateway, the messages carry more than the documented fields:
``pg_payment_system``, ``pg_need_email_notification``, ``pg_need_phone_notification``,
``pg_auth_code``, ``pg_reference`` and ``pg_testing_mode`` where the gateway sends
them, all signed, so a merchant that refuses fields it does not know is caught here,
not in production.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from .._wire.fields import from_form_pairs
from .._wire.multipart import render_multipart
from .._wire.signing import (
    Md5Signer,
    script_name,
)

__all__ = [
    "Pairs",
    "Tamper",
    "check_fields",
    "deliver",
    "merchant_params",
    "redirect_fields",
    "result_fields",
    "sign_pairs",
    "with_query",
]

Pairs = list[tuple[str, str]]
Tamper = Callable[[Pairs], Pairs]

DEFAULT_FAILURE = (10000, "Ошибка оплаты. Повторите попытку позже.")
_TIMEOUT = aiohttp.ClientTimeout(total=30.0)


def merchant_params(params: Mapping[str, str] | None) -> Pairs:
    """The merchant's own init parameters, echoed back; their names never start with pg_."""
    pairs: Pairs = []
    for name, value in (params or {}).items():
        if not isinstance(name, str) or not name or name.startswith("pg_"):
            raise ValueError(f"merchant parameter names must not start with 'pg_': {name!r}")
        if not isinstance(value, str):
            raise TypeError(f"merchant parameter {name!r} must be a str")
        pairs.append((name, value))
    return pairs


def sign_pairs(secret_key: str, url: str, fields: Pairs) -> Pairs:
    """Append ``pg_salt`` and the ``pg_sig`` made with ``script_name(url)``.

    The pairs are signed as the tree their bracket names make, as the gateway (PHP)
    sees them.
    """
    fields.append(("pg_salt", secrets.token_hex(8)))
    signature = Md5Signer(secret_key).sign(script_name(url), from_form_pairs(fields))
    fields.append(("pg_sig", signature))
    return fields


def _payment_system(currency: str) -> str:
    return f"EPAYWEB{currency.upper()}"


def _buyer_fields() -> Pairs:
    """The buyer's contacts and whether the gateway notifies them, as sent to the merchant."""
    return [
        ("pg_user_phone", "77010000000"),
        ("pg_need_phone_notification", "0"),
        ("pg_user_contact_email", "buyer@example.com"),
        ("pg_need_email_notification", "1"),
    ]


def _card_fields(payment_id: int, paid: bool) -> Pairs:
    """A test card as the gateway reports it (PAN masked); bank codes only when paid."""
    fields: Pairs = [
        ("pg_card_pan", "4405-64XX-XXXX-6150"),
        ("pg_card_brand", "VI"),
        ("pg_card_exp", "12/29"),
        ("pg_card_owner", "TEST CARDHOLDER"),
    ]
    if paid:
        fields += [
            ("pg_auth_code", f"{payment_id % 1_000_000:06d}"),
            ("pg_reference", f"{payment_id % 10**12:012d}"),
        ]
    return fields


def redirect_fields(
    *,
    payment_id: int,
    order_id: str,
    success: bool,
    params: Mapping[str, str] | None,
    error_code: int | None,
    error_description: str | None,
) -> Pairs:
    """success_url / failure_url fields (reference 4.3), before salt and signature.

    Besides the documented ones, ``pg_payment_system`` and ``pg_testing_mode``. A
    failure adds ``pg_error_code`` and ``pg_error_description`` (10000 "payment error,
    retry later" unless given); on success those arguments are ignored.
    """
    fields: Pairs = [
        ("pg_order_id", order_id),
        ("pg_payment_id", str(payment_id)),
        ("pg_payment_system", _payment_system("KZT")),
        ("pg_testing_mode", "1"),
    ]
    fields += merchant_params(params)
    if not success:
        code = DEFAULT_FAILURE[0] if error_code is None else error_code
        description = DEFAULT_FAILURE[1] if error_description is None else error_description
        fields += [("pg_error_code", str(code)), ("pg_error_description", description)]
    return fields


def _payment_date() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def result_fields(
    *,
    payment_id: int,
    order_id: str,
    amount: str,
    currency: str,
    result: int,
    can_reject: bool,
    params: Mapping[str, str] | None,
    captured: bool = False,
    description: str | None = None,
) -> Pairs:
    """result_url fields (reference 4.2), before salt and signature. No commission taken.

    The documented fields (card PAN masked; ``pg_captured`` 1 for a one-step payment,
    else 0: held), and those the gateway sends without documenting them: the payment
    system, the buyer-notification flags and, for a paid one, the bank's auth code and
    RRN. ``description`` defaults to ``Order <order id>``.
    """
    paid = int(result) == 1
    fields: Pairs = [
        ("pg_order_id", order_id),
        ("pg_payment_id", str(payment_id)),
        ("pg_amount", amount),
        ("pg_currency", currency),
        ("pg_net_amount", amount),
        ("pg_ps_amount", amount),
        ("pg_ps_full_amount", amount),
        ("pg_ps_currency", currency),
        ("pg_description", f"Order {order_id}" if description is None else description),
        ("pg_result", str(int(result))),
        ("pg_payment_date", _payment_date()),
        ("pg_can_reject", "1" if can_reject else "0"),
        ("pg_testing_mode", "1"),
        ("pg_payment_method", "bankcard"),
        ("pg_captured", "1" if captured else "0"),
        ("pg_payment_system", _payment_system(currency)),
        *_buyer_fields(),
        *_card_fields(payment_id, paid),
    ]
    return fields + merchant_params(params)


def check_fields(
    *,
    payment_id: int,
    order_id: str,
    amount: str,
    currency: str,
    params: Mapping[str, str] | None,
) -> Pairs:
    """check_url fields (reference 4.1), before salt and signature.

    The documented fields, plus the payment system, test mode and buyer fields the
    gateway also sends.
    """
    fields: Pairs = [
        ("pg_order_id", order_id),
        ("pg_payment_id", str(payment_id)),
        ("pg_amount", amount),
        ("pg_currency", currency),
        ("pg_ps_amount", amount),
        ("pg_ps_currency", currency),
        ("pg_ps_full_amount", amount),
        ("pg_payment_system", _payment_system(currency)),
        ("pg_testing_mode", "1"),
        *_buyer_fields(),
    ]
    return fields + merchant_params(params)


def with_query(url: str, pairs: Pairs) -> URL:
    """``url`` with ``pairs`` appended to its query (an existing query is kept)."""
    return _with_query(url, pairs)


def _with_query(url: str, pairs: Pairs) -> URL:
    base = URL(url).with_fragment(None)
    raw = str(base)
    if base.raw_query_string:
        sep = "&"
    else:
        raw = raw.rstrip("?")
        sep = "?"
    return URL(raw + sep + urlencode(pairs, quote_via=quote), encoded=True)


async def deliver(url: str, pairs: Pairs, method: str = "POST") -> tuple[int, bytes]:
    """POST ``pairs`` as multipart/form-data, or GET them appended to the URL's query.

    Uses a fresh ``aiohttp.ClientSession``; returns ``(status, body)``. Connection
    errors propagate as aiohttp raises them.
    """
    verb = method.upper()
    if verb not in ("POST", "GET"):
        raise ValueError(f"method must be 'POST' or 'GET', got {method!r}")
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        if verb == "GET":
            async with session.get(_with_query(url, pairs), allow_redirects=False) as resp:
                return resp.status, await resp.read()
        body, content_type = render_multipart(pairs)
        async with session.post(
            url, data=body, headers={"Content-Type": content_type}, allow_redirects=False
        ) as resp:
            return resp.status, await resp.read()
