"""Request and result values of status, clearing and refund: validation (property
tests), rendering, and parsing of every documented reply variant."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import freedompay_async as fp
from freedompay_async._operations.money import (
    ClearingStatus,
    ClearRequest,
    ClearResult,
    RefundRequest,
    RefundResult,
)
from freedompay_async._operations.status import (
    PaymentState,
    PaymentStatus,
    StatusRequest,
    StatusResult,
)
from freedompay_async._wire.messages import GatewayReply

ids = st.integers(min_value=1, max_value=10**19)
cents = st.integers(min_value=1, max_value=10**14).map(lambda n: Decimal(n) / 100)


@given(ids, st.one_of(st.none(), st.text(alphabet="abcXYZ019-_", min_size=1, max_size=50)))
def test_status_request_renders_order_id_empty_when_absent(pid: int, order: str | None) -> None:
    fields = dict(StatusRequest(pid, order).to_fields(7, "salt"))
    assert fields["pg_payment_id"] == str(pid)
    assert fields["pg_order_id"] == (order or "")  # always sent, and so always signed
    assert list(dict(StatusRequest(pid).to_fields(7, "s"))) == [
        "pg_merchant_id", "pg_payment_id", "pg_order_id", "pg_salt",
    ]  # fmt: skip


@given(ids, cents)
def test_amounts_round_trip_exactly(pid: int, amount: Decimal) -> None:
    clear = dict(ClearRequest(pid, amount).to_fields(7, "s"))
    assert Decimal(str(clear["pg_clearing_amount"])) == amount
    refund = dict(RefundRequest(pid, str(amount), "kzt").to_fields(7, "s"))
    assert Decimal(str(refund["pg_amount"])) == amount and refund["pg_currency"] == "KZT"


PLAIN_AMOUNT = r"[1-9][0-9]*(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?)"


def spellings(amount: Decimal) -> st.SearchStrategy[object]:
    """The same amount as a caller may write it: normalised (1E+2), with trailing zeros
    (100.000), as a string or a Decimal."""
    padded = amount.quantize(Decimal("0.0001"))
    forms = [amount, amount.normalize(), padded, str(amount.normalize())]
    return st.sampled_from(forms)


@given(ids, cents.flatmap(lambda amount: st.tuples(st.just(amount), spellings(amount))))
def test_amounts_are_sent_in_plain_digits_whatever_their_spelling(
    pid: int, case: tuple[Decimal, object]
) -> None:
    """The gateway parses a decimal number: never an exponent, never more than two
    decimal places, and the same value as the caller's."""
    amount, spelling = case
    sent = [
        dict(ClearRequest(pid, spelling).to_fields(7, "s"))["pg_clearing_amount"],  # type: ignore[arg-type]
        dict(RefundRequest(pid, spelling).to_fields(7, "s"))["pg_amount"],  # type: ignore[arg-type]
    ]
    for text in sent:
        assert isinstance(text, str)
        assert re.fullmatch(PLAIN_AMOUNT, text), text
        assert Decimal(text) == amount


def test_an_exponent_amount_goes_out_as_digits() -> None:
    assert dict(ClearRequest(1, "1E+2").to_fields(7, "s"))["pg_clearing_amount"] == "100"
    assert dict(RefundRequest(1, Decimal("100.000")).to_fields(7, "s"))["pg_amount"] == "100.00"
    assert dict(RefundRequest(1, "12.5").to_fields(7, "s"))["pg_amount"] == "12.5"


@given(st.one_of(st.floats(), st.booleans(), st.just("1.001"), st.just("-5"), st.just("0"),
                 st.just("abc"), st.just("NaN"), st.just("1e30"), st.just("0.001")))  # fmt: skip
def test_bad_amounts_are_validation_errors(value: object) -> None:
    with pytest.raises(fp.ValidationError):
        RefundRequest(1, value)  # type: ignore[arg-type]
    with pytest.raises(fp.ValidationError):
        ClearRequest(1, value)  # type: ignore[arg-type]


@given(st.text(max_size=6).filter(lambda t: not (len(t.strip()) == 3 and t.strip().isalpha()
                                                 and t.strip().isascii())))  # fmt: skip
def test_bad_currencies_are_validation_errors(value: str) -> None:
    with pytest.raises(fp.ValidationError):
        RefundRequest(1, "1.00", value)


@given(st.one_of(st.integers(max_value=0), st.text().filter(lambda t: not t.strip().isdigit())))
def test_bad_payment_ids_are_refused_by_every_request(value: object) -> None:
    for make in (StatusRequest, ClearRequest, lambda v: RefundRequest(v, "1")):
        with pytest.raises(fp.ValidationError):
            make(value)


