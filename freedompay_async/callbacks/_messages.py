"""The verified values of what Freedom Pay sends the merchant: redirect, result, check.

Each is built by a named constructor ``from_fields(tree)`` from a tree **whose
signature was already checked** (see :mod:`._verify`); every one carries what any
signed message carries (:class:`SignedMessage`).

What the md5 ``pg_sig`` protects, exactly: the script name (the URL's last path
segment), the **values** of all fields in the order of their sorted names, and the
secret key. What it does **not** protect: the field names themselves (only the order
they sort in), which value belongs to which name beyond that order, anything under a
``pg_sig`` key at any depth (the reference flattening skips it; such a message is
refused before it gets here), the URL's host, the rest of its path and its query, the
HTTP method, and freshness (a captured message verifies forever). A signed
``pg_result=0`` notification with fields renamed so the sorted order holds
(``pg_result`` -> ``pg_r0``, ``pg_salt`` -> ``pg_r1``, ``pg_testing_mode`` ->
``pg_result``) carries the same signature.

So a value is built only from fields under their documented names, and:

- the world is open: a ``pg_`` name it does not know lands in ``extra`` (the gateway
  sends more fields than it documents, and a genuine notification must never be
  lost); ``strict=True`` refuses such names unless allowed (``allow_fields=``);
- a message missing a field its meaning depends on (order id, payment id, amount,
  currency, result, salt...), carrying one twice, or one whose known field holds a
  value of the wrong shape (``pg_result`` not 0-2, a currency that is not three
  letters, a flag that is not 0/1) is refused, which leaves a renaming few places to
  land.

What remains possible for someone holding a captured message: a permutation of names
whose values happen to fit each other's shapes (a known field renamed away into
``extra`` or a merchant parameter, another value renamed onto it), and replay. Hence:
confirm a paid notification by status before shipping (:func:`confirm_result_notify`,
or ``result_notify_handler(..., confirm=session)``), check its amount, currency and
order id against your own order, deduplicate by payment id, and give success and
failure URLs different last path segments (the script name is signed, so a failure
redirect then never verifies at the success URL).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from .._operations.status import StatusResult
from .._wire.fields import Fields
from ._reader import Reader, allowed_names, frozen_map, names_only


def _own_fields_first(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """Put what every signed message carries after the message's own fields (repr order)."""
    own = inspect.get_annotations(cls)
    return [f for f in fields if f.name in own] + [f for f in fields if f.name not in own]


__all__ = ["CheckRequest", "RedirectBack", "ResultNotify", "SignedMessage", "has_error_code"]


@attrs.frozen
class SignedMessage:
    """What every signed merchant-side message carries, besides its own fields.

    ``salt`` is ``pg_salt`` (hidden from ``repr``; required in every signed message).
    ``merchant_params`` holds every received field without the ``pg_`` prefix (nested
    ones under their bracket name, e.g. ``items[0][sku]``); ``extra`` holds the ``pg_``
    fields this version does not know (in strict mode only those the caller allowed
    with ``allow_fields=``); ``repr`` shows only their names (they may carry personal
    data). ``fields`` is the
    signed tree the value was built from. All four are keyword-only.
    """

    salt: str | None = attrs.field(default=None, repr=False, kw_only=True)
    merchant_params: Mapping[str, str] = attrs.field(
        factory=dict, converter=frozen_map, repr=names_only, kw_only=True
    )
    extra: Mapping[str, str] = attrs.field(
        factory=dict, converter=frozen_map, repr=names_only, kw_only=True
    )
    fields: Fields = attrs.field(default=(), repr=False, eq=False, kw_only=True)


_REDIRECT_KNOWN = frozenset(
    {
        "pg_order_id",
        "pg_payment_id",
        "pg_salt",
        "pg_error_code",
        "pg_error_description",
        "pg_status",
    }
)


def has_error_code(tree: Fields) -> bool:
    return any(
        key == "pg_error_code" and (not isinstance(value, str) or value.strip())
        for key, value in tree
    )


