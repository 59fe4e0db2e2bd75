"""Verify what Freedom Pay sends to the merchant, and answer it signed.

Three kinds of incoming message, all signed with the same md5 ``pg_sig`` rule as the
Gateway API, but with the **merchant's** script name: the last path segment of the URL
the message was sent to (``https://shop.example/pay/result?x=1`` -> ``result``):

- the browser redirect back to ``success_url`` / ``failure_url``
  (:func:`verify_redirect` -> :class:`RedirectBack`);
- the server-to-server result notification to ``result_url``
  (:func:`verify_result_notify` -> :class:`ResultNotify`);
- the server-to-server check request to ``check_url``
  (:func:`verify_check_request` -> :class:`CheckRequest`).

The result and check callbacks expect a signed XML answer: :func:`callback_reply`.

What gets signed over: **every field received**, in the order received, ``pg_sig``
excluded, unknown fields and merchant parameters included (the documented rule: extra
parameters "are also involved in the signature calculation"). The returned value is
built from exactly the fields the signature covers, never from any other.

One exception: a GET callback to a URL that has a query string of its own
(``.../success?lang=ru``). The gateway appends its fields to that query, so the
merchant's own parameters arrive first, and the gateway may sign only the fields it
added. The signature is checked over all received fields first; if that fails and
``url`` has a query (pass the URL **as configured**, ``"https://shop.example/success?lang=ru"``)
and the received fields start with exactly that query, it is checked again without
those leading pairs, and then the value holds only the remaining, signed fields (the
merchant's own query is in ``url`` already). Pass a URL with a query only for a GET
to a configured URL; for a POST, or with the URL a request arrived at, pass it without
its query (the aiohttp helpers do). Simplest: register callback URLs without a query.

Nothing is half-parsed: a verify function returns a complete, verified value or raises
:class:`~freedompay_async.SignatureVerificationError` (missing, duplicated or wrong
``pg_sig``), :class:`~freedompay_async.ValidationError` (a verified message whose
content is unusable, e.g. a non-numeric payment id) or
:class:`~freedompay_async.ConfigurationError` (a URL that ends in ``/``).
"""

from __future__ import annotations

import contextlib
import enum
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Literal, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlsplit

import attrs

from ._exceptions import ConfigurationError, SignatureVerificationError, ValidationError
from ._fields import Fields, FieldValue, _split_bracket_name, form_pairs, from_form_pairs
from ._models import coerce_payment_id
from ._signing import Signer, script_name
from ._xml import XMLReplyError, parse_xml_fields

__all__ = [
    "CallbackAnswer",
    "CallbackBodyTooLargeError",
    "CallbackFields",
    "CheckRequest",
    "RedirectBack",
    "ReplyStatus",
    "ResultNotify",
    "callback_reply",
    "callback_script_name",
    "verify_check_request",
    "verify_redirect",
    "verify_result_notify",
]

#: What the verify functions accept: the received ``(name, value)`` pairs in order
#: (duplicates kept; bracket names such as ``a[0][b]`` are rebuilt into a tree), a
#: mapping of name to value, or the raw bytes of an XML body (XML request mode).
CallbackFields: TypeAlias = Sequence[tuple[str, str]] | Mapping[str, str] | bytes


class CallbackBodyTooLargeError(ValidationError):
    """An incoming callback or redirect body is larger than the configured limit.

    ``limit`` is the limit in bytes. Raised before the whole body is read.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ReplyStatus(enum.StrEnum):
    """The merchant's answer to a result or check callback (``pg_status``)."""

    #: Accept the payment (result) or allow it to proceed (check).
    OK = "ok"
    #: Refuse the payment. For a result callback it is honoured only when the
    #: notification had ``pg_can_reject=1``; otherwise the payment completes anyway.
    REJECTED = "rejected"
    #: The merchant could not interpret the data.
    ERROR = "error"


#: What a result/check handler may return: a status, or a status and a description
#: (the description is shown to the buyer as the reason for a refusal).
CallbackAnswer: TypeAlias = (
    ReplyStatus
    | Literal["ok", "rejected", "error"]
    | tuple[ReplyStatus | Literal["ok", "rejected", "error"], str]
)

