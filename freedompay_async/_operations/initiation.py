"""``init_payment.php``: the request that creates a payment, and the page it returns.

Where the regional pages disagree, every documented variant is accepted:

- ``pg_order_id`` is optional on the KZ page and required on the UZ and KG pages: it is
  optional here (``order_id=None``), and always worth giving: it is the only way to
  find the payment again when the reply is lost (see ``AsyncSession.init_payment``).
- ``pg_language``: the KZ page lists ``kk`` for Kazakh, the mobile page ``kz``: both
  are accepted and sent as given.
- ``pg_user_phone`` is a *number* on the KZ page and a *string* on the UZ and mobile
  pages: an int or a string of digits is accepted; both are sent as the same digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from urllib.parse import urlsplit

import attrs

from .._exceptions import MalformedReplyError, ValidationError
from .._wire.fields import FieldValue, php_str
from .._wire.messages import GatewayReply
from .._wire.signing import script_name
from .receipts import ReceiptPosition, receipt_positions, receipt_positions_field
from .values import amount_value, currency_value, order_id_value, reply_int, scalars

__all__ = ["LANGUAGES", "InitPaymentRequest", "PaymentPage"]

#: ``pg_language`` values the docs list: ``kk`` (KZ page) and ``kz`` (mobile page) both
#: stand for Kazakh.
LANGUAGES = frozenset({"ru", "en", "kk", "kz", "kg", "uz"})
_MAX_AMOUNT = Decimal("99999999")
_MAX_URL = 255
_MIN_LIFETIME, _MAX_LIFETIME = 300, 604_800
_PHONE = re.compile(r"[0-9]{6,15}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Control characters (tab aside), DEL and lone surrogates: nothing the wire carries.
_BAD_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
_OP = "init_payment"


def _amount(value: object) -> Decimal:
    number = amount_value(value)
    if number > _MAX_AMOUNT:
        raise ValidationError(f"amount must be at most {_MAX_AMOUNT}, got {number}")
    return number


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValidationError(f"{name} must be 1 to {limit} characters of text")
    if _BAD_TEXT.search(value):
        raise ValidationError(f"{name} holds a control character or invalid Unicode")
    return value


def _description(value: object) -> str:
    return _text(value, "description", 1024)


def _url(value: object, name: str) -> str | None:
    """An absolute http(s) URL of at most 255 characters, whose script name (last path
    segment) is not empty, or None."""
    if value is None:
        return None
    text = _text(value, name, _MAX_URL)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise ValidationError(f"{name} must be an absolute http(s) URL")
    if not script_name(text):
        # The callback's signature covers the URL's last path segment; a URL that ends
        # in "/" has none, so what is sent to it could not be verified later
        # (callbacks.callback_script_name refuses it too).
        raise ValidationError(
            f"{name} ends in '/': its script name, which signs every callback to it, "
            "is empty; give the URL without a trailing slash"
        )
    return text


def _result_url(value: object) -> str | None:
    return _url(value, "result_url")


def _check_url(value: object) -> str | None:
    return _url(value, "check_url")


def _success_url(value: object) -> str | None:
    return _url(value, "success_url")


def _failure_url(value: object) -> str | None:
    return _url(value, "failure_url")


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    text = value.strip().upper() if isinstance(value, str) else None
    if text not in allowed:
        raise ValidationError(f"{name} must be one of {', '.join(allowed)}")
    return text


def _request_method(value: object) -> str | None:
    return _choice(value, "request_method", ("GET", "POST", "XML"))


def _browser_method(value: object) -> str | None:
    return _choice(value, "success_url_method / failure_url_method", ("GET", "POST"))


def _lifetime(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("lifetime must be a whole number of seconds")
    if not _MIN_LIFETIME <= value <= _MAX_LIFETIME:
        raise ValidationError(f"lifetime must be {_MIN_LIFETIME} to {_MAX_LIFETIME} seconds")
    return value


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValidationError("auto_clearing and testing_mode are True, False or None")


def _language(value: object) -> str | None:
    if value is None:
        return None
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in LANGUAGES:
        raise ValidationError(f"language must be one of {', '.join(sorted(LANGUAGES))}")
    return text


def _phone(value: object) -> str | None:
    """KZ documents a number, UZ and the mobile page a string: both are digits here."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = str(value)
    if not isinstance(value, str) or not _PHONE.fullmatch(value):
        raise ValidationError("user_phone must be 6-15 digits with the country code")
    return value


