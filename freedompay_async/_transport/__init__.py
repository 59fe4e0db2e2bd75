"""The transport seam: what goes out, what comes back, and the transports that carry it."""

from .._wire.messages import (
    GatewayRequest,
    HttpResponse,
)
from .base import Transport
from .default import AiohttpTransport
from .mock import MockTransport

__all__ = ["AiohttpTransport", "GatewayRequest", "HttpResponse", "MockTransport", "Transport"]
