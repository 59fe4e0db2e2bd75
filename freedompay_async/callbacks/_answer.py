"""The merchant's signed answer to a result or check callback."""

from __future__ import annotations

import enum
from typing import Literal, TypeAlias

from .._exceptions import ValidationError
from .._wire.fields import FieldValue
from .._wire.signing import Signer
from .._wire.xml import signed_response
from ._receive import callback_script_name

__all__ = ["CallbackAnswer", "ReplyStatus", "callback_reply", "reply_parts"]


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
        raise ValidationError("description must be a str")
    fields: list[tuple[str, FieldValue]] = [
        ("pg_status", status_value.value),
        ("pg_description", description),
    ]
    return signed_response(script, signer, fields, salt=salt)


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