def _email(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValidationError("user_contact_email must be an e-mail address")
    return value


def _params(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("merchant_params must be a mapping of name to text")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise ValidationError("merchant parameter names are 1-64 of A-Z a-z 0-9 _ -")
        if name.lower().startswith("pg_"):
            raise ValidationError(f"merchant parameter {name!r} must not start with pg_")
        if not isinstance(text, str) or len(text) > _MAX_URL or _BAD_TEXT.search(text):
            raise ValidationError(f"merchant parameter {name!r} must be text, at most 255")
        out[name] = text
    return MappingProxyType(out)


def _flag_text(value: bool) -> str:
    return "1" if value else "0"


@attrs.frozen
class InitPaymentRequest:
    """A payment to create with ``init_payment.php``; every field validated on creation.

    ``amount`` (0.01 to 99999999, at most two decimal places, never a float) and
    ``description`` (shown to the buyer, at most 1024 characters) are required.
    ``order_id`` is your order's id (at most 50 characters; see the module docstring).
    ``auto_clearing`` False makes a two-step payment (``pg_auto_clearing=0``: held,
    then captured with ``clear`` or released with ``cancel``); True one-step; None
    leaves it to the shop's setting. ``result_url`` and ``check_url`` receive the
    server-to-server callbacks (``request_method``: ``GET``, ``POST`` or ``XML``);
    ``success_url`` and ``failure_url`` the buyer's browser (``*_method``: ``GET`` or
    ``POST``); each must be an absolute http(s) URL whose last path segment is not
    empty (no trailing ``/``). ``lifetime`` is seconds (300 to 604800),
    ``testing_mode`` True/False/None (the shop's setting), ``language`` one of
    :data:`LANGUAGES`. ``merchant_params`` (names without the ``pg_`` prefix) are
    signed, sent, and come back in every callback and redirect.
    """

    amount: Decimal = attrs.field(converter=_amount)
    description: str = attrs.field(converter=_description)
    order_id: str | None = attrs.field(default=None, converter=order_id_value)
    currency: str | None = attrs.field(default=None, converter=currency_value)
    result_url: str | None = attrs.field(default=None, converter=_result_url)
    check_url: str | None = attrs.field(default=None, converter=_check_url)
    request_method: str | None = attrs.field(default=None, converter=_request_method)
    success_url: str | None = attrs.field(default=None, converter=_success_url)
    success_url_method: str | None = attrs.field(default=None, converter=_browser_method)
    failure_url: str | None = attrs.field(default=None, converter=_failure_url)
    failure_url_method: str | None = attrs.field(default=None, converter=_browser_method)
    auto_clearing: bool | None = attrs.field(default=None, converter=_flag)
    lifetime: int | None = attrs.field(default=None, converter=_lifetime)
    testing_mode: bool | None = attrs.field(default=None, converter=_flag)
    language: str | None = attrs.field(default=None, converter=_language)
    user_phone: str | None = attrs.field(default=None, converter=_phone, repr=False)
    user_contact_email: str | None = attrs.field(default=None, converter=_email, repr=False)
    receipt_positions: tuple[ReceiptPosition, ...] = attrs.field(
        default=(), converter=receipt_positions
    )
    merchant_params: Mapping[str, str] = attrs.field(
        factory=dict, converter=_params, eq=False
    )

    @property
    def payment_id(self) -> None:
        """None: a payment is created, none is named (nothing to space it by)."""
        return None

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The unsigned fields, in the order they are signed and posted."""
        fields: list[tuple[str, FieldValue]] = [("pg_merchant_id", str(merchant_id))]
        if self.order_id is not None:
            fields.append(("pg_order_id", self.order_id))
        fields += [("pg_amount", php_str(self.amount)), ("pg_description", self.description)]
        fields += [(name, value) for name, value in self._optional() if value is not None]
        if self.receipt_positions:
            fields.append(receipt_positions_field(self.receipt_positions))
        fields.extend(self.merchant_params.items())
        fields.append(("pg_salt", salt))
        return fields

    def _optional(self) -> Sequence[tuple[str, str | None]]:
        def flag(value: bool | None) -> str | None:
            return None if value is None else _flag_text(value)

        lifetime = None if self.lifetime is None else str(self.lifetime)
        return (
            ("pg_currency", self.currency),
            ("pg_lifetime", lifetime),
            ("pg_testing_mode", flag(self.testing_mode)),
            ("pg_language", self.language),
            ("pg_auto_clearing", flag(self.auto_clearing)),
            ("pg_user_phone", self.user_phone),
            ("pg_user_contact_email", self.user_contact_email),
            ("pg_request_method", self.request_method),
            ("pg_check_url", self.check_url),
            ("pg_result_url", self.result_url),
            ("pg_success_url", self.success_url),
            ("pg_success_url_method", self.success_url_method),
            ("pg_failure_url", self.failure_url),
            ("pg_failure_url_method", self.failure_url_method),
        )


def _page_url(known: dict[str, str]) -> str:
    url = known.get("pg_redirect_url", "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MalformedReplyError(
            "init_payment reply has no usable pg_redirect_url", http_status=200
        )
    return url


@attrs.frozen
class PaymentPage:
    """A payment ``init_payment`` created: where to send the buyer.

    ``payment_id`` is the gateway's id of the new payment (keep it with your order
    before redirecting), ``redirect_url`` the payment page (its host varies: treat it
    as opaque), ``redirect_url_type`` the gateway's word for it (``need data``: the
    page still collects the buyer's data; ``payment system``), None when absent.
    """

    payment_id: int
    redirect_url: str
    redirect_url_type: str | None = None

    @classmethod
    def from_reply(cls, reply: GatewayReply, _payment_id: object = None) -> PaymentPage:
        """Build from a verified ``pg_status=ok`` ``init_payment.php`` reply.

        A reply without a positive ``pg_payment_id`` or an absolute
        ``pg_redirect_url`` is a MalformedReplyError.
        """
        known = scalars(reply.fields)
        payment_id = reply_int(known, "pg_payment_id", _OP, required=True)
        if not payment_id:
            raise MalformedReplyError("init_payment reply names payment 0", http_status=200)
        return cls(payment_id, _page_url(known), known.get("pg_redirect_url_type"))