_SIG = "pg_sig"
_V = TypeVar("_V")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_INT_DIGITS = 20
#: The deepest nesting accepted in a callback (``a[b][c]`` is 3 levels; XML counts alike).
_MAX_DEPTH = 32
# Characters XML 1.0 cannot carry at all (even as character references).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --- script name -------------------------------------------------------------------


def callback_script_name(url: str) -> str:
    """The script name an incoming message to ``url`` is signed with; refuses ``""``.

    ``url`` is a full URL, a path, or a bare script name (``"result"``). A URL ending
    in ``/`` has an empty script name: whether the gateway signs with ``""`` or with
    the segment before the slash is not documented, so that is a ConfigurationError
    rather than a guess.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    name = script_name(url)
    if not _is_text(name):
        raise ValidationError("callback URL's script name is not valid Unicode text")
    if not name:
        path = re.split(r"[?#]", url, maxsplit=1)[0]
        raise ConfigurationError(
            f"callback URL {path[:200]!r} ends in '/', so its script name (the last path "
            "segment, which the signature covers) is empty and ambiguous; register the "
            "URL at Freedom Pay without a trailing slash, or pass url= explicitly"
        )
    return name


# --- field tree --------------------------------------------------------------------


def _is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (no lone surrogate), as the signature needs."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep() -> ValidationError:
    return ValidationError(f"callback fields are nested deeper than {_MAX_DEPTH} levels")


def _check_depth(tree: Fields) -> None:
    """Refuse a tree nested deeper than ``_MAX_DEPTH`` levels (walked without recursion)."""
    stack: list[tuple[Fields, int]] = [(tree, 1)]
    while stack:
        items, depth = stack.pop()
        for _key, value in items:
            if not isinstance(value, str):
                if depth >= _MAX_DEPTH:
                    raise _too_deep()
                stack.append((value, depth + 1))


def _xml_tree(body: bytes) -> list[tuple[str, FieldValue]]:
    tree: list[tuple[str, FieldValue]] = []
    error: ValidationError | None = None
    try:
        _root, tree = parse_xml_fields(body)
    except XMLReplyError as exc:
        error = ValidationError(f"callback XML is not well-formed ({exc})")
    except RecursionError:
        error = _too_deep()
    if error is not None:
        raise error  # outside the handler: no parser state rides along as __context__
    _check_depth(tree)
    return tree


def _pairs(fields: Sequence[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    for pair in pairs:
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            raise TypeError("callback fields must be (str, str) pairs")
        name, value = pair
        if not (_is_text(name) and _is_text(value)):
            # A lone surrogate (e.g. from surrogateescape decoding) cannot be signed.
            raise ValidationError("a callback field is not valid Unicode text")
        # Checked before the tree is built: a name thousands of brackets deep would
        # cost quadratic time and memory there.
        if name.count("[") >= _MAX_DEPTH and len(_split_bracket_name(name)) > _MAX_DEPTH:
            raise _too_deep()
    return pairs


def _own_query(url: str) -> list[tuple[str, str]]:
    """The query parameters written into ``url`` itself (the merchant's, not the gateway's)."""
    query = urlsplit(url).query
    try:
        return parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return []


@attrs.frozen
class _Received:
    """A received message: its tree, and the tree without the URL's own query, if it has one."""

    tree: list[tuple[str, FieldValue]]
    without_own_query: list[tuple[str, FieldValue]] | None = None


def _receive(url: str, fields: CallbackFields) -> _Received:
    if isinstance(fields, bytes | bytearray | memoryview):
        return _Received(_xml_tree(bytes(fields)))
    pairs = _pairs(fields)
    tree = from_form_pairs(pairs)
    _check_depth(tree)
    xml = [value for key, value in tree if key == "pg_xml"]
    if xml:
        document = xml[0]
        if len(tree) != 1 or not isinstance(document, str):
            raise ValidationError("pg_xml must be the only field of an XML-mode callback")
        return _Received(_xml_tree(document.encode("utf-8")))
    # A GET callback to a URL with a query string of its own: the gateway appends its
    # fields after the merchant's. When ``url`` is the configured URL, its own query is
    # the leading run of received pairs, and the gateway may have signed only the rest.
    own = _own_query(url)
    if (
        own
        and len(pairs) > len(own)
        and pairs[: len(own)] == own
        and all(name != _SIG for name, _ in own)
    ):
        return _Received(tree, from_form_pairs(pairs[len(own) :]))
    return _Received(tree)


