"""Both families' clearings and refunds take the one money path (held per payment, a
lease under a coordinator, settled by status), against the sandbox on loopback."""

from __future__ import annotations

from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import FakeClock, on_clock

FAST_SETTLE = fp.SettlePolicy(window=1.0, poll_initial=0.02, poll_max=0.1)


def lagging_gateway(clock: FakeClock) -> SandboxGateway:
    """A sandbox whose status lags 0.05 s of ``clock``, the session's virtual clock."""
    gw = SandboxGateway(clock=clock)
    gw.status_lag = 0.05
    return gw


def session(
    gw: SandboxGateway,
    base: str,
    api: str,
    clock: FakeClock,
    coordinator: fp.Coordinator | None = None,
) -> fp.AsyncSession:
    """Spacing and settling on ``clock``, the sandbox's too: its status lag passes as
    the session waits, with no real wait."""
    return fp.AsyncSession(
        fp.Credentials(gw.merchant_id, gw.secret_key),
        base_url=base,
        api=api,
        retry=fp.RetryPolicy.none(),
        spacing=on_clock(fp.PaymentSpacing(0.001), clock),
        settle=on_clock(FAST_SETTLE, clock),
        coordinator=coordinator,
    )


@pytest.mark.parametrize("api", ["merchant", "gateway"])
async def test_a_reconciled_full_refund_refunds_what_is_left_once(
    api: str, clock: FakeClock
) -> None:
    gw = lagging_gateway(clock)
    gw.add_payments([1], amount="500.00")
    async with gw.serve() as base, session(gw, base, api, clock) as fp_session:
        await fp_session.clear(1)
        await fp_session.refund(1, "100.00")
        await clock.sleep(2 * gw.status_lag)  # full=True takes the amount from status
        gw.inject(1, None, Fault.RESET_AFTER)  # the status read answers; the refund is lost
        result = await fp_session.refund(1, full=True)
    assert result.confirmed_by_status
    assert gw.ledger[1].refund_amount == Decimal("500.00")
    assert [amount for _, amount in gw.ledger[1].refunds] == [Decimal("100.00"), Decimal("400.00")]


@pytest.mark.parametrize("api", ["merchant", "gateway"])
async def test_under_a_coordinator_both_families_move_money_under_the_lease(
    api: str, clock: FakeClock
) -> None:
    gw = lagging_gateway(clock)
    gw.add_payments([2], amount="300.00")
    coordinator = fp.MemoryCoordinator()
    async with gw.serve() as base, session(gw, base, api, clock, coordinator) as fp_session:
        gw.inject(2, Fault.RESET_AFTER)  # the clearing is done, its answer lost
        cleared = await fp_session.clear(2)
        refund = await fp_session.refund(2, "50.00")
    assert cleared.confirmed_by_status
    assert refund.refund_status is fp.RefundStatus.SUCCESS
    entry = gw.ledger[2]
    assert entry.clearings == 1 and entry.clearing_requests == 1
    assert entry.refund_amount == Decimal("50.00") and entry.refund_requests == 1
    expected = "revoke.php" if api == "merchant" else "refund"
    assert gw.requests_by_operation[expected] == 1
