"""Verifying merchant-side messages: the signature policy, then the typed value.

The policy (:func:`signed_tree`): exactly one non-empty ``pg_sig``, at the top level
(a ``pg_sig`` inside a group makes the message malformed: the signature skips it and
everything under it), checked over every received field in the order received (the
URL's own query set aside only for a GET to a configured URL), compared in constant
time by the :class:`~freedompay_async.Signer`. The value is then built from exactly
the tree the signature covers: every leaf of it is covered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TypeVar

from .._exceptions import SignatureVerificationError, ValidationError
from .._wire.fields import (
    Fields,
    FieldValue,
)
from .._wire.signing import Signer
from ._messages import CheckRequest, RedirectBack, ResultNotify, has_error_code
from ._receive import (
    SIG,
    CallbackFields,
    Received,
    callback_script_name,
    nested_signature,
    receive,
)

__all__ = ["signed_tree", "verify_check_request", "verify_redirect", "verify_result_notify"]

_V = TypeVar("_V")


def _signer_verifies(kind: str, signer: Signer, script: str, tree: Fields, signature: str) -> bool:
    ok: bool | None = None
    # Text the signer cannot encode: its error may hold the pre-image, secret key included.
    with contextlib.suppress(UnicodeError, ValidationError):
        ok = bool(signer.verify(script, tree, signature))
    if ok is None:
        # A fresh error, raised outside the handler: no __context__ to leak the key.
        raise ValidationError(f"{kind} holds text that cannot be signature-checked")
    return ok


def signed_tree(
    kind: str, script: str, received: Received, signer: Signer, *, unsigned_ok: bool = False
) -> list[tuple[str, FieldValue]] | None:
    """Verify ``pg_sig`` and return exactly the tree it covers.

    None only for an accepted unsigned message. The value must be built from the
    returned tree alone: pairs outside the signature never reach it.
    """
    tree = received.tree
    if nested_signature(tree):
        raise SignatureVerificationError(
            f"{kind} carries a pg_sig inside a group of fields: the signature does not "
            "cover what such a group holds, so nothing of the message is read"
        )
    signatures = [value for key, value in tree if key == SIG]
    if signatures == [""]:
        signatures = []  # an empty pg_sig placeholder is no signature
    if not signatures:
        if unsigned_ok:
            return None
        raise SignatureVerificationError(f"{kind} is not signed (no pg_sig)")
    signature = signatures[0]
    if len(signatures) > 1:
        raise SignatureVerificationError(f"{kind} carries more than one pg_sig")
    if not isinstance(signature, str):
        raise SignatureVerificationError(f"{kind} carries a pg_sig that is a group of fields")
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


def verify_redirect(
    url: str,
    fields: CallbackFields,
    signer: Signer,
    *,
    success: bool | None = None,
    allow_unsigned_failure: bool = False,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> RedirectBack:
    """Verify a redirect back from the payment page and return it as a :class:`RedirectBack`.

    ``url`` is the success/failure URL as registered, or the URL the request arrived
    at without its query; its last path segment is the script name. Only for a GET to
    a URL registered with a query of its own, pass that configured URL with its query
    (see the module docs). ``fields`` are the fields as received: the POST body, or for
    a GET the whole query string, the merchant's own query parameters included.
    ``success`` tells which of the two URLs this is, when the app knows. The value is
    built from the signed fields only, under their documented names; ``pg_`` fields
    this version does not know land in ``extra``. With ``strict=True`` they are a
    ValidationError unless named in ``allow_fields`` (field names are not covered by
    the signature; see :mod:`freedompay_async.callbacks`). A ``pg_sig`` inside a group
    of fields is a SignatureVerificationError.

    A failure redirect (one with ``pg_error_code``, or ``success=False``) without
    ``pg_sig`` is accepted, as ``signed=False``, only with ``allow_unsigned_failure``:
    the frame payment route documents unsigned failure redirects. A ``pg_sig`` that is
    present is always checked.
    """
    script = callback_script_name(url)
    received = receive(url, fields)
    failure = success is False or has_error_code(received.tree)
    tree = signed_tree(
        "redirect", script, received, signer, unsigned_ok=allow_unsigned_failure and failure
    )
    signed = tree is not None
    return RedirectBack.from_fields(
        received.tree if tree is None else tree,
        signed=signed,
        success=success if signed else False,
        allow_fields=allow_fields,
        strict=strict,
    )


def _verify_callback(
    kind: str,
    build: Callable[..., _V],
    url: str,
    fields: CallbackFields,
    signer: Signer,
    allow_fields: Iterable[str],
    strict: bool,
) -> _V:
    """Verify a server-to-server callback of ``kind`` and build its value from the signed tree."""
    script = callback_script_name(url)
    tree = signed_tree(kind, script, receive(url, fields), signer)
    if tree is None:  # not reached: without unsigned_ok an unsigned message raises
        raise SignatureVerificationError(f"{kind} is not signed (no pg_sig)")
    return build(tree, allow_fields=allow_fields, strict=strict)


def verify_result_notify(
    url: str,
    fields: CallbackFields,
    signer: Signer,
    *,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> ResultNotify:
    """Verify a result notification and return it as a :class:`ResultNotify`.

    ``url`` is the ``result_url`` as registered, or the URL it arrived at without its
    query (the script name is its last path segment); ``fields`` the received fields,
    a mapping, or a raw XML body. A ``pg_xml`` field (XML request mode) is parsed and
    verified as XML. ``pg_`` fields this version does not know land in ``extra``;
    with ``strict=True`` they are refused (ValidationError) unless named in
    ``allow_fields``. A paid notification is the gateway's word only once a status
    query agrees: :func:`confirm_result_notify`. Answer with :func:`callback_reply`,
    echoing ``salt``.
    """
    return _verify_callback(
        "result notification", ResultNotify.from_fields, url, fields, signer, allow_fields, strict
    )


def verify_check_request(
    url: str,
    fields: CallbackFields,
    signer: Signer,
    *,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> CheckRequest:
    """Verify a check request and return it as a :class:`CheckRequest`.

    Same inputs and options as :func:`verify_result_notify`. Answer with
    :func:`callback_reply`.
    """
    return _verify_callback(
        "check request", CheckRequest.from_fields, url, fields, signer, allow_fields, strict
    )