def _signer_verifies(kind: str, signer: Signer, script: str, tree: Fields, signature: str) -> bool:
    ok: bool | None = None
    # Text the signer cannot encode: its error may hold the pre-image, secret key included.
    with contextlib.suppress(UnicodeError, ValidationError):
        ok = bool(signer.verify(script, tree, signature))
    if ok is None:
        # A fresh error, raised outside the handler: no __context__ to leak the key.
        raise ValidationError(f"{kind} holds text that cannot be signature-checked")
    return ok


def _signed_tree(
    kind: str, script: str, received: _Received, signer: Signer, *, unsigned_ok: bool = False
) -> list[tuple[str, FieldValue]] | None:
    """Verify ``pg_sig`` and return exactly the tree it covers.

    None only for an accepted unsigned message. The value must be built from the
    returned tree alone: pairs outside the signature never reach it.
    """
    tree = received.tree
    signatures = [value for key, value in tree if key == _SIG]
    if signatures == [""]:
        signatures = []  # an empty pg_sig placeholder is no signature
    if not signatures:
        if unsigned_ok:
            return None
        raise SignatureVerificationError(f"{kind} is not signed (no pg_sig)")
    signature = signatures[0]
    if len(signatures) > 1 or not isinstance(signature, str):
        raise SignatureVerificationError(f"{kind} carries more than one pg_sig")
    if _signer_verifies(kind, signer, script, tree, signature):
        return tree
    rest = received.without_own_query
    # Every pair left out is equal to the URL's own query; none of them is in the value.
    if rest is not None and _signer_verifies(kind, signer, script, rest, signature):
        return rest
    raise SignatureVerificationError(
        f"{kind} signature does not verify with script name {script[:100]!r}: check the "
        "secret key and that the URL's last path segment is the one registered at "
        "Freedom Pay"
    )


# --- typed extraction --------------------------------------------------------------


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


def _names_only(value: Mapping[str, str]) -> str:
    # Merchant parameters and unknown fields may carry personal data: repr shows names.
    return f"<{', '.join(sorted(value))}>"


class _Reader:
    """Splits a verified tree into known pg_ fields, unknown pg_ fields and the rest."""

    def __init__(self, kind: str, tree: Fields, known: frozenset[str]) -> None:
        self.kind = kind
        self.values: dict[str, str] = {}
        extra: dict[str, str] = {}
        params: dict[str, str] = {}
        for key, value in tree:
            if key == _SIG:
                continue
            if key in known:
                if not isinstance(value, str):
                    raise ValidationError(f"{kind} field {key} is not a plain value")
                if key in self.values:
                    raise ValidationError(f"{kind} field {key} appears more than once")
                self.values[key] = value
                continue
            # Repeated unknown names keep their first value (all of them were verified).
            target = extra if key.startswith("pg_") else params
            for name, leaf in form_pairs([(key, value)]):
                target.setdefault(name, leaf)
        self.extra: Mapping[str, str] = MappingProxyType(extra)
        self.params: Mapping[str, str] = MappingProxyType(params)

    def text(self, name: str) -> str | None:
        """The field's value, None when absent or empty."""
        value = self.values.get(name)
        return value if value else None

    def required_text(self, name: str) -> str:
        """The field's value; ValidationError when absent or blank."""
        value = self.values.get(name)
        if value is None or not value.strip():
            raise ValidationError(f"{self.kind} has no {name}")
        return value

    def payment_id(self, name: str = "pg_payment_id") -> int:
        """A required payment id (a positive integer)."""
        raw = self.required_text(name)
        try:
            return coerce_payment_id(raw)
        except ValidationError:
            raise ValidationError(
                f"{self.kind} has a {name} that is not a positive integer"
            ) from None

    def optional_payment_id(self, name: str = "pg_payment_id") -> int | None:
        """An optional payment id."""
        return None if self.text(name) is None else self.payment_id(name)

    def integer(self, name: str) -> int:
        """A required non-negative integer."""
        text = self.required_text(name).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > _MAX_INT_DIGITS:
            raise ValidationError(f"{self.kind} has a non-numeric {name}")
        return int(text)

    def optional_integer(self, name: str) -> int | None:
        """An optional non-negative integer."""
        return None if self.text(name) is None else self.integer(name)

    def decimal(self, name: str) -> Decimal:
        """A required decimal amount (digits, optional sign and fraction; no exponent)."""
        text = self.required_text(name).strip()
        if not _DECIMAL.fullmatch(text):
            raise ValidationError(f"{self.kind} has a non-decimal {name}")
        return Decimal(text)

    def optional_decimal(self, name: str) -> Decimal | None:
        """An optional decimal amount."""
        return None if self.text(name) is None else self.decimal(name)

    def flag(self, name: str) -> bool | None:
        """A 0/1 flag (also true/false), None when absent or empty."""
        raw = self.text(name)
        if raw is None:
            return None
        text = raw.strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false"):
            return False
        raise ValidationError(f"{self.kind} has a {name} that is neither 0 nor 1")


