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
- Errors: :class:`FreedomPayError` and its subclasses.
"""

from ._batch import CancelOutcome, OutcomeState
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

__version__ = "0.1.0"

__all__ = [
    "AiohttpTransport",
    "AlreadyCancelledError",
    "AsyncSession",
    "CancelOutcome",
    "CancelRequest",
    "CancelResult",
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
    "ReplyError",
    "ResponseTimeoutError",
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
    "default_retry_on",
    "script_name",
]
