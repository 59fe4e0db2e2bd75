"""Redelivery-safe result callbacks: the same answer again, the application once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER, serve

OnResult = Callable[[fp.ResultNotify], Awaitable[fp.CallbackAnswer]]


@contextlib.asynccontextmanager
async def result_url(on_result: OnResult, **options: object) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/pay/result", fp.result_notify_handler(SIGNER, on_result, **options))  # type: ignore[arg-type]
    async with serve(app) as base:
        yield f"{base}/pay/result"


def answer_of(body: bytes) -> tuple[str, str]:
    _root, fields = parse_xml_fields(body)
    values = dict(fields)
    return str(values["pg_status"]), str(values["pg_description"])


GATEWAY = SandboxGateway(MERCHANT, SECRET)


async def notify(url: str, payment_id: int = 77, result: int = 1) -> tuple[int, bytes]:
    return await GATEWAY.send_result_notify(
        url, payment_id=payment_id, order_id="A-1", amount="150", result=result
    )


async def test_a_redelivery_gets_the_same_answer_and_never_reaches_the_app() -> None:
    calls: list[int] = []
    answers = iter([("rejected", "Неверная сумма"), ("ok", "changed my mind")])

    async def on_result(n: fp.ResultNotify) -> fp.CallbackAnswer:
        calls.append(n.payment_id)
        return next(answers)  # type: ignore[return-value]

    async with result_url(on_result) as url:
        first = await notify(url)
        second = await notify(url)
    assert first[0] == second[0] == 200
    assert answer_of(first[1]) == answer_of(second[1]) == ("rejected", "Неверная сумма")
    assert calls == [77]


async def test_deliveries_arriving_together_reach_the_app_once() -> None:
    calls: list[int] = []

    async def on_result(n: fp.ResultNotify) -> fp.CallbackAnswer:
        calls.append(n.payment_id)
        await asyncio.sleep(0.05)  # slow enough for the others to arrive meanwhile
        return "ok", "Order paid"

    async with result_url(on_result) as url:
        replies = await asyncio.gather(*(notify(url) for _ in range(5)))
    assert calls == [77]
    assert {answer_of(body) for _, body in replies} == {("ok", "Order paid")}


async def test_a_notification_the_app_raised_on_is_answered_500_and_handled_again() -> None:
    calls: list[int] = []

    async def on_result(n: fp.ResultNotify) -> fp.CallbackAnswer:
        calls.append(n.payment_id)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return "ok"

    async with result_url(on_result) as url:
        first = await notify(url)
        second = await notify(url)
        third = await notify(url)
    assert first[0] == 500 and second[0] == third[0] == 200
    assert calls == [77, 77]  # nothing was stored for the failed one


async def test_a_failure_and_a_later_success_of_one_payment_are_two_notifications() -> None:
    seen: list[int] = []

    async def on_result(n: fp.ResultNotify) -> fp.CallbackAnswer:
        seen.append(n.result)
        return "ok"

    async with result_url(on_result) as url:
        await notify(url, result=0)
        await notify(url, result=1)
        await notify(url, result=1)
    assert seen == [0, 1]


async def test_an_unconfirmed_notification_is_not_stored() -> None:
    class Status:
        def __init__(self) -> None:
            self.asked = 0

        async def status(self, payment_id: int, /) -> fp.StatusResult:
            self.asked += 1
            raise fp.ConnectError("gateway unreachable", payment_id=payment_id)

    source = Status()

    async def on_result(_n: fp.ResultNotify) -> fp.CallbackAnswer:
        raise AssertionError("an unconfirmed paid notification never reaches the app")

    async with result_url(on_result, confirm=source) as url:
        first = await notify(url)
        second = await notify(url)
    assert first[0] == second[0] == 503 and source.asked == 2


async def test_a_store_of_your_own_is_used_and_its_first_answer_wins() -> None:
    class Shared:
        """As if another process had answered this notification first."""

        def __init__(self) -> None:
            self.puts: list[str] = []

        async def get(self, key: str, /) -> tuple[str, str] | None:
            return None

        async def put(self, key: str, answer: tuple[str, str], /) -> tuple[str, str]:
            self.puts.append(key)
            return ("ok", "answered elsewhere")

    store = Shared()

    async def on_result(_n: fp.ResultNotify) -> fp.CallbackAnswer:
        return "error", "mine"

    async with result_url(on_result, answers=store) as url:
        status, body = await notify(url, payment_id=91)
    assert status == 200 and answer_of(body) == ("ok", "answered elsewhere")
    assert store.puts == [fp.answer_key(_notify_value(91))]


def _notify_value(payment_id: int) -> fp.ResultNotify:
    return fp.ResultNotify(
        order_id="A-1", payment_id=payment_id, amount=1, currency="KZT", result=1  # type: ignore[arg-type]
    )


def test_an_answer_store_must_have_get_and_put() -> None:
    with pytest.raises(fp.ConfigurationError, match="AnswerStore"):
        fp.result_notify_handler(SIGNER, _never, answers=object())  # type: ignore[arg-type]


async def _never(_n: fp.ResultNotify) -> fp.CallbackAnswer:
    raise AssertionError("not called")


async def test_the_memory_store_keeps_the_first_answer_and_a_bounded_number() -> None:
    store = fp.MemoryAnswerStore(max_entries=2)
    assert await store.put("1:1", ("ok", "")) == ("ok", "")
    assert await store.put("1:1", ("error", "later")) == ("ok", "")
    await store.put("2:1", ("ok", ""))
    await store.put("3:1", ("rejected", "no"))
    assert len(store) == 2 and await store.get("1:1") is None  # the oldest forgotten
    assert await store.get("3:1") == ("rejected", "no")
    with pytest.raises(fp.ConfigurationError):
        fp.MemoryAnswerStore(max_entries=0)
