"""freedompay_async: an asyncio client for the Freedom Pay (ex-PayBox.money) gateway.

The whole public API, at a glance:

- Session: :class:`AsyncSession` (``init_payment``, ``cancel``, ``cancel_many``,
  ``status``, ``status_by_order``, ``clear``, ``refund``, ``refund_baseline``), speaking
  the Gateway or the Merchant API (:class:`Api`); per-payment spacing
  :class:`PaymentSpacing`; the settle window :class:`SettlePolicy`.
- Fleets (also in ``freedompay_async.coordination``): the :class:`Coordinator`
  protocol (:class:`Claim`), :class:`RedisCoordinator` (the ``redis`` extra) and
  :class:`MemoryCoordinator`.
- Configuration: :class:`Credentials`, :class:`GatewayURL` (presets,
  ``GatewayURL.preset(name)``), :class:`Limits`.
- Values: payment initiation :class:`InitPaymentRequest` -> :class:`PaymentPage`;
  :class:`CancelRequest`, :class:`ReceiptPosition`, :class:`CancelResult`,
  :class:`RevokeStatus`, :class:`CancelOutcome`, :class:`OutcomeState`,
  :class:`SettledBy`; status: :class:`StatusRequest`, :class:`StatusResult`,
  :class:`OrderStatusRequest`, :class:`PaymentStatus`, :class:`PaymentState`
  (:data:`PAID_STATES`),
  :class:`RevokedPayment`, :class:`RefundPayment`; clearing and refund:
  :class:`ClearRequest`, :class:`ClearResult`, :class:`ClearingStatus`,
  :class:`RefundRequest`, :class:`RefundResult`, :class:`RefundStatus`,
  :class:`RefundBaseline`.
- Signing: :class:`Signer` (protocol), :class:`Md5Signer`, :class:`RotatingSigner`,
  :func:`script_name`; the field tree a signer signs: :data:`Fields`, :data:`FieldValue`.
- Middleware: :class:`Middleware` (protocol), :data:`Handler`, :class:`GatewayReply`,
  :class:`RetryPolicy`, :class:`Pacing`, :class:`LoggingMiddleware`.
- Transport seam: :class:`Transport` (protocol), :class:`GatewayRequest` (what it
  sends), :class:`HttpResponse` (what it returns), :class:`AiohttpTransport`, and
  :class:`MockTransport` for tests; :func:`signed_response` writes a signed reply.
- Merchant side (also in ``freedompay_async.callbacks``): :func:`verify_redirect`
  -> :class:`RedirectBack`,
  :func:`verify_result_notify` -> :class:`ResultNotify`, :func:`verify_check_request`
  -> :class:`CheckRequest`, :func:`callback_reply`, :func:`confirm_result_notify`
  (against a :class:`StatusSource`), the answers kept for redeliveries
  (:class:`AnswerStore`, :class:`MemoryAnswerStore`, :func:`answer_key`); for aiohttp.web
  :func:`read_redirect`, :func:`read_result_notify`, :func:`read_check_request` and the
  handler factories :func:`redirect_handler`, :func:`result_notify_handler`,
  :func:`check_request_handler`.
- Errors: :class:`FreedomPayError` and its subclasses.
- ``freedompay_async.sandbox``: a local gateway for tests and demos.
"""

