"""The cancel request template: byte for byte the generic path, used only where it applies."""

from __future__ import annotations

import string

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from freedompay_async import (
    AsyncSession,
    CancelRequest,
    Credentials,
    HttpResponse,
    Md5Signer,
    MockTransport,
    ReceiptPosition,
    SignatureVerificationError,
)
from freedompay_async._direct.template import CancelTemplate
from freedompay_async._wire.fields import form_pairs
from freedompay_async._wire.messages import GatewayRequest
from freedompay_async._wire.multipart import (
    parse_multipart,
    render_multipart,
)
from freedompay_async._wire.salts import SaltPool
from tests.helpers import MERCHANT, SECRET, SIGNER, ok_fields, signed, virtual_spacing

BOUNDARY = "fp" + "ab" * 16
keys = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40)
salts = st.text("0123456789abcdef", min_size=16, max_size=16)
ids = st.integers(min_value=1, max_value=10**20 - 1)


def generic(merchant: int, script: str, key: str, pid: int, salt: str) -> tuple[bytes, str, str]:
    fields = CancelRequest(pid).to_fields(merchant, salt)
    sig = Md5Signer(key).sign(script, fields)
    fields.append(("pg_sig", sig))
    body, content_type = render_multipart(fields, BOUNDARY)
    return body, content_type, sig


@given(
    merchant=st.integers(min_value=1, max_value=10**12),
    script=st.sampled_from(["cancel", "cancel.php", "", "отмена"]),
    key=keys,
    pid=ids,
    salt=salts,
)
def test_template_is_byte_for_byte_the_generic_request(
    merchant: int, script: str, key: str, pid: int, salt: str
) -> None:
    template = CancelTemplate(
        merchant, "https://x/g2g/" + script, script, key.encode(), 20.0, BOUNDARY
    )
    request = template.request(pid, salt)
    body, content_type, sig = generic(merchant, script, key, pid, salt)
    assert request.body == body
    assert request.content_type == content_type
    assert request.fields == (
        ("pg_merchant_id", str(merchant)),
        ("pg_payment_id", str(pid)),
        ("pg_salt", salt),
        ("pg_sig", sig),
    )
    assert (request.payment_id, request.script, request.timeout) == (pid, script, 20.0)
    assert request.url == "https://x/g2g/" + script


def test_template_repr_holds_neither_key_nor_boundary() -> None:
    template = CancelTemplate(MERCHANT, "u", "cancel", SECRET.encode(), 20.0, BOUNDARY)
    assert SECRET not in repr(template)
    assert BOUNDARY not in repr(template)


def test_usable_id_takes_only_plain_ints_in_range() -> None:
    class Sub(int):
        pass

    usable = CancelTemplate.usable_id
    assert usable(1) == 1
    assert usable(10**20 - 1) == 10**20 - 1
    for bad in (0, -5, 10**20, True, False, "12", 1.0, Sub(3), None):
        assert usable(bad) is None


def test_salt_pool_hands_out_fresh_hex_salts_and_refills() -> None:
    pool = SaltPool(salts=4)
    got = [pool.take() for _ in range(50)]
    assert all(len(s) == 16 and set(s) <= set(string.hexdigits.lower()) for s in got)
    assert len(set(got)) == len(got)


def recorder() -> MockTransport:
    def answer(request: GatewayRequest) -> HttpResponse:
        return HttpResponse(200, signed(ok_fields(request.payment_id or 0)))

    return MockTransport(answer)


def check_signed_body(request: GatewayRequest) -> list[tuple[str, str]]:
    boundary = request.content_type.partition("boundary=")[2]
    pairs = parse_multipart(request.body, boundary)
    fields = pairs[:-1]
    assert pairs[-1][0] == "pg_sig"
    assert SIGNER.verify("cancel", fields, pairs[-1][1])
    assert pairs == form_pairs(request.fields)
    return pairs


async def test_session_sends_template_requests_the_gateway_can_verify() -> None:
    transport = recorder()
    async with AsyncSession(Credentials(MERCHANT, SECRET), transport=transport) as fp:
        for pid in (1, 77, 10**19):
            result = await fp.cancel(pid, reconcile=False)
            assert result.payment_id == pid
    salts = set()
    for request, pid in zip(transport.requests, (1, 77, 10**19), strict=True):
        pairs = check_signed_body(request)
        assert dict(pairs)["pg_payment_id"] == str(pid)
        salts.add(dict(pairs)["pg_salt"])
    assert len(salts) == 3


async def test_other_inputs_take_the_generic_path_and_still_verify() -> None:
    transport = recorder()
    position = ReceiptPosition(1, "tea", "10.00")
    async with AsyncSession(Credentials(MERCHANT, SECRET), transport=transport) as fp:
        await fp.cancel("42", reconcile=False)
        await fp.cancel(CancelRequest(43, [position]), reconcile=False)
    first, second = (check_signed_body(r) for r in transport.requests)
    assert dict(first)["pg_payment_id"] == "42"
    assert "pg_receipt_positions[0][name]" in dict(second)


async def test_a_signer_subclass_is_never_bypassed() -> None:
    # Its sign() differs from Md5Signer's, so neither fast path may stand in for it:
    # the request carries its signature and the reply is judged by its verify().
    @attrs.frozen
    class Upper(Md5Signer):
        def sign(self, script: str, fields: object) -> str:  # type: ignore[override]
            return super().sign(script, fields).upper()  # type: ignore[arg-type]

    transport = recorder()
    async with AsyncSession(
        Credentials(MERCHANT, SECRET),
        signer=Upper(SECRET),
        transport=transport,
        spacing=virtual_spacing(),  # the second cancel of payment 5 is spaced
    ) as fp:
        for _ in range(2):  # the second reply would have a learned shape to match
            with pytest.raises(SignatureVerificationError):
                await fp.cancel(5, reconcile=False)
    request = transport.requests[0]
    sent = dict(parse_multipart(request.body, request.content_type.partition("boundary=")[2]))
    assert sent["pg_sig"].isupper()


def test_the_retry_layers_request_copy_is_attrs_evolve_field_for_field() -> None:
    from freedompay_async._layers.retry import attempt_request

    values: dict[str, object] = {}
    for number, field in enumerate(attrs.fields(GatewayRequest)):
        values[field.name] = f"v{number}" if field.name != "fields" else (("a", "b"),)
    original = GatewayRequest(**values)  # type: ignore[arg-type]
    copy = attempt_request(original, 1.5, 3, 99.0)
    assert copy == attrs.evolve(original, timeout=1.5, attempt=3, deadline=99.0)
    assert type(copy) is GatewayRequest

    @attrs.frozen
    class Tagged(GatewayRequest):
        tag: str = "t"

    tagged = Tagged(**values, tag="kept")  # type: ignore[arg-type]
    copied = attempt_request(tagged, 1.5, 3, 99.0)
    assert isinstance(copied, Tagged) and copied.tag == "kept" and copied.attempt == 3


@given(data=st.binary(max_size=300), tail=st.binary(max_size=40))
def test_the_fast_md5_is_md5(data: bytes, tail: bytes) -> None:
    import hashlib

    from freedompay_async._wire.salts import _openssl_md5, new_md5

    expected = hashlib.md5(data + tail, usedforsecurity=False).hexdigest()
    for make in (new_md5, _openssl_md5):
        digest = make(data)
        digest.update(tail)
        assert digest.hexdigest() == expected
