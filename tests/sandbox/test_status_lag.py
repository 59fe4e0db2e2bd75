"""status_v2 lags a clearing or a refund by ``status_lag`` seconds; the operations do not.

The lag runs in virtual time (the sandbox on loopback, on an event loop whose clock
jumps), or on a clock the test moves by hand.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import pytest

from freedompay_async.sandbox import SandboxGateway, add_arguments
from freedompay_async.sandbox._command import gateway_from_args

from ..helpers import MERCHANT, SECRET, run_in_virtual_time
from .raw import ask

Picture = tuple[str, str, str]


async def picture(url: str, pid: int) -> Picture:
    """What status_v2 shows: (captured, clearing amount, refund amount)."""
    reply = await ask(url, "status_v2", pid)
    return reply["pg_captured"], reply["pg_clearing_amount"], reply["pg_refund_amount"]


def test_the_default_lag_is_small_and_there() -> None:
    assert SandboxGateway().status_lag == 1.0
    assert SandboxGateway(status_lag=0).status_lag == 0.0


def test_status_shows_a_clearing_late_and_a_second_clearing_is_refused_at_once() -> None:
    async def main(clock: Callable[[], float]) -> tuple[list[Picture], str, str, str]:
        gw = SandboxGateway(MERCHANT, SECRET)  # the default lag: 1 s
        gw.add_payments([1], amount="500.00")
        seen = []
        async with gw.serve() as url:
            cleared = await ask(url, "clearing", 1)
            start = clock()
            again = await ask(url, "clearing", 1)  # the real state: already cleared
            state = gw.ledger[1].state
            for at in (0.0, 0.5, 0.9, 1.0, 3.0):
                await asyncio.sleep(start + at - clock())
                seen.append(await picture(url, 1))
        return seen, cleared["pg_status"], again["pg_error_code"], state

    seen, cleared, again, state = run_in_virtual_time(main)
    assert (cleared, again, state) == ("ok", "10036", "cleared")
    old, new = ("0", "0.00", "0.00"), ("1", "500.00", "0.00")
    assert seen == [old, old, old, new, new]


def test_each_refund_shows_after_the_lag_in_order_and_the_limit_is_checked_at_once() -> None:
    async def main(clock: Callable[[], float]) -> tuple[list[str], list[str]]:
        gw = SandboxGateway(MERCHANT, SECRET, status_lag=1.0)
        gw.add_payments([1], amount="1000.00")
        shown, answers = [], []
        async with gw.serve() as url:
            await ask(url, "clearing", 1)
            await asyncio.sleep(5)
            start = clock()
            answers.append((await ask(url, "refund", 1, "600.00"))["pg_status"])
            await asyncio.sleep(0.5)
            answers.append((await ask(url, "refund", 1, "400.00"))["pg_status"])
            answers.append((await ask(url, "refund", 1, "0.01"))["pg_error_code"])
            for at in (0.5, 1.0, 1.2, 1.5):
                await asyncio.sleep(start + at - clock())
                shown.append((await picture(url, 1))[2])
        return answers, shown

    answers, shown = run_in_virtual_time(main)
    assert answers == ["ok", "ok", "10020"]  # 600 + 400 done, 0.01 over the cleared amount
    assert shown == ["0.00", "-600.00", "-600.00", "-1000.00"]


def test_a_cancel_shows_at_once() -> None:
    async def main(_clock: Callable[[], float]) -> str:
        gw = SandboxGateway(MERCHANT, SECRET, status_lag=5.0)
        gw.add_payments([1])
        async with gw.serve() as url:
            await ask(url, "cancel", 1)
            return (await ask(url, "status_v2", 1))["pg_payment_status"]

    assert run_in_virtual_time(main) == "revoked"


async def test_an_injected_clock_drives_the_lag_and_a_zero_lag_turns_it_off() -> None:
    now = [100.0]
    gw = SandboxGateway(MERCHANT, SECRET, status_lag=2.0, clock=lambda: now[0])
    gw.add_payments([1, 2])
    async with gw.serve() as url:
        await ask(url, "clearing", 1)
        now[0] += 1.999
        early = await picture(url, 1)
        now[0] += 0.001
        late = await picture(url, 1)
        gw.status_lag = 0
        await ask(url, "clearing", 2)
        at_once = await picture(url, 2)
    assert early[0] == "0" and late[0] == "1" and at_once[0] == "1"
    arrivals = gw.ledger[1].arrivals
    assert arrivals == ((100.0, "clearing"), (101.999, "status_v2"), (102.0, "status_v2"))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_status_lag_is_validated(bad: float) -> None:
    with pytest.raises(ValueError):
        SandboxGateway(status_lag=bad)
    gw = SandboxGateway()
    with pytest.raises(ValueError):
        gw.status_lag = bad
    with pytest.raises(TypeError):
        SandboxGateway(status_lag=True)
    assert gw.status_lag == 1.0


def test_the_command_line_sets_the_lag() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert gateway_from_args(parser.parse_args(["--port=0"])).status_lag == 1.0
    args = parser.parse_args(["--port=0", "--status-lag", "0.25"])
    assert gateway_from_args(args).status_lag == 0.25
    assert gateway_from_args(parser.parse_args(["--port=0", "--status-lag=0"])).status_lag == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--port=0", "--status-lag=-1"])
