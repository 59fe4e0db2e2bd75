"""init_payment is not idempotent: an ambiguous attempt never creates a second payment.

What may have created a payment unanswered is never sent again; it is settled by
looking the order up (get_status2.php), against the sandbox and a scripted server.
"""

from __future__ import annotations

import pytest

import freedompay_async as fp
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import MERCHANT, SECRET, FakeClock, on_clock
from .scripted import Scripted, merchant_session, reply

SHORT = fp.SettlePolicy(window=0.6, poll_initial=0.05, poll_max=0.1)


def session(url: str, api: str = "merchant") -> fp.AsyncSession:
    """Settling in virtual time: a payment an init made shows in status at once."""
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url=url,
        api=api,  # type: ignore[arg-type]
        settle=on_clock(SHORT, FakeClock()),
        retry=fp.RetryPolicy(attempt_timeout=0.5, wait_initial=0.01, wait_max=0.02),
    )


def payments_of(gateway: SandboxGateway, order_id: str) -> list[int]:
    return [pid for pid in gateway.ledger if gateway.ledger[pid].order_id == order_id]


@pytest.mark.parametrize("api", ["gateway", "merchant"])
@pytest.mark.parametrize("fault", [Fault.RESET_AFTER, Fault.GARBAGE, Fault.FORGED])
async def test_a_payment_created_without_an_answer_is_found_never_made_twice(
    served: tuple[SandboxGateway, str], fault: Fault, api: str
) -> None:
    gateway, url = served
    gateway.inject_init(fault)
    async with session(url, api) as fp_:
        with pytest.raises(fp.PaymentExistsError) as info:
            await fp_.init_payment(order_id="A-1", amount="150", description="Order A-1")
    (created,) = payments_of(gateway, "A-1")  # exactly one payment for the order
    error = info.value
    assert error.order_id == "A-1" and error.payment_id == created
    assert error.state == "new" and not error.outcome_unknown
    assert gateway.requests_by_operation["init_payment.php"] == 1  # never sent again


async def test_a_lost_reply_that_created_nothing_is_settled_as_not_created(
    served: tuple[SandboxGateway, str],
) -> None:
    gateway, url = served
    gateway.inject_init(Fault.RESET_BEFORE)  # dropped before anything was done
    async with session(url) as fp_:
        with pytest.raises(fp.ConnectionLostError) as info:
            await fp_.init_payment(order_id="A-2", amount="150", description="Order A-2")
        assert not info.value.outcome_unknown  # a whole window showed no payment
        assert "none was created" in " ".join(info.value.__notes__)
        assert payments_of(gateway, "A-2") == []
        page = await fp_.init_payment(order_id="A-2", amount="150", description="Order A-2")
    assert payments_of(gateway, "A-2") == [page.payment_id]


async def test_a_signed_refusal_with_no_payment_for_the_order_stands_at_once() -> None:
    scripted = Scripted()
    error = [("pg_status", "error"), ("pg_error_code", "9993"),
             ("pg_error_description", "URL not specified")]  # fmt: skip
    scripted.on("init_payment.php", reply(error, "init_payment.php"))
    scripted.on("get_status2.php", reply([("pg_status", "ok"), ("pg_payment_id", "0")],
                                         "get_status2.php"))  # fmt: skip
    async with merchant_session(scripted) as fp_:
        with pytest.raises(fp.GatewayDeclinedError) as info:
            await fp_.init_payment(order_id="A-3", amount="1", description="x")
    assert info.value.code == 9993 and not info.value.outcome_unknown
    assert len(scripted.asked("get_status2.php")) == 1  # no window to wait out
    assert len(scripted.asked("init_payment.php")) == 1


async def test_without_reconcile_or_an_order_id_the_outcome_stays_unknown(
    served: tuple[SandboxGateway, str],
) -> None:
    gateway, url = served
    gateway.inject_init(Fault.RESET_AFTER, Fault.RESET_AFTER)
    async with session(url) as fp_:
        with pytest.raises(fp.ConnectionLostError) as unnamed:
            await fp_.init_payment(amount="150", description="no order id")
        with pytest.raises(fp.ConnectionLostError) as unreconciled:
            await fp_.init_payment(
                order_id="A-4", amount="150", description="x", reconcile=False
            )
    assert unnamed.value.outcome_unknown and unreconciled.value.outcome_unknown
    assert "without an order id" in " ".join(unnamed.value.__notes__)
    assert "'A-4'" in " ".join(unreconciled.value.__notes__)
    assert gateway.requests_by_operation["init_payment.php"] == 2
    assert gateway.requests_by_operation["get_status2.php"] == 0


async def test_when_the_lookup_keeps_failing_the_outcome_stays_unknown() -> None:
    scripted = Scripted()
    scripted.on("init_payment.php", lambda _fields: b"<html>502 Bad Gateway</html>")
    scripted.on("get_status2.php", lambda _fields: b"garbage")
    async with merchant_session(scripted, retry=fp.RetryPolicy(attempts=1)) as fp_:
        with pytest.raises(fp.MalformedReplyError) as info:
            await fp_.init_payment(order_id="A-5", amount="1", description="x")
    assert info.value.outcome_unknown
    assert "the outcome is unknown" in " ".join(info.value.__notes__)
    assert len(scripted.asked("init_payment.php")) == 1
    assert len(scripted.asked("get_status2.php")) >= 2  # asked until the window ended


async def test_a_duplicate_order_id_names_the_payment_it_already_has(
    served: tuple[SandboxGateway, str],
) -> None:
    gateway, url = served
    async with session(url) as fp_:
        page = await fp_.init_payment(order_id="A-6", amount="150", description="x")
        with pytest.raises(fp.PaymentExistsError) as info:  # 9991, then the lookup
            await fp_.init_payment(order_id="A-6", amount="150", description="x")
    assert info.value.payment_id == page.payment_id
    assert payments_of(gateway, "A-6") == [page.payment_id]
