"""The Merchant API family on the one operation model: paths, fields, claims, settling."""

from __future__ import annotations

from decimal import Decimal

import pytest

import freedompay_async as fp

from .scripted import Scripted, merchant_session, reply, status3

PID = 7001


# -- choosing the family ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("merchant", fp.Api.MERCHANT),
        ("Gateway", fp.Api.GATEWAY),
        (fp.Api.MERCHANT, fp.Api.MERCHANT),
    ],
)
def test_api_takes_the_strings_and_the_enum(value: object, expected: fp.Api) -> None:
    session = fp.AsyncSession(fp.Credentials(1, "k"), api=value)  # type: ignore[arg-type]
    assert session.api is expected and f"api={expected.value}" in repr(session)


def test_the_default_family_is_the_gateway_api_and_others_are_refused() -> None:
    assert fp.AsyncSession(fp.Credentials(1, "k")).api is fp.Api.GATEWAY
    with pytest.raises(fp.ConfigurationError, match="gateway' or 'merchant"):
        fp.AsyncSession(fp.Credentials(1, "k"), api="g2g")  # type: ignore[arg-type]


# -- the requests ------------------------------------------------------------------------


async def test_status_goes_to_get_status3_and_sends_the_order_id_only_when_given() -> None:
    scripted = Scripted()
    scripted.on("get_status3.php", status3(PID))
    async with merchant_session(scripted) as session:
        await session.status(PID)
        await session.status(PID, order_id="A-1")
    plain, with_order = scripted.asked("get_status3.php")
    assert "pg_order_id" not in plain and with_order["pg_order_id"] == "A-1"
    assert plain["pg_payment_id"] == str(PID)


async def test_a_refund_sends_pg_refund_amount_and_no_currency() -> None:
    scripted = Scripted()
    scripted.on(
        "revoke.php", reply([("pg_status", "ok"), ("pg_payment_id", str(PID))], "revoke.php")
    )
    async with merchant_session(scripted) as session:
        result = await session.refund(PID, "10.50", reconcile=False)
        with pytest.raises(fp.ValidationError, match="currency"):
            await session.refund(PID, "10.50", currency="KZT", reconcile=False)
    (asked,) = scripted.asked("revoke.php")
    assert asked["pg_refund_amount"] == "10.50" and "pg_amount" not in asked
    assert result.payment_id == PID and not result.confirmed_by_status  # bound: it names it


async def test_a_refund_without_an_amount_is_never_a_full_refund_by_accident() -> None:
    async with merchant_session(Scripted()) as session:
        with pytest.raises(fp.ValidationError, match="full=True"):
            await session.refund(PID)  # type: ignore[call-overload]
        with pytest.raises(fp.ValidationError):
            await session.refund(PID, "5", full=True)  # type: ignore[call-overload]


async def test_a_full_refund_sends_what_status_shows_left_explicitly() -> None:
    scripted = Scripted()
    scripted.on(
        "get_status3.php",
        status3(PID, pg_clearing_amount="800.00", pg_captured="1", pg_refund_amount="-300"),
    )
    scripted.on(
        "revoke.php", reply([("pg_status", "ok"), ("pg_payment_id", str(PID))], "revoke.php")
    )
    async with merchant_session(scripted) as session:
        await session.refund(PID, full=True, reconcile=False)
    (asked,) = scripted.asked("revoke.php")
    assert asked["pg_refund_amount"] == "500.00"


async def test_a_full_refund_of_a_payment_not_captured_sends_nothing() -> None:
    scripted = Scripted()
    scripted.on("get_status3.php", status3(PID))  # held
    async with merchant_session(scripted) as session:
        with pytest.raises(fp.ValidationError, match="nothing to refund"):
            await session.refund(PID, full=True)
    assert scripted.asked("revoke.php") == []


# -- replies that name no payment are claims -------------------------------------------


CLAIMS = [
    ("cancel.php", [("pg_status", "ok"), ("pg_cancel_payment_id", "90001")], fp.CancelResult),
    ("do_capture.php", [("pg_status", "ok"), ("pg_amount", "1000"), ("pg_clearing_amount", "1000")],
     fp.ClearResult),
    ("revoke.php", [("pg_status", "ok"), ("pg_revoke_payment_id", "80001")], fp.RefundResult),
]  # fmt: skip


async def _call(session: fp.AsyncSession, script: str, **options: bool) -> object:
    if script == "cancel.php":
        return await session.cancel(PID, **options)
    if script == "do_capture.php":
        return await session.clear(PID, **options)
    return await session.refund(PID, "1000", **options)


@pytest.mark.parametrize(("script", "fields", "kind"), CLAIMS)
async def test_without_reconcile_an_ok_that_names_no_payment_is_an_unconfirmed_claim(
    script: str, fields: list[tuple[str, str]], kind: type
) -> None:
    scripted = Scripted()
    scripted.on(script, reply(fields, script))
    async with merchant_session(scripted) as session:
        with pytest.raises(fp.UnconfirmedReplyError) as info:
            await _call(session, script, reconcile=False)
    error = info.value
    assert error.outcome_unknown and error.claim is None and error.claimed_code is None
    assert isinstance(error.claimed_result, kind)
    assert len(scripted.asked(script)) == 1  # a claim is never a reason to send again


