"""The direct cancel path: the chain's answer, faster, and only when nothing must wait.

A session with no middleware of the caller's sends a plain-id cancel on its direct
path; a no-op middleware forces the same cancel through the chain. Every test compares
the two or checks that the direct path stepped aside.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport
from freedompay_async._direct.lane import CancelLane

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, serve, signed

CREDS = fp.Credentials(MERCHANT, SECRET)


async def through(request: GatewayRequest, call_next: fp.Handler) -> fp.GatewayReply:
    """A caller's middleware that changes nothing: its presence turns the lane off."""
    return await call_next(request)


def make(respond: MockTransport, *, chain: bool = False, **options: object) -> fp.AsyncSession:
    return fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=respond,
        middlewares=[through] if chain else [],
        spacing=None,
        **options,  # type: ignore[arg-type]
    )


def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record each payment id the direct path sends."""
    taken: list[int] = []
    original = CancelLane.run

    async def run(self: CancelLane, request: GatewayRequest, payment_id: int) -> fp.CancelResult:
        taken.append(payment_id)
        return await original(self, request, payment_id)

    monkeypatch.setattr(CancelLane, "run", run)
    return taken


revoke_status = st.sampled_from(["success", "pending", "error", "SUCCESS", " success", "odd", ""])
revoke_id = st.one_of(
    st.none(),
    st.sampled_from(["", "0", "17", " 17", "9" * 20, "9" * 21, "1a"]),
    st.integers(0, 10**12).map(str),
)
extra = st.lists(
    st.tuples(
        st.sampled_from(["pg_datetime", "pg_x", "pg_description"]), st.text("ab1 ", max_size=4)
    ),
    max_size=2,
    unique_by=lambda pair: pair[0],
)


def cancel_reply(pid: str, status: str, rid: str | None, more: list[tuple[str, str]]) -> bytes:
    fields = [("pg_payment_id", pid), ("pg_status", "ok"), ("pg_revoke_status", status)]
    if rid is not None:
        fields.insert(1, ("pg_payment_revoke_id", rid))
    return signed(fields + more)


async def answer(
    pid: int, status: str, rid: str | None, more: list[tuple[str, str]], *, other: bool, chain: bool
) -> fp.CancelResult | type[Exception]:
    # A plain reply of the same shape first, to teach it; then the one under test.
    usual = cancel_reply(str(pid), "success", None if rid is None else "1", more)
    replied = str(pid + 1) if other else str(pid)  # a reply about another payment is refused
    bodies = [usual, cancel_reply(replied, status, rid, more)]
    transport = MockTransport(lambda request: HttpResponse(200, bodies.pop(0)))
    async with make(transport, chain=chain) as session:
        await session.cancel(pid, reconcile=False)
        try:
            return await session.cancel(pid, reconcile=False)
        except fp.FreedomPayError as exc:
            return type(exc)


@settings(max_examples=80, deadline=None)
@example(status="success", rid="9" * 21, more=[], pid=5, other=False)  # over the id bound
@example(status="success", rid="9" * 20, more=[], pid=5, other=False)
@example(status="pending", rid="", more=[("pg_x", "a")], pid=5, other=False)
@given(
    status=revoke_status,
    rid=revoke_id,
    more=extra,
    pid=st.integers(1, 10**19),
    other=st.booleans(),
)
def test_the_direct_path_gives_the_chains_result_or_error(
    status: str, rid: str | None, more: list[tuple[str, str]], pid: int, other: bool
) -> None:
    direct = asyncio.run(answer(pid, status, rid, more, other=other, chain=False))
    chained = asyncio.run(answer(pid, status, rid, more, other=other, chain=True))
    assert direct == chained


async def test_a_plain_cancel_takes_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = counting(monkeypatch)
    body = signed([("pg_payment_id", "5"), ("pg_status", "ok"), ("pg_revoke_status", "success")])
    async with make(MockTransport(lambda request: HttpResponse(200, body))) as session:
        result = await session.cancel(5, reconcile=False)
        via_batch = [o async for o in session.cancel_many([5, fp.CancelRequest(5)], concurrency=1)]
    assert result.revoke_status is fp.RevokeStatus.SUCCESS
    assert [o.state for o in via_batch] == [fp.OutcomeState.CANCELLED] * 2
    assert taken == [5, 5, 5]


async def test_caller_middleware_or_debug_logging_takes_the_chain(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    taken = counting(monkeypatch)
    body = signed([("pg_payment_id", "5"), ("pg_status", "ok"), ("pg_revoke_status", "success")])
    async with make(MockTransport(lambda request: HttpResponse(200, body)), chain=True) as session:
        await session.cancel(5, reconcile=False)
    with caplog.at_level(logging.DEBUG, logger="freedompay_async"):
        async with make(MockTransport(lambda request: HttpResponse(200, body))) as session:
            await session.cancel(5, reconcile=False)
    assert taken == []
    assert any("cancel payment=5 attempt=1 ok" in r.getMessage() for r in caplog.records)


async def test_a_full_connection_pool_sends_through_the_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = counting(monkeypatch)
    release = asyncio.Event()
    body = signed([("pg_payment_id", "1"), ("pg_status", "ok"), ("pg_revoke_status", "success")])

    async def respond(request: GatewayRequest) -> HttpResponse:
        await release.wait()
        return HttpResponse(200, body.replace(b">1<", f">{request.payment_id}<".encode()))

    async with make(MockTransport(respond), limits=fp.Limits(max_connections=1)) as session:
        first = asyncio.create_task(session.cancel(1, reconcile=False))
        await asyncio.sleep(0)
        second = asyncio.create_task(session.cancel(1, reconcile=False))
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(first, second, return_exceptions=True)
    assert taken == [1]  # the second found no free slot, so the chain queued it
    assert [r.revoke_status for r in results] == [fp.RevokeStatus.SUCCESS] * 2  # type: ignore[union-attr]


async def test_a_failed_first_attempt_is_retried_by_the_chain_within_one_deadline() -> None:
    clock = FakeClock()
    seen: list[GatewayRequest] = []

    def respond(request: GatewayRequest) -> HttpResponse:
        seen.append(request)
        if len(seen) == 1:
            raise fp.ConnectionLostError("lost after sending", payment_id=request.payment_id)
        return HttpResponse(200, signed([("pg_payment_id", "9"), *error_fields(10033)]))

    retry = fp.RetryPolicy(wait_initial=0.0, clock=clock, sleep=clock.sleep)
    async with make(MockTransport(respond), retry=retry) as session:
        result = await session.cancel(9, reconcile=False)
    assert result.confirmed_on_retry and result.attempts == 2
    assert [r.attempt for r in seen] == [1, 2]
    assert seen[0].deadline == seen[1].deadline == 1000.0 + retry.deadline  # type: ignore[operator]
    assert seen[0].body == seen[1].body  # the same signed bytes


async def test_a_final_error_on_the_direct_path_is_the_chains_error() -> None:
    def respond(request: GatewayRequest) -> HttpResponse:
        return HttpResponse(200, signed([("pg_payment_id", "9"), *error_fields(10033)]))

    def unbound(request: GatewayRequest) -> HttpResponse:
        return HttpResponse(200, signed(error_fields(10033)))

    errors: list[tuple[object, ...]] = []
    for chain in (False, True):
        async with make(MockTransport(respond), chain=chain) as session:
            with pytest.raises(fp.AlreadyCancelledError) as caught:
                await session.cancel(9, reconcile=False)
        errors.append((caught.value.attempts, caught.value.signed, caught.value.__context__))
        async with make(MockTransport(unbound), chain=chain) as session:
            with pytest.raises(fp.UnconfirmedReplyError) as unconfirmed:
                await session.cancel(9, reconcile=False)
        errors.append((unconfirmed.value.attempts, unconfirmed.value.claimed_code))
    assert errors[0] == errors[2] == (1, True, None)
    assert errors[1] == errors[3] == (1, 10033)


async def test_the_direct_path_keeps_each_payments_spacing() -> None:
    clock = FakeClock()
    sent: list[float] = []
    body = signed([("pg_payment_id", "3"), ("pg_status", "ok"), ("pg_revoke_status", "success")])

    def respond(request: GatewayRequest) -> HttpResponse:
        sent.append(clock())
        return HttpResponse(200, body)

    spacing = fp.PaymentSpacing(1.5, clock=clock, sleep=clock.sleep)
    retry = fp.RetryPolicy(clock=clock, sleep=clock.sleep)
    async with fp.AsyncSession(
        CREDS, base_url="http://gw", transport=MockTransport(respond), spacing=spacing, retry=retry
    ) as session:
        await session.cancel(3, reconcile=False)
        await session.cancel(3, reconcile=False)
        await session.cancel(3, reconcile=False)
    assert sent == [1000.0, 1001.5, 1003.0]


async def test_a_retried_calls_final_error_carries_no_earlier_error_as_context() -> None:
    def respond(request: GatewayRequest) -> HttpResponse:
        raise fp.ConnectionLostError("lost", payment_id=request.payment_id)

    clock = FakeClock()
    seen = []
    for chain in (False, True):
        retry = fp.RetryPolicy(attempts=2, wait_initial=0.0, clock=clock, sleep=clock.sleep)
        async with make(MockTransport(respond), chain=chain, retry=retry) as session:
            with pytest.raises(fp.ConnectionLostError) as caught:
                await session.cancel(9, reconcile=False)
        seen.append((caught.value.attempts, caught.value.__context__))
    assert seen == [(2, None), (2, None)]


async def test_a_clock_that_raises_leaks_no_connection_slot() -> None:
    """The direct path takes a connection slot before it reads the spacing clock; a
    clock that raises must give the slot back, or the next cancel waits forever."""
    fail = [True]

    def clock() -> float:
        if fail.pop() if fail else False:
            raise RuntimeError("clock failed")
        return 1000.0

    body = signed([("pg_payment_id", "2"), ("pg_status", "ok"), ("pg_revoke_status", "success")])
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=MockTransport(lambda request: HttpResponse(200, body)),
        limits=fp.Limits(max_connections=1),
        spacing=fp.PaymentSpacing(clock=clock),
        retry=fp.RetryPolicy(deadline=None),
    ) as session:
        with pytest.raises(RuntimeError):
            await session.cancel(1, reconcile=False)
        second = session.cancel(2, reconcile=False)
        result = await asyncio.wait_for(second, timeout=10)  # a hang guard only
    assert result.revoke_status is fp.RevokeStatus.SUCCESS


Reply = tuple[int, bytes, dict[str, str]]
OK_FIELDS = [("pg_payment_id", "7"), ("pg_status", "ok"), ("pg_revoke_status", "success")]
OK_7 = signed(OK_FIELDS)
#: (status, body, headers) of a second reply, after an ok one has taught the shape.
LOOPBACK_REPLIES: dict[str, Reply] = {
    "ok": (200, OK_7, {}),
    "ok with an unknown field": (
        200,
        signed([*OK_FIELDS[:2], ("pg_revoke_status", "pending"), ("pg_x", "1")]),
        {},
    ),
    "another payment's ok": (200, OK_7.replace(b">7<", b">8<"), {}),
    "forged ok": (200, OK_7.replace(b"success", b"pending"), {}),
    "signed already cancelled": (200, signed(error_fields(10033)), {}),
    "garbage": (200, b"<html>busy</html>", {}),
    "503 with Retry-After": (503, b"busy", {"Retry-After": "0"}),
}


@pytest.mark.parametrize("case", sorted(LOOPBACK_REPLIES))
async def test_over_loopback_the_direct_path_gives_the_chains_answer(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default transport the direct path sends the body and reads the reply's
    bytes without request or response values; every answer must still be the chain's."""
    status, body, headers = LOOPBACK_REPLIES[case]
    taken = counting(monkeypatch)
    answers: list[object] = []
    for chain in (False, True):
        replies = [(200, OK_7, {}), (status, body, headers)]

        async def reply(request: web.Request, replies: list[Reply] = replies) -> web.Response:
            code, text, extra = replies.pop(0) if replies else (200, OK_7, {})
            return web.Response(status=code, body=text, headers=extra)

        app = web.Application()
        app.router.add_post("/g2g/cancel", reply)
        async with (
            serve(app) as url,
            fp.AsyncSession(
                CREDS,
                base_url=url,
                middlewares=[through] if chain else [],
                spacing=None,
                retry=fp.RetryPolicy(attempts=1),
            ) as session,
        ):
            await session.cancel(7, reconcile=False)
            try:
                answers.append(await session.cancel(7, reconcile=False))
            except fp.FreedomPayError as exc:
                answers.append((type(exc), exc.payment_id, exc.outcome_unknown))
    assert answers[0] == answers[1]
    assert taken == [7, 7]  # both cancels of the first session took the direct path


