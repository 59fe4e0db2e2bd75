"""The one settle loop: an attempt whose outcome is open, settled by asking status.

A cancel, clearing or refund whose attempt may have been acted on without a reply that
says so (a timeout, a lost connection, a garbled or forged reply, a refusal or claim
that names no payment) is settled here, the same way for every operation, by what
status shows about the payment (see ``rules.py`` for what each reading means):

- DONE: confirmed by status; a claim "already done" that status confirms, made by a
  call none of whose attempts may have been acted on, is the claim, now bound;
- BLOCKED: the payment went another way: a refusal stands, bound; else NotDoneError;
- UNTOUCHED: a refusal stands once status agrees that nothing happened (at once for a
  cancel, after a whole quiet window for money); otherwise the request goes out again
  (a cancel at once; money only after a whole window of untouched readings since the
  last send, and never once a trace was seen);
- MOVING: wait and ask again.

Status is polled with growing waits until the window after the last send is over;
what is still open then stays open (the last ambiguous error, with a note of what
status showed, or the last ambiguous result).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs

from .._exceptions import (
    ALREADY_DONE,
    CoordinationError,
    FreedomPayError,
    GatewayError,
    PaymentNotFoundError,
    SessionClosedError,
    SignatureVerificationError,
    UnconfirmedReplyError,
    UnsettledError,
)
from .._operations.status import StatusRequest, StatusResult
from .policy import SettlePolicy
from .rules import Rule, Seen, ambiguous, not_done

__all__ = ["Settled", "SettledBy", "settle"]

Q = TypeVar("Q")
R = TypeVar("R")
StatusCall = Callable[[StatusRequest], Awaitable[StatusResult]]


class SettledBy(enum.Enum):
    """How the outcome of one call was learnt (a batch journal's ``settled_by``)."""

    #: The call's own reply said it (done, already done, or refused), naming the payment.
    REPLY = "reply"
    #: An attempt was ambiguous and a retry was answered "already done", naming the payment.
    RETRY = "retry"
    #: status_v2 said it: done, already done, not done, or a refusal it agrees with.
    STATUS = "status"
    #: status_v2 showed no trace of it, the request was sent again and that answer decided.
    RESENT = "resent"


@attrs.frozen
class Settled(Generic[R]):
    """What settling found: a result or an error, how it was learnt (None: it was not,
    and the error or result is the last ambiguous one), the last status seen and the
    HTTP attempts of the whole call."""

    result: R | None
    error: FreedomPayError | None
    settled_by: SettledBy | None
    status: StatusResult | None
    attempts: int

    def unwrap(self) -> R:
        """The result, or raise the error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None  # one of the two is always set
        return self.result


class _Stop(Exception):
    """Asking status again cannot help (a refusal, a wrong URL, a spent deadline)."""


class _NotFound(_Stop):
    """Status says the gateway knows no such payment."""


def _refusal(outcome: object) -> GatewayError | None:
    """A gateway refusal (not transient, not an "already done" claim), or None."""
    if not isinstance(outcome, GatewayError) or isinstance(outcome, ALREADY_DONE):
        return None
    return None if outcome.retryable else outcome


def _known(error: FreedomPayError) -> FreedomPayError:
    """``error`` with the outcome settled: nothing was acted on."""
    error.maybe_processed = False
    error.earlier_maybe_processed = False
    return error


class _Settle(Generic[Q, R]):
    """One call's settling: its state between status readings."""

    def __init__(
        self,
        rule: Rule[Q, R],
        send: Callable[[Q], Awaitable[R]],
        status: StatusCall,
        request: Q,
        payment_id: int,
        policy: SettlePolicy,
    ) -> None:
        self.rule = rule
        self.send = send
        self.status = status
        self.request = request
        self.query = StatusRequest(payment_id)
        self.policy = policy
        self.delays = policy.delays()
        self.last: R | FreedomPayError | None = None
        self.attempts = 0
        self.resends = 0
        self.sent_at = policy.clock()
        self.traced = False
        self.seen: StatusResult | None = None
        self.queries = 0
        self.closed = False

    def record(self, outcome: R | FreedomPayError) -> None:
        self.last = outcome
        self.attempts += getattr(outcome, "attempts", 1)

    async def run(self) -> Settled[R]:
        while True:
            try:
                seen = await self.ask()
            except _NotFound:
                return self.not_found()
            except _Stop:
                break
            if seen is not None:
                found = await self.judge(seen)
                if found is not None:
                    return found
            if self.policy.clock() - self.sent_at >= self.policy.window:
                break
            await self.policy.sleep(self.delays.take())
        return self.unsettled()

    async def ask(self) -> StatusResult | None:
        """One status reading; None for a passing failure (ask again later)."""
        self.queries += 1
        try:
            seen = await self.status(self.query)
        except SessionClosedError:
            self.closed = True  # the caller closed the session: nothing more to ask
            raise _Stop from None
        except PaymentNotFoundError as exc:
            self.attempts += exc.attempts
            raise _NotFound from None
        except FreedomPayError as exc:
            self.attempts += exc.attempts
            if exc.retryable or isinstance(exc, SignatureVerificationError):
                return None  # lost, garbled or forged: ask again
            raise _Stop from None  # a refusal, a wrong URL's 404, a spent deadline
        self.attempts += seen.attempts
        self.seen = seen
        return seen

    async def judge(self, seen: StatusResult) -> Settled[R] | None:
        rule, last = self.rule, self.last
        claim = last.claim if isinstance(last, UnconfirmedReplyError) else None
        if claim is not None and rule.claim_holds(claim, seen) and not self.may_have_acted():
            claim.bound = True  # status confirms what it claimed, about this payment
            claim.attempts = self.attempts
            return Settled(None, _known(claim), SettledBy.STATUS, seen, self.attempts)
        verdict = rule.judge(self.request, seen)
        if verdict is Seen.DONE:
            result = rule.confirmed(self.request, seen, self.attempts)
            return Settled(result, None, SettledBy.STATUS, seen, self.attempts)
        if verdict is Seen.BLOCKED:
            return self.blocked(seen)
        if verdict is Seen.MOVING:
            self.traced = True
            return None
        return await self.untouched(seen)

    def not_found(self) -> Settled[R]:
        """Status knows no such payment. When the call was refused too (not found,
        say) and sending again is harmless (a cancel), the refusal stands; otherwise
        nothing is settled."""
        refusal = _refusal(self.last)
        if refusal is not None and self.rule.resend_at_once(self.last):
            refusal.attempts = self.attempts
            return Settled(None, _known(refusal), SettledBy.STATUS, None, self.attempts)
        return self.unsettled()

    def may_have_acted(self) -> bool:
        """Whether an attempt of this call (not only the claim's) may have been acted on."""
        last = self.last
        earlier = isinstance(last, FreedomPayError) and last.earlier_maybe_processed
        return self.resends > 0 or earlier

    def blocked(self, seen: StatusResult) -> Settled[R]:
        refusal = _refusal(self.last)
        error: FreedomPayError
        if refusal is not None:
            refusal.bound = True  # status shows the payment went the way it says
            error = _known(refusal)
        else:
            error = not_done(self.rule.operation, seen)
        error.attempts = self.attempts
        return Settled(None, error, SettledBy.STATUS, seen, self.attempts)

    def quiet(self) -> bool:
        """Whether a whole window of readings since the last send showed no trace."""
        waited = self.policy.clock() - self.sent_at >= self.policy.window
        return waited and not self.traced

    async def untouched(self, seen: StatusResult) -> Settled[R] | None:
        refusal = _refusal(self.last)
        at_once = self.rule.resend_at_once(self.last)
        if refusal is not None:
            if not (at_once or self.quiet()):
                return None
            # Status agrees that nothing happened: the refusal stands (its reason is
            # still the unbound reply's word, so a batch does not count it final).
            refusal.attempts = self.attempts
            return Settled(None, _known(refusal), SettledBy.STATUS, seen, self.attempts)
        if self.resends >= self.policy.resends or not (at_once or self.quiet()):
            return None
        return await self.resend(seen)

    async def resend(self, seen: StatusResult) -> Settled[R] | None:
        self.resends += 1
        outcome: R | FreedomPayError
        try:
            outcome = await self.send(self.request)
        except CoordinationError:
            raise  # the payment's lease is gone: nothing more is sent or confirmed
        except FreedomPayError as exc:
            outcome = exc
        self.record(outcome)
        if ambiguous(outcome):
            self.sent_at = self.policy.clock()
            self.traced = False
            self.delays.restart()
            return None
        if isinstance(outcome, FreedomPayError):
            outcome.attempts = self.attempts
            return Settled(None, outcome, SettledBy.RESENT, seen, self.attempts)
        result = attrs.evolve(outcome, attempts=self.attempts)  # type: ignore[misc]
        return Settled(result, None, SettledBy.RESENT, seen, self.attempts)

    def unsettled(self) -> Settled[R]:
        last = self.last
        if last is not None and not isinstance(last, FreedomPayError):
            result = attrs.evolve(last, attempts=self.attempts)  # type: ignore[misc]
            return Settled(result, None, None, self.seen, self.attempts)
        error = last if last is not None else UnsettledError(
            f"{self.rule.operation} may have been sent before: status did not settle it",
            payment_id=self.query.payment_id,
        )
        error.attempts = self.attempts
        with contextlib.suppress(AttributeError):
            error.add_note(self.note())
        return Settled(None, error, None, self.seen, self.attempts)

    def note(self) -> str:
        seen = self.seen
        shown = (
            "no status reply could be read"
            if seen is None
            else f"the last showed it {seen.state.value} (pg_payment_status "
            f"{seen.payment_status_raw!r}, refunded {seen.refunded})"
        )
        trace = "; a trace of it was seen, so it was not sent again" if self.traced else ""
        closed = "; the session was closed meanwhile" if self.closed else ""
        return (
            f"settling {self.rule.operation}: {self.queries} status queries, "
            f"{self.resends} sent again; {shown}{trace}{closed}"
        )


async def settle(
    rule: Rule[Q, R],
    send: Callable[[Q], Awaitable[R]],
    status: StatusCall,
    request: Q,
    first: R | FreedomPayError | None,
    *,
    payment_id: int,
    policy: SettlePolicy,
) -> Settled[R]:
    """Settle ``request`` whose outcome ``first`` left open, by status (see the module).

    ``first`` is the ambiguous result or error of the call's first send; None when the
    request may have been sent by an earlier run (a journaled intent without an
    outcome): then nothing is sent before status has been watched for a whole window.
    ``send`` sends the request again (through the session's chain, spacing included);
    ``status`` asks ``/g2g/status_v2``.
    """
    run = _Settle(rule, send, status, request, payment_id, policy)
    if first is not None:
        run.record(first)
    return await run.run()