@given(st.text(min_size=51, max_size=60) | st.just("") | st.just("with space"))
def test_bad_order_ids_are_refused(value: str) -> None:
    with pytest.raises(fp.ValidationError):
        StatusRequest(1, value)


def reply(*fields: tuple[str, object]) -> GatewayReply:
    return GatewayReply(tuple(fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["pg_clearing_status", "pg_status_clearing"])
def test_both_documented_clearing_status_names_are_read(name: str) -> None:
    result = ClearResult.from_reply(
        reply(("pg_payment_id", "5"), ("pg_amount", "10.00"), ("pg_clearing_amount", "4.00"),
              ("pg_status", "ok"), (name, "1")),
        5,
    )  # fmt: skip
    assert result.completed and result.clearing_amount == Decimal("4.00")


def test_a_reply_about_another_payment_is_malformed() -> None:
    with pytest.raises(fp.MalformedReplyError):
        RefundResult.from_reply(reply(("pg_payment_id", "6"), ("pg_refund_status", "success")), 5)
    with pytest.raises(fp.MalformedReplyError):
        StatusResult.from_reply(reply(("pg_payment_id", "6"), ("pg_payment_status", "ok")), 5)
    with pytest.raises(fp.MalformedReplyError):
        ClearResult.from_reply(reply(("pg_payment_id", "5"), ("pg_status", "ok")), 5)


def test_unknown_enum_values_are_kept_raw() -> None:
    result = StatusResult.from_reply(
        reply(("pg_payment_id", "5"), ("pg_payment_status", "weird_new"), ("pg_amount", "1")), 5
    )
    assert result.payment_status is PaymentStatus.UNKNOWN
    assert result.payment_status_raw == "weird_new" and result.state is PaymentState.UNKNOWN
    assert ClearingStatus.parse("2") is ClearingStatus.UNKNOWN


def test_card_data_is_never_kept_or_shown() -> None:
    result = StatusResult.from_reply(
        reply(("pg_payment_id", "5"), ("pg_payment_status", "success"),
              ("pg_card_pan", "4405-64XX-XXXX-6150"), ("pg_card_token", "SECRET-TOKEN"),
              ("pg_user_email", "a@b.c")),
        5,
    )  # fmt: skip
    shown = repr(result)
    assert "6150" not in shown and "SECRET-TOKEN" not in shown and "a@b.c" not in shown
    assert result.state is PaymentState.HELD


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ((("pg_payment_status", "revoked"),), PaymentState.REVOKED),
        ((("pg_payment_status", "success"), ("pg_revoked_payments", (("pg_revoked_payment", (
            ("pg_payment_id", "9"), ("pg_payment_status", "success"))),))), PaymentState.REVOKED),
        ((("pg_payment_status", "success"), ("pg_refund_amount", "1.00")), PaymentState.REFUNDED),
        ((("pg_payment_status", "success"), ("pg_captured", "1")), PaymentState.CAPTURED),
        ((("pg_payment_status", "success"), ("pg_clearing_amount", "3")), PaymentState.CAPTURED),
        ((("pg_payment_status", "success"), ("pg_captured", "0")), PaymentState.HELD),
        ((("pg_payment_status", "pending"),), PaymentState.PENDING),
        ((("pg_payment_status", "error"),), PaymentState.FAILED),
    ],
)  # fmt: skip
def test_the_derived_state(fields: tuple[tuple[str, object], ...], state: PaymentState) -> None:
    assert StatusResult.from_reply(reply(("pg_payment_id", "5"), *fields), 5).state is state


def test_list_fields_in_every_nesting_are_read() -> None:
    flat = StatusResult.from_reply(
        reply(("pg_payment_id", "5"), ("pg_payment_status", "success"),
              ("pg_refund_payments", (("pg_payment_id", "8"), ("pg_amount", "2.50"),
                                      ("pg_payment_status", "success")))),
        5,
    )  # fmt: skip
    assert [(r.payment_id, r.amount) for r in flat.refund_payments] == [(8, Decimal("2.50"))]


# -- the real gateway's status shapes (outcome-truth findings) ----------------------------

#: The official get_status3 example: a payment of 10 refunded in full, written negative,
#: with pg_payment_status still "success".
OFFICIAL_EXAMPLE = (
    ("pg_status", "ok"), ("pg_payment_id", "5"), ("pg_can_reject", "1"),
    ("pg_payment_method", "bankcard"), ("pg_amount", "10"), ("pg_currency", "KZT"),
    ("pg_payment_status", "success"), ("pg_clearing_amount", "10"),
    ("pg_reference", "123456789"), ("pg_card_name", "Card Holder"),
    ("pg_card_pan", "5483-18XX-XXXX-0293"),
    ("pg_refund_payments", (("pg_refund_payment", (
        ("pg_payment_id", "123456789"), ("pg_payment_status", "success"),
        ("pg_amount", "-10"), ("pg_payment_date", "2023-05-31 16:26:36"),
        ("pg_reference", "123456789"))),)),
    ("pg_refund_amount", "-10"), ("pg_captured", "1"),
    ("pg_create_date", "2023-05-31 16:24:20"),
)  # fmt: skip


