"""A status reading that repeats one received before is a replay, never a new reading.

Status replies name no request of ours; a man in the middle could answer a status query
with an earlier genuine reply about the same payment. Each genuine reply carries a
fresh random salt, so a session refuses a reading whose salt it has seen.
"""

from __future__ import annotations

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse
from freedompay_async._wire.replay import REMEMBERED, ReplayGuard

from ..helpers import FakeClock
from .scripted import PID, Gateway, status_body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _same_reading_twice() -> list[object]:
    body = status_body("success")  # one genuine reading, served twice
    return [lambda request: HttpResponse(200, body)]


async def test_a_replayed_status_reading_is_refused_as_a_forgery(clock: FakeClock) -> None:
    gw = Gateway(clock, status=_same_reading_twice())  # type: ignore[arg-type]
    async with gw.session() as s:
        first = await s.status(PID)
        with pytest.raises(fp.SignatureVerificationError, match="replayed") as info:
            await s.status(PID)
    assert first.payment_id == PID
    assert info.value.payment_id == PID


async def test_fresh_readings_of_one_payment_are_each_believed(clock: FakeClock) -> None:
    from .scripted import status

    gw = Gateway(clock, status=[status("success")])
    async with gw.session() as s:
        readings = [await s.status(PID) for _ in range(3)]
    assert [r.payment_id for r in readings] == [PID] * 3


def test_the_guard_forgets_the_oldest_salts_beyond_its_bound() -> None:
    from freedompay_async._wire.messages import GatewayReply, GatewayRequest

    guard = ReplayGuard()
    request = GatewayRequest("status_v2", "http://gw/g2g/status_v2", "status_v2", PID, (), b"", "")
    for n in range(REMEMBERED + 10):
        guard.check(request, GatewayReply((("pg_salt", f"salt-{n}"),)))
    assert len(guard) == REMEMBERED
    guard.check(request, GatewayReply((("pg_salt", "salt-0"),)))  # forgotten: not a replay
    with pytest.raises(fp.SignatureVerificationError):
        guard.check(request, GatewayReply((("pg_salt", f"salt-{REMEMBERED + 9}"),)))
