"""status_v2 replies in the real gateway's shapes: negative refunds, every documented field.

The raw XML is read here, not the client's reading of it: the subject is what the
sandbox writes.
"""

from __future__ import annotations

import re
from decimal import Decimal

from freedompay_async import AsyncSession, Credentials, RetryPolicy
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER
from .raw import Tree, ask, fields_for, group, post_tree

# The order of the official get_status3 example, with status_v2's own fields in place.
STATUS_FIELDS = [
    "pg_status",
    "pg_payment_id",
    "pg_order_id",
    "pg_can_reject",
    "pg_payment_method",
    "pg_amount",
    "pg_net_amount",
    "pg_currency",
    "pg_payment_status",
    "pg_clearing_amount",
    "pg_reference",
    "pg_intreference",
    "pg_auth_code",
    "pg_card_name",
    "pg_card_pan",
    "pg_card_token",
    "pg_card_exp",
    "pg_card_brand",
    "pg_user_email",
    "pg_user_phone",
    "pg_refund_amount",
    "pg_captured",
    "pg_testing_mode",
    "pg_create_date",
    "pg_payment_date",
    "pg_datetime",
    "pg_salt",
    "pg_sig",
]
LOCAL_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def gateway() -> SandboxGateway:
    gw = SandboxGateway(MERCHANT, SECRET, status_lag=0)  # the lag is not the subject here
    gw.add_payments([1, 2, 3], amount="250.00")
    return gw


def verifies(tree: Tree) -> bool:
    fields = [(name, value) for name, value in tree if name != "pg_sig"]
    signature = dict(tree)["pg_sig"]
    assert isinstance(signature, str)
    return SIGNER.verify("status_v2", fields, signature)


async def test_refunds_are_written_negative_and_a_full_refund_stays_success() -> None:
    gw = gateway()
    async with gw.serve() as url:
        before = await ask(url, "status_v2", 1)
        await ask(url, "clearing", 1)
        cleared = await ask(url, "status_v2", 1)
        await ask(url, "refund", 1, "100.50")
        part = await post_tree(url, "status_v2", fields_for("status_v2", 1))
        await ask(url, "refund", 1, "149.50")
        full = await post_tree(url, "status_v2", fields_for("status_v2", 1))
    assert before["pg_refund_amount"] == "0.00" and before["pg_clearing_amount"] == "0.00"
    assert cleared["pg_refund_amount"] == "0.00" and cleared["pg_captured"] == "1"
    assert dict(part)["pg_refund_amount"] == "-100.50"
    assert [e["pg_amount"] for e in group(part, "pg_refund_payments")] == ["-100.50"]
    top = {k: v for k, v in full if isinstance(v, str)}
    assert top["pg_refund_amount"] == "-250.00"
    assert top["pg_payment_status"] == "success"  # as the official example: not "refunded"
    assert (top["pg_clearing_amount"], top["pg_captured"]) == ("250.00", "1")
    entries = group(full, "pg_refund_payments")
    assert [e["pg_amount"] for e in entries] == ["-100.50", "-149.50"]
    assert [list(e) for e in entries] == [
        ["pg_payment_id", "pg_payment_status", "pg_amount", "pg_payment_date", "pg_reference"]
    ] * 2
    assert [e["pg_payment_id"] for e in entries] == ["800000000001", "800000000002"]
    assert all(LOCAL_DATE.match(e["pg_payment_date"]) for e in entries)
    assert all(re.fullmatch(r"\d{12}", e["pg_reference"]) for e in entries)
    assert verifies(part) and verifies(full)  # nested lists are signed like the real thing
    assert gw.ledger[1].refund_amount == Decimal("250.00")  # the ledger counts positive


async def test_every_documented_field_in_order_card_data_masked() -> None:
    gw = gateway()
    async with gw.serve() as url:
        held = await post_tree(url, "status_v2", fields_for("status_v2", 2))
        await ask(url, "cancel", 3)
        revoked = await post_tree(url, "status_v2", fields_for("status_v2", 3))
    assert [name for name, _ in held] == STATUS_FIELDS
    fields = {k: v for k, v in held if isinstance(v, str)}
    assert fields["pg_user_email"] == ""
    assert re.fullmatch(r"\d{4}-\d\dXX-XXXX-\d{4}", fields["pg_card_pan"])
    assert re.fullmatch(r"\d\d/\d\d", fields["pg_card_exp"])
    assert fields["pg_card_brand"] and fields["pg_card_name"] and fields["pg_user_phone"]
    assert re.fullmatch(r"\d{12}", fields["pg_reference"])
    assert re.fullmatch(r"\d{6}", fields["pg_auth_code"]) and fields["pg_intreference"]
    assert (fields["pg_amount"], fields["pg_net_amount"]) == ("250.00", "250.00")
    assert (fields["pg_payment_method"], fields["pg_testing_mode"]) == ("bankcard", "1")
    assert (fields["pg_can_reject"], fields["pg_captured"]) == ("1", "0")
    assert LOCAL_DATE.match(fields["pg_create_date"])
    assert LOCAL_DATE.match(fields["pg_payment_date"])
    assert ISO_UTC.match(fields["pg_datetime"])
    assert verifies(held)
    names = [name for name, _ in revoked]
    assert names.index("pg_revoked_payments") == names.index("pg_refund_amount") - 1
    assert dict(revoked)["pg_payment_status"] == "revoked"
    assert dict(revoked)["pg_can_reject"] == "0"
    assert group(revoked, "pg_revoked_payments") == [
        {"pg_payment_id": str(gw.ledger[3].revoke_id), "pg_payment_status": "success"}
    ]
    assert verifies(revoked)


async def test_the_client_accepts_the_full_reply() -> None:
    # Not the client's reading of amounts: only that the real shape verifies and parses.
    gw = gateway()
    async with (
        gw.serve() as url,
        AsyncSession(Credentials(MERCHANT, SECRET), base_url=url, retry=RetryPolicy.none()) as fp,
    ):
        await ask(url, "clearing", 1)
        await ask(url, "refund", 1, "10.00")
        status = await fp.status(1)
    assert status.payment_id == 1 and status.amount == Decimal("250.00")
    assert len(status.refund_payments) == 1
    assert "4405" not in repr(status)  # the masked card stays out of the client's value