from ._config import Credentials, GatewayURL, Limits
from ._coordination.base import Claim, Coordinator
from ._coordination.memory import MemoryCoordinator
from ._coordination.redis_coordinator import RedisCoordinator
from ._exceptions import (
    AlreadyCancelledError,
    AlreadyClearedError,
    AlreadyRefundedError,
    CallbackBodyTooLargeError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    CoordinationError,
    CoordinationUnavailableError,
    DeadlineExceededError,
    FreedomPayError,
    GatewayDeclinedError,
    GatewayError,
    InternalError,
    InvalidRequestSignatureError,
    LeaseLostError,
    MalformedReplyError,
    NotCancelledError,
    NotDoneError,
    PaymentExistsError,
    PaymentNotConfirmedError,
    PaymentNotFoundError,
    ReplyError,
    ResponseTimeoutError,
    SessionClosedError,
    SignatureVerificationError,
    TransientGatewayError,
    TransportError,
    UnconfirmedReplyError,
    UnknownMerchantError,
    UnsettledError,
    ValidationError,
)
from ._layers.attempt_log import LoggingMiddleware
from ._layers.chain import (
    Handler,
    Middleware,
)
from ._layers.pacing import Pacing
from ._layers.retry import (
    RetryPolicy,
    default_retry_on,
)
from ._layers.spacing import PaymentSpacing
from ._operations.cancel import (
    CancelRequest,
    CancelResult,
    RevokeStatus,
)
from ._operations.families import Api
from ._operations.initiation import InitPaymentRequest, PaymentPage
from ._operations.money import (
    ClearingStatus,
    ClearRequest,
    ClearResult,
    RefundBaseline,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from ._operations.receipts import ReceiptPosition
from ._operations.status import (
    PAID_STATES,
    OrderStatusRequest,
    PaymentState,
    StatusRequest,
    StatusResult,
)
from ._operations.status_entries import PaymentStatus, RefundPayment, RevokedPayment
from ._session.outcome import (
    CancelOutcome,
    OutcomeState,
)
from ._session.session import AsyncSession
from ._settling.loop import SettledBy
from ._settling.policy import SettlePolicy
from ._transport import AiohttpTransport, GatewayRequest, HttpResponse, MockTransport, Transport
from ._version import __version__
from ._wire.fields import (
    Fields,
    FieldValue,
)
from ._wire.messages import GatewayReply
from ._wire.signing import (
    Md5Signer,
    RotatingSigner,
    Signer,
    script_name,
)
from ._wire.xml import signed_response
from .callbacks import (
    DEFAULT_MAX_BODY_BYTES,
    AnswerStore,
    CallbackAnswer,
    CallbackFields,
    CheckRequest,
    MemoryAnswerStore,
    QueryFreeAccessLogger,
    RedirectBack,
    ReplyStatus,
    ResultNotify,
    SignedMessage,
    StatusSource,
    StoredAnswer,
    answer_key,
    callback_reply,
    callback_script_name,
    check_request_handler,
    confirm_result_notify,
    read_check_request,
    read_redirect,
    read_result_notify,
    redirect_handler,
    result_notify_handler,
    verify_check_request,
    verify_redirect,
    verify_result_notify,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "PAID_STATES",
    "AiohttpTransport",
    "AlreadyCancelledError",
    "AlreadyClearedError",
    "AlreadyRefundedError",
    "AnswerStore",
    "Api",
    "AsyncSession",
    "CallbackAnswer",
    "CallbackBodyTooLargeError",
    "CallbackFields",
    "CancelOutcome",
    "CancelRequest",
    "CancelResult",
    "CheckRequest",
    "Claim",
    "ClearRequest",
    "ClearResult",
    "ClearingStatus",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "CoordinationError",
    "CoordinationUnavailableError",
    "Coordinator",
    "Credentials",
    "DeadlineExceededError",
    "FieldValue",
    "Fields",
    "FreedomPayError",
    "GatewayDeclinedError",
    "GatewayError",
    "GatewayReply",
    "GatewayRequest",
    "GatewayURL",
    "Handler",
    "HttpResponse",
    "InitPaymentRequest",
    "InternalError",
    "InvalidRequestSignatureError",
    "LeaseLostError",
    "Limits",
    "LoggingMiddleware",
    "MalformedReplyError",
    "Md5Signer",
    "MemoryAnswerStore",
    "MemoryCoordinator",
    "Middleware",
    "MockTransport",
    "NotCancelledError",
    "NotDoneError",
    "OrderStatusRequest",
    "OutcomeState",
    "Pacing",
    "PaymentExistsError",
    "PaymentNotConfirmedError",
    "PaymentNotFoundError",
    "PaymentPage",
    "PaymentSpacing",
    "PaymentState",
    "PaymentStatus",
    "QueryFreeAccessLogger",
    "ReceiptPosition",
    "RedirectBack",
    "RedisCoordinator",
    "RefundBaseline",
    "RefundPayment",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "ReplyError",
    "ReplyStatus",
    "ResponseTimeoutError",
    "ResultNotify",
    "RetryPolicy",
    "RevokeStatus",
    "RevokedPayment",
    "RotatingSigner",
    "SessionClosedError",
    "SettlePolicy",
    "SettledBy",
    "SignatureVerificationError",
    "SignedMessage",
    "Signer",
    "StatusRequest",
    "StatusResult",
    "StatusSource",
    "StoredAnswer",
    "TransientGatewayError",
    "Transport",
    "TransportError",
    "UnconfirmedReplyError",
    "UnknownMerchantError",
    "UnsettledError",
    "ValidationError",
    "__version__",
    "answer_key",
    "callback_reply",
    "callback_script_name",
    "check_request_handler",
    "confirm_result_notify",
    "default_retry_on",
    "read_check_request",
    "read_redirect",
    "read_result_notify",
    "redirect_handler",
    "result_notify_handler",
    "script_name",
    "signed_response",
    "verify_check_request",
    "verify_redirect",
    "verify_result_notify",
]
