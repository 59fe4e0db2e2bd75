"""Talking to the sandbox by hand: signed forms in, raw XML fields out (no client reading)."""

from __future__ import annotations

import aiohttp

from freedompay_async._wire.fields import FieldValue, form_pairs
from freedompay_async._wire.xml import parse_xml_fields

from ..helpers import MERCHANT, SIGNER

Tree = list[tuple[str, FieldValue]]


def fields_for(script: str, pid: int, amount: str = "100.00") -> list[tuple[str, str]]:
    """The request fields of ``script`` about ``pid`` (a refund of ``amount``)."""
    fields = [("pg_payment_id", str(pid))]
    if script == "status_v2":
        fields.append(("pg_order_id", ""))
    if script == "refund":
        fields += [("pg_amount", amount), ("pg_currency", "KZT")]
    return fields


async def post_tree(
    url: str, script: str, fields: list[tuple[str, str]], *, limit: float | None = None
) -> Tree:
    """POST a form signed for ``script`` with the test merchant's key; the reply's tree.

    ``limit`` (seconds) bounds the whole exchange (aiohttp raises ``TimeoutError``); an HTTP
    status other than 200 raises ``aiohttp.ClientResponseError``.
    """
    signed = [("pg_merchant_id", str(MERCHANT)), *fields, ("pg_salt", "abc")]
    signed.append(("pg_sig", SIGNER.sign(script, signed)))
    form = aiohttp.FormData(form_pairs(signed), default_to_multipart=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as http:
        async with http.post(f"{url}/g2g/{script}", data=form) as resp:
            resp.raise_for_status()
            body = await resp.read()
    root, tree = parse_xml_fields(body)
    assert root == "response"
    return tree


async def post(
    url: str, script: str, fields: list[tuple[str, str]], *, limit: float | None = None
) -> dict[str, str]:
    """Like :func:`post_tree`, keeping only the top-level scalar fields."""
    tree = await post_tree(url, script, fields, limit=limit)
    return {name: value for name, value in tree if isinstance(value, str)}


async def ask(url: str, script: str, pid: int, amount: str = "100.00") -> dict[str, str]:
    """Send ``script`` about ``pid`` with its usual fields; the top-level reply fields."""
    return await post(url, script, fields_for(script, pid, amount))


def group(tree: Tree, name: str) -> list[dict[str, str]]:
    """The entries of a nested list field (``pg_refund_payments``), as flat dicts."""
    out: list[dict[str, str]] = []
    for key, value in tree:
        if key == name and not isinstance(value, str):
            for _, entry in value:
                if not isinstance(entry, str):
                    out.append({k: v for k, v in entry if isinstance(v, str)})
    return out
