"""Hostile review of the fleet's money notes: two sessions on one real Redis are two
workers; a man in the middle (``tests/e2e/mitm.py``) loses the first worker's replies.

A finding still open is ``xfail(strict=True)``: the fix turns it into a pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.sandbox import SandboxGateway

from ..e2e.mitm import Forward, Mitm, Reply
from ..helpers import MERCHANT, SECRET, signed

#: The first worker gives up quickly; the second watches long enough to see anything.
SHORT = fp.SettlePolicy(window=0.3, poll_initial=0.05, poll_max=0.1)
SETTLE = fp.SettlePolicy(window=1.0, poll_initial=0.05, poll_max=0.2)


def _session(url: str, coordinator: fp.Coordinator, settle: fp.SettlePolicy) -> fp.AsyncSession:
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url=url,
        coordinator=coordinator,
        spacing=fp.PaymentSpacing(0.01),
        retry=fp.RetryPolicy(attempts=2, attempt_timeout=1.0, wait_initial=0.01, wait_max=0.02),
        settle=settle,
        log_attempts=False,
    )


async def _forward_then_502(_payment_id: int | None, forward: Forward) -> Reply:
    """The gateway acts; the client gets a proxy's 502."""
    await forward()
    return Reply(502, b"<html>bad gateway</html>", "text/html")


def _status_502_after_first() -> Callable[[int | None, Forward], Awaitable[Reply]]:
    """The first status reading (the refund's baseline) passes; every later one is lost."""
    seen: list[Reply] = []

    async def rule(_payment_id: int | None, forward: Forward) -> Reply:
        if not seen:
            seen.append(await forward())
            return seen[0]
        return Reply(502, b"<html>bad gateway</html>", "text/html")

    return rule


@contextlib.asynccontextmanager
async def _first_worker_lost_its_refund(
    redis_url: str, prefix: str, pid: int, amount: str
) -> AsyncIterator[tuple[SandboxGateway, str]]:
    """Worker one clears ``pid`` and refunds ``amount``: the refund reaches the gateway,
    its reply and every status reading are lost, so it ends with the outcome unknown and
    its note left in Redis. Yields the gateway and its URL, for worker two."""
    gateway = SandboxGateway(MERCHANT, SECRET, status_lag=0)
    gateway.add_payments([pid])
    async with gateway.serve() as url:
        mitm = Mitm(url)
        one = fp.RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=2.0)
        async with mitm.serve(), _session(mitm.url, one, SHORT) as s:
            await s.clear(pid)
            mitm.rules["refund"] = _forward_then_502
            mitm.rules["status_v2"] = _status_502_after_first()
            with pytest.raises(fp.FreedomPayError) as info:
                await s.refund(pid, amount)
            assert info.value.outcome_unknown
        assert len(gateway.ledger[pid].refunds) == 1  # premise: it happened
        yield gateway, url


async def test_a_redelivered_refund_matches_its_note_whatever_the_amount_spelling(
    redis_url: str, prefix: str
) -> None:
    pid = 31
    async with _first_worker_lost_its_refund(redis_url, prefix, pid, "100.00") as (gw, url):
        two = fp.RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=2.0)
        async with _session(url, two, SETTLE) as s:
            try:
                outcome: object = await s.refund(pid, 100)  # the same job, redelivered
            except fp.FreedomPayError as exc:
                outcome = exc
    refunds = [amount for _, amount in gw.ledger[pid].refunds]
    assert refunds == [Decimal("100.00")], f"refunded twice; worker two got {outcome!r}"


async def test_a_fresh_baseline_never_overrides_a_noted_one(redis_url: str, prefix: str) -> None:
    pid = 32
    async with _first_worker_lost_its_refund(redis_url, prefix, pid, "100.00") as (gw, url):
        two = fp.RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=2.0)
        async with _session(url, two, SETTLE) as s:
            baseline = await s.refund_baseline(pid)  # already shows worker one's refund
            assert baseline.refunded == Decimal("100.00")
            try:
                outcome: object = await s.refund(pid, "100.00", baseline=baseline)
            except fp.FreedomPayError as exc:
                outcome = exc
    refunds = [amount for _, amount in gw.ledger[pid].refunds]
    assert refunds == [Decimal("100.00")], f"refunded twice; worker two got {outcome!r}"


async def test_a_pending_refund_keeps_its_note(redis_url: str, prefix: str) -> None:
    pid = 33
    gateway = SandboxGateway(MERCHANT, SECRET, status_lag=0)
    gateway.add_payments([pid])
    async with gateway.serve() as url:
        mitm = Mitm(url)

        async def pending(_payment_id: int | None, forward: Forward) -> Reply:
            reply = await forward()  # the gateway takes the refund ...
            _root, fields = parse_xml_fields(reply.body)
            answer = [
                (n, "pending" if n == "pg_refund_status" else v)
                for n, v in fields
                if n not in ("pg_salt", "pg_sig")
            ]
            # ... and, as a real one may, says it is pending (signed with its key).
            return Reply(200, signed(answer, "refund"))  # type: ignore[arg-type]

        one = fp.RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=2.0)
        two = fp.RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=2.0)
        async with mitm.serve():
            async with _session(mitm.url, one, SETTLE) as s:
                await s.clear(pid)
                mitm.rules["refund"] = pending
                first = await s.refund(pid, "100.00")
                assert first.refund_status is fp.RefundStatus.PENDING  # premise
            mitm.rules.pop("refund")
            async with _session(mitm.url, two, SETTLE) as s:
                try:
                    outcome: object = await s.refund(pid, "100.00")  # the job, redelivered
                except fp.FreedomPayError as exc:
                    outcome = exc
    refunds = [amount for _, amount in gateway.ledger[pid].refunds]
    assert refunds == [Decimal("100.00")], f"refunded twice; worker two got {outcome!r}"