@attrs.frozen(field_transformer=_own_fields_first)
class RedirectBack(SignedMessage):
    """The buyer's browser coming back to ``success_url`` or ``failure_url``.

    A redirect is UX, not proof of payment: the authoritative outcome is the result
    callback (:class:`ResultNotify`) or a status request. ``succeeded`` is True for a
    redirect without ``pg_error_code`` or ``pg_error_description``, whose ``pg_status``
    (if any) is ``ok``, that was not received on the failure URL; a successful one
    must carry ``pg_payment_id``. ``error_code`` is the raw ``pg_error_code`` text
    (the docs type it as a string).
    ``signed`` is False only for an unsigned failure redirect accepted with
    ``allow_unsigned_failure=True``: then every value is untrusted.

    ``fields`` (see :class:`SignedMessage`) is every received field, except a GET's
    leading configured-URL query when the signature leaves it out.
    """

    order_id: str
    payment_id: int | None
    succeeded: bool
    signed: bool = True
    error_code: str | None = None
    error_description: str | None = None
    status: str | None = None

    @classmethod
    def from_fields(
        cls,
        fields: Fields,
        *,
        signed: bool,
        success: bool | None = None,
        allow_fields: Iterable[str] = (),
        strict: bool = False,
    ) -> RedirectBack:
        """Build from a field tree **whose signature was already checked** (no verification).

        ``success`` says which URL received it (True: success URL, False: failure URL,
        None: unknown). Unknown ``pg_`` fields land in ``extra``; with ``strict`` they
        are refused unless named in ``allow_fields``. Use :func:`verify_redirect` to
        verify and build in one step.
        """
        reader = Reader(
            "redirect", fields, _REDIRECT_KNOWN, allowed_names(allow_fields), strict=strict
        )
        error_code = reader.text("pg_error_code")
        if error_code is not None and not error_code.strip():
            error_code = None
        description = reader.text("pg_error_description")
        status = reader.text("pg_status")
        succeeded = (
            success is not False
            and error_code is None
            and description is None
            and (status is None or status.strip().lower() == "ok")
        )
        return cls(
            order_id=reader.required_text("pg_order_id"),
            payment_id=reader.payment_id() if succeeded else reader.optional_payment_id(),
            succeeded=succeeded,
            signed=signed,
            error_code=error_code,
            error_description=description,
            status=status,
            salt=reader.required_text("pg_salt") if signed else reader.text("pg_salt"),
            merchant_params=reader.params,
            extra=reader.extra,
            fields=tuple(fields),
        )


def _state_only(status: StatusResult | None) -> str:
    return "None" if status is None else f"<{status.state.value}>"


#: ``pg_result``: the documented range is 0-2 (1 paid, 0 failed).
_RESULTS = frozenset({"0", "1", "2"})

_RESULT_KNOWN = frozenset(
    {
        "pg_order_id",
        "pg_payment_id",
        "pg_amount",
        "pg_currency",
        "pg_net_amount",
        "pg_ps_amount",
        "pg_ps_full_amount",
        "pg_ps_currency",
        "pg_description",
        "pg_result",
        "pg_payment_date",
        "pg_can_reject",
        "pg_user_phone",
        "pg_user_contact_email",
        "pg_testing_mode",
        "pg_captured",
        "pg_card_id",
        "pg_card_token",
        "pg_card_pan",
        "pg_discount_percent",
        "pg_discount_amount",
        "pg_payment_method",
        "pg_card_exp",
        "pg_card_owner",
        "pg_card_brand",
        "pg_salt",
    }
)


