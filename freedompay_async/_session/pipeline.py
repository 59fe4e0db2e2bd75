"""The session's middleware chains (one per retry rule) and its direct cancel lane.

The inner layers are shared by every operation (one spacing table, one in-flight cap,
pacing, the DEBUG logging layer); only the retry layer differs by the operation's
:class:`~freedompay_async._operations.RetryRule`. The caller's middlewares run
outermost, once per call; the caller's attempt middlewares run innermost, once per HTTP
attempt, after every wait (spacing, the in-flight cap, pacing). The direct lane (see
``_direct/lane.py``) is built from the same layer objects, so both paths share their
state; it is left out when a caller's layer must see each call or each attempt.

With a coordinator (a fleet's shared per-payment state) the spacing layer and its gate
are the coordinated ones, and the direct lane is left out: its spacing check must
answer at once, without awaiting, which a remote coordinator cannot.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .._config import Limits
from .._coordination.base import Coordinator
from .._direct.lane import CancelLane
from .._direct.shapes import ReplyShapes
from .._direct.template import CancelTemplate
from .._layers.attempt_log import LoggingMiddleware
from .._layers.chain import (
    Handler,
    Middleware,
    build_chain,
)
from .._layers.coordinated import CoordinatedSpacingMiddleware
from .._layers.inflight import InFlightLimit
from .._layers.pacing import (
    Pacing,
    PacingMiddleware,
)
from .._layers.retry import (
    RetryMiddleware,
    RetryPolicy,
)
from .._layers.spacing import (
    PaymentSpacing,
    PaymentSpacingMiddleware,
)
from .._operations.definitions import (
    CANCEL,
    RetryRule,
    retry_predicate,
)
from .._transport.base import Transport
from .._wire.signing import Signer

__all__ = ["FastParts", "build_pipeline"]


@attrs.frozen
class FastParts:
    """What the direct lane needs besides the layers (default md5 signer only)."""

    template: CancelTemplate
    shapes: ReplyShapes
    transport: Transport
    signer: Signer


def _spacing(
    spacing: PaymentSpacing | None, coordinator: Coordinator | None, retry: RetryPolicy
) -> tuple[PaymentSpacingMiddleware | CoordinatedSpacingMiddleware | None, Middleware | None]:
    """The spacing layer and its gate (the innermost layer): the session's own table,
    or the coordinator's; None for both when spacing is off."""
    if spacing is None:
        return None, None
    if coordinator is None:
        spacer = PaymentSpacingMiddleware(spacing, deadline_clock=retry.clock)
        return spacer, spacer.gate
    shared = CoordinatedSpacingMiddleware(spacing, coordinator, deadline_clock=retry.clock)
    return shared, shared.gate


def _retry_chains(
    core: Handler, middlewares: Sequence[Middleware], retry: RetryPolicy
) -> tuple[dict[RetryRule, Handler], RetryMiddleware | None]:
    """Per retry rule: the caller's middlewares, then a retry layer for that rule, then
    ``core``; and the cancel rule's retry layer (None when nothing is retried)."""
    chains: dict[RetryRule, Handler] = {}
    cancel_retry: RetryMiddleware | None = None
    for rule in RetryRule:
        outer: list[Middleware] = list(middlewares)
        if retry.retries or retry.deadline is not None:
            policy = retry  # the retry layer also sets the call's deadline
            if rule is not RetryRule.CONFIRMING:
                policy = attrs.evolve(policy, on=retry_predicate(rule, policy.on))
            retrying = RetryMiddleware(policy)
            if rule is CANCEL.retry:
                cancel_retry = retrying
            outer.append(retrying)
        chains[rule] = build_chain(core, outer)
    return chains, cancel_retry


def build_pipeline(
    send: Handler,
    *,
    retry: RetryPolicy,
    spacing: PaymentSpacing | None,
    pacing: Pacing | None,
    limits: Limits,
    log_attempts: bool,
    middlewares: Sequence[Middleware],
    attempt_middlewares: Sequence[Middleware],
    fast: FastParts | None,
    coordinator: Coordinator | None = None,
) -> tuple[dict[RetryRule, Handler], CancelLane | None]:
    """The chain for each retry rule, ending in ``send``, and the direct cancel lane
    (None unless ``fast`` is given and there is no caller middleware of either kind,
    no pacing and no coordinator)."""
    inner: list[Middleware] = []
    spacer, gate = _spacing(spacing, coordinator, retry)
    if spacer is not None:
        inner.append(spacer)
    inflight = InFlightLimit(limits.max_connections, clock=retry.clock)
    inner.append(inflight)
    if pacing is not None:
        inner.append(PacingMiddleware(pacing, deadline_clock=retry.clock))
    if gate is not None:
        inner.append(gate)  # marks each attempt's real start for the spacing
    log = LoggingMiddleware() if log_attempts else None
    if log is not None:
        inner.append(log)
    inner.extend(attempt_middlewares)  # innermost: they see the exchange itself
    core = build_chain(send, inner)
    chains, cancel_retry = _retry_chains(core, middlewares, retry)
    shared = coordinator is not None  # the lane's spacing check must not await
    if fast is None or middlewares or attempt_middlewares or pacing is not None or shared:
        return chains, None
    assert spacer is None or isinstance(spacer, PaymentSpacingMiddleware)
    lane = CancelLane(
        template=fast.template,
        shapes=fast.shapes,
        transport=fast.transport,
        signer=fast.signer,
        limits=limits,
        retry=cancel_retry,
        attempt_timeout=retry.attempt_timeout,
        spacing=spacer,
        inflight=inflight,
        log=log,
        core=core,
    )
    return chains, lane
