"""freedompay_async: an asyncio client for the Freedom Pay (ex-PayBox.money) gateway.

The whole public API, at a glance:

- Session: :class:`AsyncSession` (``cancel``, ``cancel_many``), :class:`Credentials`,
  :class:`GatewayURL` presets, :class:`Limits`.
- Values: :class:`CancelRequest`, :class:`ReceiptPosition`, :class:`CancelResult`,
  :class:`RevokeStatus`, :class:`CancelOutcome`, :class:`OutcomeState`,
  :class:`GatewayRequest`, :class:`GatewayReply`.
- Signing: :class:`Signer` (protocol), :class:`Md5Signer`, :class:`RotatingSigner`,
  :func:`script_name`.
- Middleware: :class:`Middleware` (protocol), :class:`RetryPolicy`, :class:`Pacing`,
  :class:`LoggingMiddleware`, :class:`Transport` (protocol), :class:`AiohttpTransport`.
- Merchant side: :func:`verify_redirect` -> :class:`RedirectBack`,
  :func:`verify_result_notify` -> :class:`ResultNotify`, :func:`verify_check_request`
  -> :class:`CheckRequest`, :func:`callback_reply`; for aiohttp.web
  :func:`read_redirect`, :func:`read_result_notify`, :func:`read_check_request` and the
  handler factories :func:`redirect_handler`, :func:`result_notify_handler`,
  :func:`check_request_handler`.
- Errors: :class:`FreedomPayError` and its subclasses.
- ``freedompay_async.sandbox``: a local gateway for tests and demos.
"""

from ._batch import CancelOutcome, OutcomeState
from ._callbacks import (
    CallbackAnswer,
    CallbackBodyTooLargeError,
    CallbackFields,
    CheckRequest,
    RedirectBack,
    ReplyStatus,
    ResultNotify,
    callback_reply,
    callback_script_name,
    verify_check_request,
    verify_redirect,
    verify_result_notify,
)
from ._config import Credentials, GatewayURL
from ._exceptions import (
    AlreadyCancelledError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    FreedomPayError,
    GatewayDeclinedError,
    GatewayError,
    InternalError,
    InvalidRequestSignatureError,
    MalformedReplyError,
    PaymentNotFoundError,
    ReplyError,
    ResponseTimeoutError,
    SessionClosedError,
    SignatureVerificationError,
    TransientGatewayError,
    TransportError,
    UnknownMerchantError,
    ValidationError,
)
from ._middleware import Handler, LoggingMiddleware, Middleware
from ._models import (
    CancelRequest,
    CancelResult,
    GatewayReply,
    GatewayRequest,
    ReceiptPosition,
    RevokeStatus,
)
from ._pacing import Pacing
from ._retry import RetryPolicy, default_retry_on
from ._session import AsyncSession
from ._signing import Md5Signer, RotatingSigner, Signer, script_name
from ._transport import AiohttpTransport, Limits, Transport
from ._web import (
    DEFAULT_MAX_BODY_BYTES,
    check_request_handler,
    read_check_request,
    read_redirect,
    read_result_notify,
    redirect_handler,
    result_notify_handler,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "AiohttpTransport",
    "AlreadyCancelledError",
    "AsyncSession",
    "CallbackAnswer",
    "CallbackBodyTooLargeError",
    "CallbackFields",
    "CancelOutcome",
    "CancelRequest",
    "CancelResult",
    "CheckRequest",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "Credentials",
    "FreedomPayError",
    "GatewayDeclinedError",
    "GatewayError",
    "GatewayReply",
    "GatewayRequest",
    "GatewayURL",
    "Handler",
    "InternalError",
    "InvalidRequestSignatureError",
    "Limits",
    "LoggingMiddleware",
    "MalformedReplyError",
    "Md5Signer",
    "Middleware",
    "OutcomeState",
    "Pacing",
    "PaymentNotFoundError",
    "ReceiptPosition",
    "RedirectBack",
    "ReplyError",
    "ReplyStatus",
    "ResponseTimeoutError",
    "ResultNotify",
    "RetryPolicy",
    "RevokeStatus",
    "RotatingSigner",
    "SessionClosedError",
    "SignatureVerificationError",
    "Signer",
    "TransientGatewayError",
    "Transport",
    "TransportError",
    "UnknownMerchantError",
    "ValidationError",
    "__version__",
    "callback_reply",
    "callback_script_name",
    "check_request_handler",
    "default_retry_on",
    "read_check_request",
    "read_redirect",
    "read_result_notify",
    "redirect_handler",
    "result_notify_handler",
    "script_name",
    "verify_check_request",
    "verify_redirect",
    "verify_result_notify",
]
