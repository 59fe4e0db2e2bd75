"""The learned-shape reply reader: the general reader's verdict, or no verdict at all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freedompay_async import (
    AsyncSession,
    Credentials,
    GatewayRequest,
    HttpResponse,
    MockTransport,
    SignatureVerificationError,
)
from freedompay_async._direct.shapes import ReplyShapes
from freedompay_async._wire.replies import interpret
from freedompay_async._wire.xml import (
    render_response,
    sign_response_fields,
)
from tests.helpers import MERCHANT, SECRET, SIGNER, ok_fields, signed

REQUEST = GatewayRequest("cancel", "https://x/g2g/cancel", "cancel", 7, (), b"", "t")

names = st.sampled_from(
    ["pg_payment_id", "pg_payment_revoke_id", "pg_revoke_status", "pg_datetime", "pg_a",
     "pg_a1", "pg_a10", "pg_ab", "pg_b", "pg_extra", "x", "pg_description"]
)  # fmt: skip
# Everything the flat reader takes in element text, and some of what it does not.
texts = st.text(st.characters(min_codepoint=9, max_codepoint=0x7F), max_size=12)
shapes = st.lists(names, min_size=1, max_size=6, unique=True)


def body_for(fields: list[tuple[str, str]], *, pretty: bool = False, salt: str = "s4lt") -> bytes:
    signed_fields = sign_response_fields(
        "cancel", SIGNER, [("pg_status", "ok"), *fields], salt=salt
    )
    return render_response(signed_fields, pretty=pretty)


def general(body: bytes) -> tuple[list[tuple[str, object]], bool] | type[Exception]:
    try:
        reply = interpret(REQUEST, HttpResponse(200, body), SIGNER)
    except Exception as exc:
        return type(exc)
    return list(reply.fields), reply.signed


def learned(body: bytes) -> ReplyShapes:
    shapes = ReplyShapes(SECRET.encode())
    assert general(body) != SignatureVerificationError
    shapes.learn("cancel", body)
    return shapes


@given(order=shapes, first=st.data(), pretty=st.booleans(), salt=texts)
def test_a_fast_answer_is_always_the_general_answer(
    order: list[str], first: st.DataObject, pretty: bool, salt: str
) -> None:
    one = [(name, first.draw(texts)) for name in order]
    two = [(name, first.draw(texts)) for name in order]
    try:
        seed, body = body_for(one, pretty=pretty), body_for(two, pretty=pretty, salt=salt or "s")
    except Exception:
        return  # text XML cannot carry: nothing to read
    if isinstance(general(seed), type):
        return
    shapes = learned(seed)
    fast = shapes.read("cancel", body)
    if fast is not None:
        assert (list(fast.fields), fast.signed) == general(body)
        assert fast.http_status == 200


@given(order=shapes, data=st.data())
def test_the_shape_is_learned_for_plain_values(order: list[str], data: st.DataObject) -> None:
    alnum = st.text("abcXYZ0189 -:.", min_size=1, max_size=10)
    seed = body_for([(name, data.draw(alnum)) for name in order])
    body = body_for([(name, data.draw(alnum)) for name in order], salt="other")
    fast = learned(seed).read("cancel", body)
    assert fast is not None
    assert (list(fast.fields), fast.signed) == general(body)


@given(order=shapes, data=st.data(), where=st.integers(min_value=0, max_value=31))
def test_a_tampered_reply_gets_no_fast_answer(
    order: list[str], data: st.DataObject, where: int
) -> None:
    alnum = st.text("abc019", min_size=1, max_size=8)
    fields = [(name, data.draw(alnum)) for name in order]
    shapes = learned(body_for(fields))
    body = body_for([(name, value + "9") for name, value in fields])
    start = body.index(b"<pg_sig>") + len(b"<pg_sig>")
    flipped = b"0" if body[start + where : start + where + 1] != b"0" else b"1"
    forged = body[: start + where] + flipped + body[start + where + 1 :]
    assert shapes.read("cancel", forged) is None
    assert general(forged) is SignatureVerificationError


def test_error_replies_other_shapes_and_other_scripts_get_no_fast_answer() -> None:
    shapes = learned(signed(ok_fields(7)))
    assert shapes.read("cancel", signed(ok_fields(8))) is not None
    error = signed([("pg_status", "error"), ("pg_payment_id", "8"), ("pg_revoke_status", "x"),
                    ("pg_payment_revoke_id", "9")])  # fmt: skip
    assert shapes.read("cancel", error) is None
    reordered = signed(list(reversed(ok_fields(8))))
    assert shapes.read("cancel", reordered) is None
    assert shapes.read("status", signed(ok_fields(8), script="status")) is None
    assert shapes.read("cancel", signed(ok_fields(8)).replace(b"success", "успех".encode())) is None
    assert shapes.read("cancel", b"") is None


def test_a_new_shape_replaces_the_last_one() -> None:
    shapes = learned(signed(ok_fields(7)))
    reordered = list(reversed(ok_fields(7)))
    shapes.learn("cancel", signed(reordered))
    assert shapes.read("cancel", signed(list(reversed(ok_fields(9))))) is not None
    assert shapes.read("cancel", signed(ok_fields(9))) is None
    shapes.learn("cancel", signed(ok_fields(7)))  # back to the first: kept, not rebuilt
    assert shapes.read("cancel", signed(ok_fields(9))) is not None


def test_repr_holds_no_key() -> None:
    assert SECRET not in repr(ReplyShapes(SECRET.encode()))


async def test_session_refuses_a_forged_ok_after_learning_the_shape() -> None:
    replies = [
        signed(ok_fields(1)),
        signed(ok_fields(2)),
        signed(ok_fields(3), signer=type(SIGNER)("wrong-key")),
    ]

    def answer(request: GatewayRequest) -> HttpResponse:
        return HttpResponse(200, replies[request.payment_id - 1])  # type: ignore[operator]

    async with AsyncSession(Credentials(MERCHANT, SECRET), transport=MockTransport(answer)) as fp:
        assert (await fp.cancel(1, reconcile=False)).payment_id == 1
        assert (await fp.cancel(2, reconcile=False)).payment_id == 2
        with pytest.raises(SignatureVerificationError):
            await fp.cancel(3, reconcile=False)