@pytest.mark.parametrize(("script", "fields", "kind"), CLAIMS)
async def test_with_reconcile_status_confirms_the_claim(
    script: str, fields: list[tuple[str, str]], kind: type
) -> None:
    scripted = Scripted()
    scripted.on(script, reply(fields, script))
    before = status3(PID, pg_clearing_amount="1000", pg_captured="1")
    after = {
        "cancel.php": status3(PID, pg_revoke_amount="1000"),
        "do_capture.php": status3(PID, pg_clearing_amount="1000", pg_captured="1"),
        "revoke.php": status3(
            PID, pg_clearing_amount="1000", pg_captured="1", pg_refund_amount="-1000"
        ),
    }[script]
    # a refund reads its baseline first; status then shows the claim done
    scripted.on("get_status3.php", *((before, after) if script == "revoke.php" else (after,)))
    async with merchant_session(scripted) as session:
        result = await _call(session, script)
    assert isinstance(result, kind)
    assert result.confirmed_by_status  # type: ignore[attr-defined]
    assert len(scripted.asked(script)) == 1


async def test_a_reply_that_names_another_payment_is_malformed() -> None:
    scripted = Scripted()
    scripted.on("cancel.php", reply([("pg_status", "ok"), ("pg_payment_id", "1")], "cancel.php"))
    async with merchant_session(scripted) as session:
        with pytest.raises(fp.MalformedReplyError, match=r"another|not the one"):
            await session.cancel(PID, reconcile=False)


async def test_the_claim_of_a_revoked_status_is_settled_as_not_cancelled() -> None:
    scripted = Scripted()
    scripted.on("cancel.php", reply([("pg_status", "ok")], "cancel.php"))
    scripted.on("get_status3.php", status3(PID, pg_clearing_amount="1000", pg_captured="1"))
    async with merchant_session(scripted) as session:
        with pytest.raises(fp.NotCancelledError) as info:
            await session.cancel(PID)
    assert info.value.state == "captured" and not info.value.outcome_unknown


# -- the two status vocabularies, one PaymentState ------------------------------------------


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({"pg_transaction_status": "partial"}, fp.PaymentState.NEW),
        ({"pg_transaction_status": "pending"}, fp.PaymentState.PENDING),
        ({"pg_transaction_status": "ok"}, fp.PaymentState.HELD),
        ({"pg_transaction_status": "ok", "pg_captured": "1"}, fp.PaymentState.CAPTURED),
        ({"pg_transaction_status": "failed"}, fp.PaymentState.FAILED),
        ({"pg_transaction_status": "incomplete"}, fp.PaymentState.FAILED),
        ({"pg_transaction_status": "revoked"}, fp.PaymentState.REVOKED),
        ({"pg_transaction_status": "refunded"}, fp.PaymentState.REFUNDED),
        ({"pg_payment_status": "new"}, fp.PaymentState.NEW),
        ({"pg_payment_status": "success"}, fp.PaymentState.HELD),
        ({"pg_payment_status": "error"}, fp.PaymentState.FAILED),
        # the amount cancelled: pg_revoke_amount in the docs, pg_revoked_amount in the SDK
        ({"pg_payment_status": "success", "pg_revoke_amount": "1000"}, fp.PaymentState.REVOKED),
        ({"pg_payment_status": "success", "pg_revoked_amount": "-1000"}, fp.PaymentState.REVOKED),
        # a capture of part, the rest released: captured, not revoked
        ({"pg_payment_status": "success", "pg_captured": "1", "pg_clearing_amount": "400",
          "pg_revoke_amount": "600"}, fp.PaymentState.CAPTURED),
        # both vocabularies: pg_payment_status wins
        ({"pg_payment_status": "error", "pg_transaction_status": "ok"}, fp.PaymentState.FAILED),
    ],
)  # fmt: skip
async def test_both_vocabularies_map_to_one_payment_state(
    fields: dict[str, str], state: fp.PaymentState
) -> None:
    scripted = Scripted()
    base = {"pg_payment_status": "-", "pg_captured": "-", "pg_clearing_amount": "-"}
    scripted.on("get_status3.php", status3(PID, **{**base, **fields}))
    async with merchant_session(scripted) as session:
        seen = await session.status(PID)
    assert seen.state is state
    if "pg_revoke_amount" in fields or "pg_revoked_amount" in fields:
        assert seen.revoked_amount is not None and seen.revoked_amount > 0


async def test_status_by_order_reads_get_status2_and_payment_0_is_not_found() -> None:
    scripted = Scripted()
    legacy = [("pg_status", "ok"), ("pg_payment_id", "4567617"),
              ("pg_transaction_status", "partial"), ("pg_can_reject", "0"),
              ("pg_testing_mode", "1"), ("pg_captured", "0")]  # fmt: skip
    not_found = reply([("pg_status", "ok"), ("pg_payment_id", "0")], "get_status2.php")
    scripted.on("get_status2.php", reply(legacy, "get_status2.php"), not_found)
    async with merchant_session(scripted) as session:
        found = await session.status_by_order("A-1")
        with pytest.raises(fp.PaymentNotFoundError):
            await session.status_by_order(1002)
    assert found.payment_id == 4567617 and found.state is fp.PaymentState.NEW
    assert found.order_id is None  # the reply names no order
    first, second = scripted.asked("get_status2.php")
    assert first["pg_order_id"] == "A-1" and second["pg_order_id"] == "1002"
    assert "pg_payment_id" not in first
    assert found.amount is None and found.refunded == Decimal(0)
