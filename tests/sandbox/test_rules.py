"""The sandbox's ledger rules and fault injection for status_v2, clearing and refund."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest

from freedompay_async import Md5Signer
from freedompay_async._wire.fields import form_pairs
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET

SIGNER = Md5Signer(SECRET)


async def post(url: str, script: str, fields: list[tuple[str, str]]) -> dict[str, object]:
    """POST a signed form by hand (not through the client) and read the reply."""
    fields = [("pg_merchant_id", str(MERCHANT)), *fields, ("pg_salt", "abc")]
    fields.append(("pg_sig", SIGNER.sign(script, fields)))
    form = aiohttp.FormData(form_pairs(fields), default_to_multipart=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/g2g/{script}", data=form) as resp:
            body = await resp.read()
    _root, reply = parse_xml_fields(body)
    return dict(reply)


async def test_each_reply_is_signed_with_its_own_script_name() -> None:
    gw = SandboxGateway(MERCHANT, SECRET)
    gw.add_payments([1], amount="250.50", currency="usd")
    async with gw.serve() as url:
        status = await post(url, "status_v2", [("pg_payment_id", "1"), ("pg_order_id", "")])
        cleared = await post(url, "clearing", [("pg_payment_id", "1")])
        refund = await post(url, "refund", [("pg_payment_id", "1"), ("pg_amount", "50.50"),
                                            ("pg_currency", "USD")])  # fmt: skip
        wrong = await post(url, "refund", [("pg_payment_id", "1"), ("pg_amount", "1.00"),
                                           ("pg_currency", "KZT")])  # fmt: skip
        missing = await post(url, "status_v2", [("pg_payment_id", "2"), ("pg_order_id", "")])
    assert status["pg_amount"] == "250.50" and status["pg_currency"] == "USD"
    assert status["pg_payment_status"] == "success" and status["pg_captured"] == "0"
    assert cleared["pg_status_clearing"] == "1" and cleared["pg_clearing_amount"] == "250.50"
    assert refund["pg_refund_status"] == "success"
    assert wrong["pg_error_code"] == "200"
    assert missing["pg_error_code"] == "11068" and "pg_sig" not in missing
    for reply, script in ((status, "status_v2"), (cleared, "clearing"), (refund, "refund")):
        fields = [(k, v) for k, v in reply.items() if k != "pg_sig"]
        assert SIGNER.verify(script, fields, str(reply["pg_sig"]))  # type: ignore[arg-type]
    entry = gw.ledger[1]
    assert entry.state == "cleared" and entry.refund_amount == Decimal("50.50")
    assert gw.requests_by_operation == {"status_v2": 2, "clearing": 1, "refund": 2}
    assert gw.stats()["cleared"] == 1


async def test_the_fault_plan_counts_requests_of_every_operation_together() -> None:
    plan = FaultPlan(rate=0.5, kinds=(Fault.RESET_BEFORE,), seed=3)
    gw = SandboxGateway(MERCHANT, SECRET, faults=plan)
    gw.add_payments([9])
    faulted = [n for n in range(4) if plan.choose(9, n) is not None]
    assert 0 < len(faulted) < 4  # the seed faults some requests, not all
    answered = []
    async with gw.serve() as url:
        for n, script in enumerate(("status_v2", "clearing", "status_v2", "refund")):
            fields = [("pg_payment_id", "9")]
            if script == "status_v2":
                fields.append(("pg_order_id", ""))
            if script == "refund":
                fields.append(("pg_amount", "1.00"))
            try:
                await post(url, script, fields)
            except aiohttp.ClientError:
                continue
            answered.append(n)
    assert [n for n in range(4) if n not in answered] == faulted
    assert gw.ledger[9].requests == 4


def test_amounts_are_validated_when_payments_are_added() -> None:
    gw = SandboxGateway(MERCHANT, SECRET)
    with pytest.raises(ValueError):
        gw.add_payments([1], amount=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gw.add_payments([1], currency="tenge")
