"""The public seams: the transport types and mock, the field types, configuration lookups,
the one definition of "settled", the one reply writer and the argparse number types."""

from __future__ import annotations

import argparse

import pytest

import freedompay_async as fp
from freedompay_async import (
    ConfigurationError,
    GatewayRequest,
    GatewayURL,
    HttpResponse,
    MockTransport,
    OutcomeState,
    ResponseTimeoutError,
    ValidationError,
    signed_response,
)
from freedompay_async._argtypes import non_negative_float, positive_float, positive_int, probability
from freedompay_async._wire.xml import (
    parse_xml_fields,
    render_response,
)

from ..helpers import MERCHANT, SECRET, SIGNER, ok_fields, virtual_spacing


def test_the_seams_are_public() -> None:
    for name in ("Transport", "GatewayRequest", "HttpResponse", "MockTransport", "Fields"):
        assert name in fp.__all__


async def test_mock_transport_answers_records_and_closes(credentials: fp.Credentials) -> None:
    def answer(request: GatewayRequest) -> HttpResponse:
        assert request.payment_id is not None
        return HttpResponse(200, signed_response("cancel", SIGNER, ok_fields(request.payment_id)))

    transport = MockTransport(answer)
    async with fp.AsyncSession(credentials, transport=transport) as session:
        result = await session.cancel(42, reconcile=False)
    assert result.revoke_id == 43 and result.signed
    assert [r.payment_id for r in transport.requests] == [42]
    assert transport.closed


async def test_mock_transport_takes_async_handlers_and_plays_failures() -> None:
    async def answer(request: GatewayRequest) -> HttpResponse:
        raise ResponseTimeoutError("slow", payment_id=request.payment_id)

    transport = MockTransport(answer)
    policy = fp.RetryPolicy(attempts=2, wait_initial=0)
    creds = fp.Credentials(MERCHANT, SECRET)
    async with fp.AsyncSession(
        creds, transport=transport, retry=policy, spacing=virtual_spacing()
    ) as session:
        with pytest.raises(ResponseTimeoutError) as info:
            await session.cancel(7, reconcile=False)
    assert info.value.outcome_unknown
    assert len(transport.requests) == 2


def test_gateway_presets_are_looked_up_by_name() -> None:
    assert GatewayURL.preset("kz-test") is GatewayURL.KZ_TEST
    assert GatewayURL.preset(" KZ ") is GatewayURL.KZ
    assert set(GatewayURL.presets()) >= {"kz", "uz-test", "kg", "money-test"}
    with pytest.raises(ConfigurationError, match="presets: kz"):
        GatewayURL.preset("mars")


def test_settled_is_one_property_of_the_state() -> None:
    assert {s for s in OutcomeState if s.settled} == {
        OutcomeState.CANCELLED,
        OutcomeState.ALREADY_CANCELLED,
    }


def test_the_one_writer_signs_escapes_and_refuses_what_xml_cannot_carry() -> None:
    body = signed_response("result", SIGNER, [("pg_status", "ok"), ("pg_description", "a<&>\rb")])
    root, fields = parse_xml_fields(body)
    values = dict((k, v) for k, v in fields if isinstance(v, str))
    assert root == "response" and values["pg_description"] == "a<&>\rb"
    assert SIGNER.verify("result", fields, values["pg_sig"])
    nested = render_response([("a", [("b", "1"), ("b", "2")])], pretty=True)
    assert parse_xml_fields(nested)[1] == [("a", [("b", "1"), ("b", "2")])]
    for bad in ([("pg_x", "\x00")], [("pg_x", "\ud800")], [("not a name", "1")]):
        with pytest.raises(ValidationError):
            signed_response("result", SIGNER, bad)


@pytest.mark.parametrize(
    ("parse", "good", "bad"),
    [
        (positive_int, [("3", 3)], ["0", "-1", "x", "1.5"]),
        (positive_float, [("0.5", 0.5)], ["0", "inf", "nan", "x"]),
        (non_negative_float, [("0", 0.0), ("2", 2.0)], ["-1", "inf", "nan"]),
        (probability, [("0", 0.0), ("1", 1.0), ("0.25", 0.25)], ["1.5", "-0.1", "nan"]),
    ],
)
def test_argparse_number_types(
    parse: object, good: list[tuple[str, float]], bad: list[str]
) -> None:
    assert callable(parse)
    for text, value in good:
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
            parse(text)
