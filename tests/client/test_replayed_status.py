"""A status reading that repeats one taken before is a replay, never a new reading.

Status replies name no request of ours; a man in the middle could answer a status query
with an earlier genuine reply about the same payment. Each genuine reply carries a
fresh random salt, so the readings that judge a cancel or a money movement are refused
when their signature was seen before; plain ``status()`` calls are left alone.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse
from freedompay_async._settling.readings import Readings

from ..helpers import FakeClock
from .scripted import PID, Gateway, refunded, status, status_body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _one_reply(body: bytes) -> list[object]:
    return [lambda request: HttpResponse(200, body)]


async def test_plain_status_calls_may_get_the_same_reply_twice(clock: FakeClock) -> None:
    gw = Gateway(clock, status=_one_reply(status_body("success")))  # type: ignore[arg-type]
    async with gw.session() as s:
        readings = [await s.status(PID) for _ in range(2)]
    assert readings[0] == readings[1] and readings[0].signature is not None


async def test_a_baseline_replayed_while_a_refund_settles_is_never_untouched(
    clock: FakeClock,
) -> None:
    """The refund's reply is lost; every later reading is the baseline's reply again.
    Without the check a quiet window would pass and the refund go out again."""
    gw = Gateway(
        clock,
        status=_one_reply(status_body("success", clearing_amount="1000.00")),  # type: ignore[arg-type]
        refund=[lambda request: (_ for _ in ()).throw(  # lost after sending
            fp.ConnectionLostError("dropped", payment_id=request.payment_id)), refunded()],
    )  # fmt: skip
    async with gw.session(window=10.0) as s:
        with pytest.raises(fp.FreedomPayError) as info:
            await s.refund(PID, Decimal("100"))
    assert info.value.outcome_unknown
    assert gw.seen["refund"] == 1  # never sent again on replayed "untouched" readings


async def test_fresh_readings_settle_as_before(clock: FakeClock) -> None:
    gw = Gateway(clock, status=[status("success", clearing_amount="1000.00")],
                 refund=[refunded()])  # fmt: skip
    async with gw.session() as s:
        result = await s.refund(PID, Decimal("100"))
    assert result.refund_status is fp.RefundStatus.SUCCESS


async def test_readings_forget_the_oldest_beyond_their_bound() -> None:
    def reading(n: int) -> fp.StatusResult:
        return fp.StatusResult(PID, None, "ok", fp.PaymentStatus.SUCCESS, "success", None,
                               None, None, None, None, None, signature=f"sig-{n}")  # fmt: skip

    async def never(request: fp.StatusRequest) -> fp.StatusResult:
        raise AssertionError("not asked")

    readings = Readings(never, remembered=3)
    for n in range(5):
        readings.check(reading(n))
    assert len(readings) == 3
    readings.check(reading(0))  # forgotten: taken as new
    with pytest.raises(fp.SignatureVerificationError, match="replayed"):
        readings.check(reading(4))