# --- redirect back -----------------------------------------------------------------

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


def _has_error_code(tree: Fields) -> bool:
    return any(
        key == "pg_error_code" and (not isinstance(value, str) or value.strip())
        for key, value in tree
    )


@attrs.frozen
class RedirectBack:
    """The buyer's browser coming back to ``success_url`` or ``failure_url``.

    A redirect is UX, not proof of payment: the authoritative outcome is the result
    callback (:class:`ResultNotify`) or a status request. ``succeeded`` is True for a
    redirect without ``pg_error_code`` that was not received on the failure URL.
    ``signed`` is False only for an unsigned failure redirect accepted with
    ``allow_unsigned_failure=True``: then every value is untrusted.

    ``merchant_params`` holds every received field without the ``pg_`` prefix (nested
    ones under their bracket name, e.g. ``items[0][sku]``); ``extra`` holds ``pg_``
    fields this version does not know. ``fields`` is the signed tree: every received field,
    except a GET's leading configured-URL query when the signature leaves it out.
    """

    order_id: str
    payment_id: int | None
    succeeded: bool
    signed: bool = True
    error_code: int | None = None
    error_description: str | None = None
    status: str | None = None
    salt: str | None = attrs.field(default=None, repr=False)
    merchant_params: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_map, repr=_names_only
    )
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, repr=_names_only)
    fields: Fields = attrs.field(default=(), repr=False, eq=False)

    @classmethod
    def from_fields(
        cls, fields: Fields, *, signed: bool, success: bool | None = None
    ) -> RedirectBack:
        """Build from a field tree **whose signature was already checked** (no verification).

        ``success`` says which URL received it (True: success URL, False: failure URL,
        None: unknown). Use :func:`verify_redirect` to verify and build in one step.
        """
        reader = _Reader("redirect", fields, _REDIRECT_KNOWN)
        error_code = reader.optional_integer("pg_error_code")
        status = reader.text("pg_status")
        succeeded = (
            success is not False
            and error_code is None
            and (status is None or status.strip().lower() == "ok")
        )
        return cls(
            order_id=reader.required_text("pg_order_id"),
            payment_id=reader.payment_id() if succeeded else reader.optional_payment_id(),
            succeeded=succeeded,
            signed=signed,
            error_code=error_code,
            error_description=reader.text("pg_error_description"),
            status=status,
            salt=reader.text("pg_salt"),
            merchant_params=reader.params,
            extra=reader.extra,
            fields=tuple(fields),
        )


def verify_redirect(
    url: str,
    fields: CallbackFields,
    signer: Signer,
    *,
    success: bool | None = None,
    allow_unsigned_failure: bool = False,
) -> RedirectBack:
    """Verify a redirect back from the payment page and return it as a :class:`RedirectBack`.

    ``url`` is the success/failure URL as registered, or the URL the request arrived
    at without its query; its last path segment is the script name. Only for a GET to
    a URL registered with a query of its own, pass that configured URL with its query
    (see the module docs). ``fields`` are the fields as received: the POST body, or for
    a GET the whole query string, the merchant's own query parameters included.
    ``success`` tells which of the two URLs this is, when the app knows. The value is
    built from the signed fields only.

    A failure redirect (one with ``pg_error_code``, or ``success=False``) without
    ``pg_sig`` is accepted, as ``signed=False``, only with ``allow_unsigned_failure``:
    the frame payment route documents unsigned failure redirects. A ``pg_sig`` that is
    present is always checked.
    """
    script = callback_script_name(url)
    received = _receive(url, fields)
    failure = success is False or _has_error_code(received.tree)
    tree = _signed_tree(
        "redirect", script, received, signer, unsigned_ok=allow_unsigned_failure and failure
    )
    if tree is None:
        return RedirectBack.from_fields(received.tree, signed=False, success=False)
    return RedirectBack.from_fields(tree, signed=True, success=success)


