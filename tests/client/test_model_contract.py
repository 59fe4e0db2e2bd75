"""The cancel models in full: what is refused (and the message), what is sent, what is read.

Table-driven, one assertion per promise, so the mutation run can tell when any of them
stops holding (messages included: they are what an operator reads).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async import CancelRequest, CancelResult, ReceiptPosition, RevokeStatus

PID = 42


def _reply(*fields: tuple[str, str], attempts: int = 1, earlier: bool = False) -> fp.GatewayReply:
    return fp.GatewayReply(
        tuple(fields), 200, signed=True, attempts=attempts, earlier_maybe_processed=earlier
    )


OK = (
    ("pg_payment_id", str(PID)),
    ("pg_payment_revoke_id", "99"),
    ("pg_status", "ok"),
    ("pg_revoke_status", "success"),
)


# --- input validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price": 1.5}, "price must be an int, a Decimal or a decimal string (not a float)"),
        ({"price": True}, "price must be an int, a Decimal or a decimal string (not a float)"),
        ({"price": "abc"}, "price must be a non-negative decimal number, got 'abc'"),
        ({"price": "-1"}, "price must be a non-negative decimal number, got '-1'"),
        ({"price": "NaN"}, "price must be a non-negative decimal number, got 'NaN'"),
        ({"price": "Infinity"}, "price must be a non-negative decimal number, got 'Infinity'"),
        ({"price": [1]}, "price must be a non-negative decimal number, got '[1]'"),
        ({"count": 0}, "count must be an integer >= 1, got int"),
        ({"count": True}, "count must be an integer >= 1, got bool"),
        ({"count": "2"}, "count must be an integer >= 1, got str"),
        ({"tax_type": "3"}, "expected a non-negative integer, got str"),
        ({"tax_type": False}, "expected a non-negative integer, got bool"),
        ({"unit_code": 1.0}, "expected a non-negative integer, got float"),
    ],
)
def test_bad_receipt_positions_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"count": 1, "name": "n", "price": "1", **kwargs}
    with pytest.raises(fp.ValidationError) as info:
        ReceiptPosition(**values)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "price", "count"),
    [
        ({"price": 0}, Decimal(0), 1),
        ({"price": "0.00"}, Decimal("0.00"), 1),
        ({"price": Decimal("1500.50"), "count": 1}, Decimal("1500.50"), 1),
        ({"price": "0.5", "count": 2}, Decimal("0.5"), 2),
    ],
)
def test_boundary_positions_are_accepted(
    kwargs: dict[str, object], price: Decimal, count: int
) -> None:
    values: dict[str, object] = {"count": 1, "name": "n", **kwargs}
    position = ReceiptPosition(**values)  # type: ignore[arg-type]
    assert (position.price, position.count) == (price, count)


def test_receipt_positions_must_be_positions() -> None:
    with pytest.raises(fp.ValidationError) as info:
        CancelRequest(1, [{"count": 1}])  # type: ignore[list-item]
    assert str(info.value) == "receipt_positions must hold ReceiptPosition values"


# --- what is sent --------------------------------------------------------------------


def test_a_position_sends_its_fields_in_documented_order() -> None:
    full = ReceiptPosition(2, "Товар", "900.10", tax_type=3, unit_code=796, gtin="G", ntin="N")
    assert full.to_fields() == [
        ("count", "2"),
        ("name", "Товар"),
        ("price", "900.10"),
        ("tax_type", "3"),
        ("UnitCode", "796"),
        ("GTIN", "G"),
        ("NTIN", "N"),
    ]
    zero = ReceiptPosition(1, "x", 0, tax_type=0, gtin="0")
    assert zero.to_fields() == [
        ("count", "1"),
        ("name", "x"),
        ("price", "0"),
        ("tax_type", "0"),
        ("GTIN", "0"),
    ]


def test_a_cancel_sends_merchant_payment_positions_salt() -> None:
    positions = [ReceiptPosition(1, "a", 1), ReceiptPosition(3, "b", "2.5")]
    assert CancelRequest("0077", positions).to_fields(1234, "salt") == [
        ("pg_merchant_id", "1234"),
        ("pg_payment_id", "77"),
        (
            "pg_receipt_positions",
            [("0", positions[0].to_fields()), ("1", positions[1].to_fields())],
        ),
        ("pg_salt", "salt"),
    ]
    assert CancelRequest(5).to_fields(1, "s") == [
        ("pg_merchant_id", "1"),
        ("pg_payment_id", "5"),
        ("pg_salt", "s"),
    ]


def test_of_passes_a_request_through_and_wraps_an_id() -> None:
    request = CancelRequest(9)
    assert CancelRequest.of(request) is request
    assert CancelRequest.of("9") == request


# --- what is read ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "member"),
    [
        ("success", RevokeStatus.SUCCESS),
        ("pending", RevokeStatus.PENDING),
        ("error", RevokeStatus.ERROR),
        (" Success ", RevokeStatus.SUCCESS),
        ("PENDING", RevokeStatus.PENDING),
        ("", RevokeStatus.UNKNOWN),
        (None, RevokeStatus.UNKNOWN),
        ("unknown", RevokeStatus.UNKNOWN),
        ("weird", RevokeStatus.UNKNOWN),
    ],
)
def test_revoke_status_parse(raw: str | None, member: RevokeStatus) -> None:
    assert RevokeStatus.parse(raw) is member


def test_a_full_reply_is_read_into_every_field() -> None:
    reply = _reply(*OK, ("pg_salt", "s"), ("pg_sig", "x"), attempts=3, earlier=True)
    result = CancelResult.from_reply(reply, PID)
    assert result == CancelResult(
        payment_id=PID,
        revoke_id=99,
        status="ok",
        revoke_status=RevokeStatus.SUCCESS,
        revoke_status_raw="success",
        signed=True,
        attempts=3,
        confirmed_on_retry=False,
        earlier_maybe_processed=True,
    )
    assert result.extra == {}


def test_unknown_reply_fields_are_kept_in_extra() -> None:
    reply = _reply(*OK, ("pg_new", "1"), ("pg_tree", (("a", "b"),)))  # type: ignore[arg-type]
    result = CancelResult.from_reply(reply, PID)
    assert dict(result.extra) == {"pg_new": "1", "pg_tree": (("a", "b"),)}
    with pytest.raises(TypeError):
        result.extra["x"] = 1  # type: ignore[index]


def test_revoke_id_is_optional_and_the_status_defaults_to_empty() -> None:
    reply = _reply(("pg_payment_id", str(PID)), ("pg_revoke_status", " Pending "))
    result = CancelResult.from_reply(reply, PID)
    assert (result.revoke_id, result.status) == (None, "")
    assert (result.revoke_status, result.revoke_status_raw) == (RevokeStatus.PENDING, " Pending ")
    blank = CancelResult.from_reply(_reply(*OK[:1], ("pg_payment_revoke_id", " "), OK[3]), PID)
    assert blank.revoke_id is None


def test_the_first_value_of_a_repeated_field_is_read() -> None:
    reply = _reply(*OK, ("pg_revoke_status", "error"), ("pg_payment_revoke_id", "1"))
    result = CancelResult.from_reply(reply, PID)
    assert (result.revoke_status, result.revoke_id) == (RevokeStatus.SUCCESS, 99)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((("pg_revoke_status", "success"),), "cancel reply is missing pg_payment_id"),
        ((("pg_payment_id", " "), OK[3]), "cancel reply is missing pg_payment_id"),
        ((("pg_payment_id", "4x"), OK[3]), "cancel reply has a non-numeric pg_payment_id"),
        ((("pg_payment_id", "٤٢"), OK[3]), "cancel reply has a non-numeric pg_payment_id"),
        (
            (OK[0], ("pg_payment_revoke_id", "r1"), OK[3]),
            "cancel reply has a non-numeric pg_payment_revoke_id",
        ),
        ((OK[0],), "cancel reply is missing pg_revoke_status"),
        ((("pg_payment_id", "43"), OK[3]), "cancel reply is for payment 43, not the one requested"),
    ],
)
def test_unusable_replies_are_malformed(fields: tuple[tuple[str, str], ...], message: str) -> None:
    with pytest.raises(fp.MalformedReplyError) as info:
        CancelResult.from_reply(_reply(*fields), PID)
    assert info.value.message == message
    assert info.value.http_status == 200
    if "missing pg_revoke_status" in message or "for payment" in message:
        assert info.value.payment_id == PID


def test_confirmed_by_an_already_cancelled_error() -> None:
    error = fp.AlreadyCancelledError(10033, "уже отменён", payment_id=PID, signed=True)
    error.attempts = 2
    result = CancelResult.confirmed_by(error, PID)
    assert result == CancelResult(
        payment_id=PID,
        revoke_id=None,
        status="ok",
        revoke_status=RevokeStatus.SUCCESS,
        revoke_status_raw="10033",
        signed=True,
        attempts=2,
        confirmed_on_retry=True,
        earlier_maybe_processed=True,
    )


def test_signed_is_carried_from_the_reply_and_the_error() -> None:
    unsigned = fp.GatewayReply(OK, 200, signed=False)
    assert CancelResult.from_reply(unsigned, PID).signed is False
    error = fp.AlreadyCancelledError(10033, "x", payment_id=PID, signed=False)
    assert CancelResult.confirmed_by(error, PID).signed is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": 5}, "name must be a str, got int"),
        ({"name": None}, "name must be a str, got NoneType"),
        ({"name": "  "}, "name must be 1 to 1024 characters of text"),
        ({"name": "x" * 1025}, "name must be 1 to 1024 characters of text"),
        ({"name": "a\x01"}, "name holds a control character or invalid Unicode (lone surrogate?)"),
        ({"gtin": ""}, "gtin must be 1 to 64 characters of text"),
        ({"ntin": "n" * 65}, "ntin must be 1 to 64 characters of text"),
        ({"gtin": 7}, "gtin must be a str, got int"),
        ({"price": 10**15}, "price must be a non-negative decimal number, got '1000000000000000'"),
        ({"price": "1" * 50}, f"price must be a non-negative decimal number, got '{'1' * 40}'"),
        ({"count": 10**18}, "count must be an integer >= 1, got int"),
        ({"tax_type": 10**18}, "expected a non-negative integer, got int"),
        ({"tax_type": -1}, "expected a non-negative integer, got int"),
    ],
)
def test_text_and_range_limits_are_refused(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"count": 1, "name": "n", "price": "1", **kwargs}
    with pytest.raises(fp.ValidationError) as info:
        ReceiptPosition(**values)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_the_largest_accepted_values() -> None:
    top = ReceiptPosition(
        10**18 - 1,
        "x" * 1024,
        Decimal(10**15) - Decimal("0.01"),
        tax_type=10**18 - 1,
        unit_code=0,
        gtin="g" * 64,
        ntin=None,
    )
    assert top.count == 10**18 - 1 and top.tax_type == 10**18 - 1 and top.unit_code == 0
    assert top.price == Decimal("999999999999999.99") and len(top.name) == 1024
    assert ReceiptPosition(1, "\tЖЩ", 1).name == "\tЖЩ"  # a tab is text