def test_the_official_examples_negative_refund_reads_refunded() -> None:
    result = StatusResult.from_reply(reply(*OFFICIAL_EXAMPLE), 5)
    assert result.state is PaymentState.REFUNDED
    assert result.refund_amount == Decimal(10) and result.refunded == Decimal(10)
    assert [r.amount for r in result.refund_payments] == [Decimal(10)]


@pytest.mark.parametrize("sign", ["-", ""])
def test_a_partial_refund_reads_partially_refunded_in_either_sign(sign: str) -> None:
    result = StatusResult.from_reply(
        reply(("pg_payment_id", "5"), ("pg_payment_status", "success"), ("pg_amount", "100"),
              ("pg_clearing_amount", "100"), ("pg_captured", "1"),
              ("pg_refund_amount", f"{sign}40")),
        5,
    )  # fmt: skip
    assert result.state is PaymentState.PARTIALLY_REFUNDED and result.refunded == Decimal(40)
    assert result.paid and PaymentState.PARTIALLY_REFUNDED in fp.PAID_STATES


def test_refund_entries_without_a_total_are_summed() -> None:
    result = StatusResult.from_reply(
        reply(("pg_payment_id", "5"), ("pg_payment_status", "success"), ("pg_amount", "100"),
              ("pg_refund_payments", (
                  ("pg_refund_payment", (("pg_payment_id", "8"), ("pg_amount", "-30"))),
                  ("pg_refund_payment", (("pg_payment_id", "9"), ("pg_amount", "-70"))),
              ))),
        5,
    )  # fmt: skip
    assert result.refund_amount is None and result.refunded == Decimal(100)
    assert result.state is PaymentState.REFUNDED


def test_new_is_a_payment_not_paid_yet() -> None:
    result = StatusResult.from_reply(reply(("pg_payment_id", "5"), ("pg_payment_status", "new")), 5)
    assert result.payment_status is PaymentStatus.NEW and result.state is PaymentState.NEW
    assert not result.paid


def test_a_reply_for_payment_0_is_not_found() -> None:
    with pytest.raises(fp.PaymentNotFoundError) as info:
        StatusResult.from_reply(reply(("pg_payment_id", "0"), ("pg_status", "ok")), 5)
    assert info.value.payment_id == 5 and not info.value.bound  # it names no payment
    assert not info.value.retryable


def test_a_missing_payment_status_is_unknown_but_amounts_still_count() -> None:
    bare = StatusResult.from_reply(reply(("pg_payment_id", "5"), ("pg_amount", "1")), 5)
    assert bare.payment_status is PaymentStatus.UNKNOWN and bare.payment_status_raw == ""
    assert bare.state is PaymentState.UNKNOWN
    captured = StatusResult.from_reply(reply(("pg_payment_id", "5"), ("pg_captured", "1")), 5)
    assert captured.state is PaymentState.CAPTURED


def test_unknown_status_fields_are_kept_in_extra_without_card_or_contact_data() -> None:
    result = StatusResult.from_reply(reply(*OFFICIAL_EXAMPLE, ("pg_user_phone", "77001112233"),
                                           ("pg_card_token", "tok"), ("pg_net_amount", "9.5")),
                                     5)  # fmt: skip
    assert dict(result.extra) == {
        "pg_can_reject": "1",
        "pg_payment_method": "bankcard",
        "pg_create_date": "2023-05-31 16:24:20",
        "pg_net_amount": "9.5",
    }
    assert not any(k.startswith(("pg_card", "pg_user")) for k in result.extra)


def test_a_clearing_or_refund_reply_must_name_the_payment() -> None:
    with pytest.raises(fp.MalformedReplyError, match="pg_payment_id"):
        ClearResult.from_reply(reply(("pg_status", "ok"), ("pg_status_clearing", "1")), 5)
    with pytest.raises(fp.MalformedReplyError, match="pg_payment_id"):
        RefundResult.from_reply(reply(("pg_status", "ok"), ("pg_refund_status", "success")), 5)


def test_the_refund_amount_is_required_in_the_type() -> None:
    import inspect
    import typing

    by_id = [
        inspect.signature(o)
        for o in typing.get_overloads(fp.AsyncSession.refund)
        if "amount" in inspect.signature(o).parameters
    ]
    assert len(by_id) == 1  # a payment id takes an amount; a RefundRequest carries its own
    assert by_id[0].parameters["amount"].default is inspect.Parameter.empty