def _verify_callback(
    kind: str, build: Callable[[Fields], _V], url: str, fields: CallbackFields, signer: Signer
) -> _V:
    """Verify a server-to-server callback of ``kind`` and build its value from the signed tree."""
    script = callback_script_name(url)
    tree = _signed_tree(kind, script, _receive(url, fields), signer)
    if tree is None:  # not reached: without unsigned_ok an unsigned message raises
        raise SignatureVerificationError(f"{kind} is not signed (no pg_sig)")
    return build(tree)


# --- result notify -----------------------------------------------------------------

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


@attrs.frozen
class ResultNotify:
    """A verified result notification (``result_url``): the authoritative payment outcome.

    ``result`` is ``pg_result`` (1: paid, 0: failed); ``succeeded`` is ``result == 1``.
    ``can_reject`` says whether answering ``rejected`` will be honoured.
    ``payment_date`` is the raw ``YYYY-MM-DD HH:MM:SS`` text (the gateway's local time;
    :attr:`payment_datetime` parses it). Absent or empty optional fields are None.

    The card token, expiry, owner and the buyer's phone and e-mail are left out of
    ``repr``; ``card_pan`` comes masked from the gateway and is shown.
    Freedom Pay redelivers a notification until it gets HTTP 200, so the same payment
    can arrive several times: deduplicate by ``payment_id``.
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
    salt: str | None = attrs.field(default=None, repr=False)
    merchant_params: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_map, repr=_names_only
    )
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, repr=_names_only)
    fields: Fields = attrs.field(default=(), repr=False, eq=False)

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
    def from_fields(cls, fields: Fields) -> ResultNotify:
        """Build from a field tree **whose signature was already checked** (no verification).

        Use :func:`verify_result_notify` to verify and build in one step.
        """
        r = _Reader("result notification", fields, _RESULT_KNOWN)
        return cls(
            order_id=r.required_text("pg_order_id"),
            payment_id=r.payment_id(),
            amount=r.decimal("pg_amount"),
            currency=r.required_text("pg_currency"),
            result=r.integer("pg_result"),
            can_reject=bool(r.flag("pg_can_reject")),
            testing_mode=bool(r.flag("pg_testing_mode")),
            payment_date=r.text("pg_payment_date"),
            description=r.text("pg_description"),
            net_amount=r.optional_decimal("pg_net_amount"),
            ps_amount=r.optional_decimal("pg_ps_amount"),
            ps_full_amount=r.optional_decimal("pg_ps_full_amount"),
            ps_currency=r.text("pg_ps_currency"),
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
            salt=r.text("pg_salt"),
            merchant_params=r.params,
            extra=r.extra,
            fields=tuple(fields),
        )


def verify_result_notify(url: str, fields: CallbackFields, signer: Signer) -> ResultNotify:
    """Verify a result notification and return it as a :class:`ResultNotify`.

    ``url`` is the ``result_url`` as registered, or the URL it arrived at without its
    query (the script name is its last path segment); ``fields`` the received fields,
    a mapping, or a raw XML body. A ``pg_xml`` field (XML request
    mode) is parsed and verified as XML. Answer with :func:`callback_reply`.
    """
    return _verify_callback("result notification", ResultNotify.from_fields, url, fields, signer)


# --- check request -----------------------------------------------------------------

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


@attrs.frozen
class CheckRequest:
    """A verified check request (``check_url``): may this payment go ahead?

    Answer ``ok`` to accept, ``rejected`` to refuse; not answering in time is a refusal.
    Fields the reference does not list for the check (there may be more in practice)
    land in ``extra`` (``pg_`` names) or ``merchant_params`` (the rest).
    """

    order_id: str
    payment_id: int
    amount: Decimal
    currency: str
    ps_amount: Decimal | None = None
    ps_full_amount: Decimal | None = None
    ps_currency: str | None = None
    salt: str | None = attrs.field(default=None, repr=False)
    merchant_params: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_map, repr=_names_only
    )
    extra: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, repr=_names_only)
    fields: Fields = attrs.field(default=(), repr=False, eq=False)

    @classmethod
    def from_fields(cls, fields: Fields) -> CheckRequest:
        """Build from a field tree **whose signature was already checked** (no verification).

        Use :func:`verify_check_request` to verify and build in one step.
        """
        r = _Reader("check request", fields, _CHECK_KNOWN)
        return cls(
            order_id=r.required_text("pg_order_id"),
            payment_id=r.payment_id(),
            amount=r.decimal("pg_amount"),
            currency=r.required_text("pg_currency"),
            ps_amount=r.optional_decimal("pg_ps_amount"),
            ps_full_amount=r.optional_decimal("pg_ps_full_amount"),
            ps_currency=r.text("pg_ps_currency"),
            salt=r.text("pg_salt"),
            merchant_params=r.params,
            extra=r.extra,
            fields=tuple(fields),
        )


def verify_check_request(url: str, fields: CallbackFields, signer: Signer) -> CheckRequest:
    """Verify a check request and return it as a :class:`CheckRequest`.

    Same inputs as :func:`verify_result_notify`. Answer with :func:`callback_reply`.
    """
    return _verify_callback("check request", CheckRequest.from_fields, url, fields, signer)


# --- signed reply ------------------------------------------------------------------


def _xml_text(name: str, value: str) -> str:
    if _XML_INVALID.search(value) or not _is_text(value):
        # Checked before signing: a lone surrogate would fail inside the signer.
        raise ValidationError(f"{name} holds a character XML cannot carry")
    # A literal CR would reach the gateway's parser as LF; a character reference keeps it.
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def callback_reply(
    url_or_script: str,
    signer: Signer,
    status: ReplyStatus | Literal["ok", "rejected", "error"],
    description: str = "",
    *,
    salt: str | None = None,
) -> bytes:
    """The signed XML answer to a result or check callback, as UTF-8 bytes.

    ``url_or_script`` is the callback URL (or its script name, e.g. ``"result"``): the
    reply is signed with the same script name as the callback. ``description`` is shown
    to the buyer when refusing. ``salt`` defaults to a fresh random one. Serve it with
    ``Content-Type: text/xml; charset=utf-8`` and HTTP 200::

        <?xml version="1.0" encoding="utf-8"?><response><pg_status>ok</pg_status>
        <pg_description>...</pg_description><pg_salt>...</pg_salt><pg_sig>...</pg_sig></response>
    """
    script = callback_script_name(url_or_script)
    try:
        status_value = ReplyStatus(status)
    except ValueError:
        raise ValidationError(
            f"reply status must be one of ok, rejected, error; got {str(status)[:40]!r}"
        ) from None
    if not isinstance(description, str):
        raise TypeError("description must be a str")
    if salt is None:
        salt = secrets.token_hex(8)
    elif not isinstance(salt, str) or not salt:
        raise ValidationError("salt must be a non-empty string")
    fields: list[tuple[str, FieldValue]] = [
        ("pg_status", status_value.value),
        ("pg_description", description),
        ("pg_salt", salt),
    ]
    parts = [
        f"<{name}>{_xml_text(name, value)}</{name}>"
        for name, value in fields
        if isinstance(value, str)
    ]
    signature = signer.sign(script, fields)
    return (
        '<?xml version="1.0" encoding="utf-8"?><response>'
        + "".join(parts)
        + f"<pg_sig>{_xml_text(_SIG, signature)}</pg_sig></response>"
    ).encode("utf-8")


def reply_parts(answer: CallbackAnswer) -> tuple[ReplyStatus, str]:
    """Split a handler's answer into ``(status, description)``; ValidationError if invalid."""
    status: object
    description: object = ""
    if isinstance(answer, tuple):
        if len(answer) != 2:
            raise ValidationError("a callback answer tuple must be (status, description)")
        status, description = answer
    else:
        status = answer
    if not isinstance(description, str):
        raise ValidationError("a callback answer's description must be a str")
    try:
        return ReplyStatus(status), description
    except ValueError:
        raise ValidationError(
            f"callback answer must be ok, rejected or error; got {str(status)[:40]!r}"
        ) from None