async def test_a_transport_subclass_that_overrides_send_sees_every_request() -> None:
    """Only the stock transport's send is bypassed by the direct path: a subclass that
    overrides send (to record, to sign a header, to route) gets every cancel."""
    seen: list[bytes] = []

    class Recording(fp.AiohttpTransport):
        async def send(self, request: GatewayRequest) -> HttpResponse:
            seen.append(request.body)
            return await super().send(request)

    async def reply(request: web.Request) -> web.Response:
        form = await request.post()
        return web.Response(body=signed(ok_fields(int(str(form["pg_payment_id"])))))

    app = web.Application()
    app.router.add_post("/g2g/cancel", reply)
    async with serve(app) as url:
        transport = Recording()
        async with fp.AsyncSession(
            CREDS, base_url=url, transport=transport, spacing=None
        ) as session:
            results = [await session.cancel(pid, reconcile=False) for pid in (1, 2, 3, 4)]
    assert [result.payment_id for result in results] == [1, 2, 3, 4]
    assert len(seen) == 4 and all(b'name="pg_payment_id"' in body for body in seen)


async def test_over_loopback_a_retried_direct_cancel_exchanges_body_only_then_through_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first attempt goes out on the body-only exchange; a 503 sends the retry
    through the chain (the transport's send), and the cancel ends cancelled."""
    calls: list[str] = []
    exchange = fp.AiohttpTransport._exchange
    send = fp.AiohttpTransport.send

    async def counted_exchange(self: fp.AiohttpTransport, *args: object, **kw: object) -> object:
        calls.append("exchange")
        return await exchange(self, *args, **kw)  # type: ignore[arg-type]

    async def counted_send(self: fp.AiohttpTransport, request: GatewayRequest) -> HttpResponse:
        calls.append("send")
        return await send(self, request)

    monkeypatch.setattr(fp.AiohttpTransport, "_exchange", counted_exchange)
    replies = [web.Response(status=503, body=b"busy")]

    async def reply(request: web.Request) -> web.Response:
        return replies.pop(0) if replies else web.Response(body=signed(ok_fields(7)))

    app = web.Application()
    app.router.add_post("/g2g/cancel", reply)
    async with (
        serve(app) as url,
        fp.AsyncSession(
            CREDS, base_url=url, spacing=None, retry=fp.RetryPolicy(attempts=2, wait_initial=0)
        ) as session,
    ):
        # patched after the session is built, as the lane's check looks at the class
        monkeypatch.setattr(fp.AiohttpTransport, "send", counted_send)
        result = await session.cancel(7, reconcile=False)
    assert result.revoke_status is fp.RevokeStatus.SUCCESS and result.attempts == 2
    assert calls == ["exchange", "send", "exchange"]
