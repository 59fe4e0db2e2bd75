"""A storm: 2,000 cancels with 30% faults of every kind, checked against the sandbox ledger."""

from __future__ import annotations

import collections

import freedompay_async as fp
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import FakeClock

SECRET = "storm-secret-1d2e3f"


async def test_a_fault_storm_never_loses_or_misreports_an_outcome() -> None:
    ids = list(range(10_000, 12_000))
    plan = FaultPlan(
        rate=0.3, kinds=FaultPlan.DEFAULT_KINDS, seed=20261121, slow_delay=1.0, retry_after=2
    )
    gw = SandboxGateway(secret_key=SECRET, faults=plan)
    gw.add_payments(ids)
    clock = FakeClock()  # backoff and Retry-After sleeps are virtual; network time is real
    retry = fp.RetryPolicy(attempts=4, attempt_timeout=0.5, deadline=None, sleep=clock.sleep)
    outcomes: list[fp.CancelOutcome] = []
    async with gw.serve() as url:
        creds = fp.Credentials(gw.merchant_id, SECRET)
        # Retries of one payment 0.01 s apart: spacing is not the subject.
        spacing = fp.PaymentSpacing(0.01)
        async with fp.AsyncSession(creds, base_url=url, retry=retry, spacing=spacing) as s:
            # Without reconciling, so that what a lost answer leaves behind is visible.
            async for outcome in s.cancel_many(iter(ids), concurrency=100, reconcile=False):
                outcomes.append(outcome)

    per_id = collections.Counter(o.payment_id for o in outcomes)
    assert len(outcomes) == len(ids) and set(per_id) == set(ids)
    assert set(per_id.values()) == {1}, "every id has exactly one outcome"

    states = collections.Counter(o.state for o in outcomes)
    for outcome in outcomes:
        assert outcome.payment_id is not None
        entry = gw.ledger[outcome.payment_id]
        assert entry.cancellations <= 1
        if outcome.state in (fp.OutcomeState.CANCELLED, fp.OutcomeState.ALREADY_CANCELLED):
            assert entry.state == "cancelled", outcome
        if entry.state == "cancelled":
            assert outcome.state in (
                fp.OutcomeState.CANCELLED,
                fp.OutcomeState.ALREADY_CANCELLED,
                fp.OutcomeState.UNKNOWN,
            ), outcome
        if outcome.state is fp.OutcomeState.FAILED:
            assert entry.state == "held"
        if plan.choose(outcome.payment_id, 0) is Fault.FORGED and outcome.attempts == 1:
            # The first reply was forged and read (a slow machine may time it out
            # instead, and then retry): it is never believed.
            assert outcome.state is fp.OutcomeState.UNKNOWN, outcome
            assert isinstance(outcome.error, fp.SignatureVerificationError)
        if isinstance(outcome.error, fp.UnconfirmedReplyError):
            # A retry answered "already cancelled" in a reply that names no payment:
            # never believed without status, whatever the ledger says.
            assert outcome.state is fp.OutcomeState.UNKNOWN and not outcome.final, outcome

    # The storm really exercised the interesting paths.
    assert states[fp.OutcomeState.CANCELLED] > 1000
    # Answers lost after the gateway acted, then retries answered 10033: left open.
    replayed = [o for o in outcomes if isinstance(o.error, fp.UnconfirmedReplyError)]
    assert replayed and any(gw.ledger[o.payment_id or 0].state == "cancelled" for o in replayed)
    assert not any(o.result is not None and o.result.confirmed_on_retry for o in outcomes)
    assert states[fp.OutcomeState.UNKNOWN] > 0
    assert any(isinstance(o.error, fp.SignatureVerificationError) for o in outcomes)
    assert gw.requests_total > len(ids)