@attrs.frozen(field_transformer=_own_fields_first)
class ResultNotify(SignedMessage):
    """A verified result notification (``result_url``): the authoritative payment outcome.

    ``result`` is ``pg_result`` (1: paid, 0: failed; the docs allow 0-2, anything else
    is refused); ``succeeded`` is ``result == 1``. Order id, payment id, amount,
    currency, result and salt are required under their documented names.
    ``can_reject`` says whether answering ``rejected`` will be honoured.
    ``payment_date`` is the raw ``YYYY-MM-DD HH:MM:SS`` text (the gateway's local time;
    :attr:`payment_datetime` parses it). Absent or empty optional fields are None.

    The card token, expiry, owner and the buyer's phone and e-mail are left out of
    ``repr``; ``card_pan`` comes masked from the gateway and is shown.
    Freedom Pay redelivers a notification until it gets HTTP 200, so the same payment
    can arrive several times: deduplicate by ``payment_id``.

    ``confirmation`` is the status that confirmed a paid notification
    (:func:`confirm_result_notify`, or the ready handler's ``confirm=``), None until
    then; ``confirmed_by_status`` says whether there is one. ``repr`` shows only its
    state.
    """

    order_id: str
    payment_id: int
    amount: Decimal
    currency: str
    result: int
    can_reject: bool = False
    testing_mode: bool = False
    payment_date: str | None = None
    description: str | None = None
    net_amount: Decimal | None = None
    ps_amount: Decimal | None = None
    ps_full_amount: Decimal | None = None
    ps_currency: str | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    payment_method: str | None = None
    captured: bool | None = None
    card_pan: str | None = None
    card_brand: str | None = None
    card_id: str | None = None
    card_token: str | None = attrs.field(default=None, repr=False)
    card_exp: str | None = attrs.field(default=None, repr=False)
    card_owner: str | None = attrs.field(default=None, repr=False)
    user_phone: str | None = attrs.field(default=None, repr=False)
    user_contact_email: str | None = attrs.field(default=None, repr=False)
    confirmation: StatusResult | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=_state_only
    )

    @property
    def confirmed_by_status(self) -> bool:
        """Whether a status query confirmed this paid notification (see ``confirmation``)."""
        return self.confirmation is not None

    @property
    def succeeded(self) -> bool:
        """Whether the payment went through (``pg_result == 1``)."""
        return self.result == 1

    @property
    def payment_datetime(self) -> datetime | None:
        """``payment_date`` as a naive datetime (gateway local time), None if unparseable."""
        if self.payment_date is None:
            return None
        try:
            return datetime.strptime(self.payment_date.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None

    @classmethod
    def from_fields(
        cls, fields: Fields, *, allow_fields: Iterable[str] = (), strict: bool = False
    ) -> ResultNotify:
        """Build from a field tree **whose signature was already checked** (no verification).

        Unknown ``pg_`` fields land in ``extra``; with ``strict`` they are refused unless
        named in ``allow_fields``. Use :func:`verify_result_notify` to verify and build
        in one step.
        """
        allowed = allowed_names(allow_fields)
        r = Reader("result notification", fields, _RESULT_KNOWN, allowed, strict=strict)
        return cls(
            order_id=r.required_text("pg_order_id"),
            payment_id=r.payment_id(),
            amount=r.decimal("pg_amount"),
            currency=str(r.currency("pg_currency", required=True)),
            result=int(r.choice("pg_result", _RESULTS)),
            can_reject=bool(r.flag("pg_can_reject")),
            testing_mode=bool(r.flag("pg_testing_mode")),
            payment_date=r.text("pg_payment_date"),
            description=r.text("pg_description"),
            net_amount=r.optional_decimal("pg_net_amount"),
            ps_amount=r.optional_decimal("pg_ps_amount"),
            ps_full_amount=r.optional_decimal("pg_ps_full_amount"),
            ps_currency=r.currency("pg_ps_currency", required=False),
            discount_percent=r.optional_decimal("pg_discount_percent"),
            discount_amount=r.optional_decimal("pg_discount_amount"),
            payment_method=r.text("pg_payment_method"),
            captured=r.flag("pg_captured"),
            card_pan=r.text("pg_card_pan"),
            card_brand=r.text("pg_card_brand"),
            card_id=r.text("pg_card_id"),
            card_token=r.text("pg_card_token"),
            card_exp=r.text("pg_card_exp"),
            card_owner=r.text("pg_card_owner"),
            user_phone=r.text("pg_user_phone"),
            user_contact_email=r.text("pg_user_contact_email"),
            salt=r.required_text("pg_salt"),
            merchant_params=r.params,
            extra=r.extra,
            fields=tuple(fields),
        )


_CHECK_KNOWN = frozenset(
    {
        "pg_order_id",
        "pg_payment_id",
        "pg_amount",
        "pg_currency",
        "pg_ps_amount",
        "pg_ps_full_amount",
        "pg_ps_currency",
        "pg_salt",
    }
)


@attrs.frozen(field_transformer=_own_fields_first)
class CheckRequest(SignedMessage):
    """A verified check request (``check_url``): may this payment go ahead?

    Answer ``ok`` to accept, ``rejected`` to refuse; not answering in time is a refusal.
    Order id, payment id, amount, currency and salt are required. Other ``pg_`` fields
    land in ``extra``; in strict mode only those the reference lists for the result
    notification (the check's own list may be incomplete) or that are allowed
    (``allow_fields=``); non-``pg_`` names are ``merchant_params``.
    """

    order_id: str
    payment_id: int
    amount: Decimal
    currency: str
    ps_amount: Decimal | None = None
    ps_full_amount: Decimal | None = None
    ps_currency: str | None = None

    @classmethod
    def from_fields(
        cls, fields: Fields, *, allow_fields: Iterable[str] = (), strict: bool = False
    ) -> CheckRequest:
        """Build from a field tree **whose signature was already checked** (no verification).

        Unknown ``pg_`` fields land in ``extra``; with ``strict`` they are refused unless
        named in ``allow_fields`` or listed for the result notification. Use
        :func:`verify_check_request` to verify and build in one step.
        """
        allowed = allowed_names(allow_fields) | (_RESULT_KNOWN - _CHECK_KNOWN)
        r = Reader("check request", fields, _CHECK_KNOWN, allowed, strict=strict)
        return cls(
            order_id=r.required_text("pg_order_id"),
            payment_id=r.payment_id(),
            amount=r.decimal("pg_amount"),
            currency=str(r.currency("pg_currency", required=True)),
            ps_amount=r.optional_decimal("pg_ps_amount"),
            ps_full_amount=r.optional_decimal("pg_ps_full_amount"),
            ps_currency=r.currency("pg_ps_currency", required=False),
            salt=r.required_text("pg_salt"),
            merchant_params=r.params,
            extra=r.extra,
            fields=tuple(fields),
        )
