"""No frame of a refused request's traceback holds key material (issue #10, item 3).

Error reporters that record frame locals (Sentry and the like) would store whatever a
frame on the raise path holds: these tests walk every frame of every exception in the
chain (``__cause__`` and ``__context__``) and look at each local, and at its ``repr``,
for a canary key.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from types import TracebackType

import pytest

import freedompay_async as fp
from freedompay_async import CancelRequest, ReceiptPosition

from ..helpers import MERCHANT

CANARY = "CANARY-key-7f3e9a1c55"


def _exceptions(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _frames(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _holds_canary(value: object) -> bool:
    if isinstance(value, str):
        return CANARY in value
    if isinstance(value, bytes | bytearray):
        return CANARY.encode() in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_canary(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_canary(k) or _holds_canary(v) for k, v in value.items())
    try:
        return CANARY in repr(value)
    except Exception:  # a repr that fails is not a leak
        return False


def leaks(exc: BaseException) -> list[str]:
    """Where the canary is found: ``function:local`` for every frame of every exception."""
    found: list[str] = []
    for error in _exceptions(exc):
        if CANARY in str(error) or CANARY in repr(error) or _holds_canary(error.args):
            found.append(f"{type(error).__name__} itself")
        for tb in _frames(error.__traceback__):
            frame = tb.tb_frame
            for name, value in frame.f_locals.items():
                if _holds_canary(value):
                    found.append(f"{frame.f_code.co_name}:{name}")
    return found


def test_the_walker_finds_a_key_held_in_a_frame() -> None:
    def careless(key: str) -> None:
        pre_image = f"cancel;1;{key}"
        raise ValueError(pre_image[:3])

    with pytest.raises(ValueError) as info:
        careless(CANARY)
    assert "careless:key" in leaks(info.value)


def _position(name: object) -> ReceiptPosition:
    return ReceiptPosition(count=1, name=name, price=Decimal("10"))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["bad \ud800 name", 12345, b"bytes", None])
async def test_a_refused_receipt_position_never_reaches_the_key(
    served: tuple[fp.sandbox.SandboxGateway, str], name: object
) -> None:
    gateway, url = served
    async with fp.AsyncSession(fp.Credentials(MERCHANT, CANARY), base_url=url) as session:
        with pytest.raises(fp.FreedomPayError) as info:
            await session.cancel(CancelRequest(5, [_position(name)]))
    assert isinstance(info.value, fp.ValidationError)
    assert leaks(info.value) == []
    assert gateway.requests_total == 0


async def test_a_request_refused_while_signing_leaves_no_key_in_any_frame(
    served: tuple[fp.sandbox.SandboxGateway, str],
) -> None:
    gateway, url = served
    position = _position("valid")
    object.__setattr__(position, "name", "bad \udc80 name")  # past the validators
    async with fp.AsyncSession(fp.Credentials(MERCHANT, CANARY), base_url=url) as session:
        with pytest.raises(fp.ValidationError) as info:
            await session.cancel(CancelRequest(5, [position]))
    assert leaks(info.value) == []
    assert gateway.requests_total == 0


@pytest.mark.parametrize(
    "fields",
    [
        [("pg_description", "bad \udc80 text")],
        [("pg_amount", 10)],  # not text: was a bare TypeError from a frame holding the key
        [("pg_items", [("0", [("name", 3.5)])])],
    ],
)
def test_signing_refuses_unsignable_values_before_touching_the_key(fields: object) -> None:
    signer = fp.Md5Signer(CANARY)
    with pytest.raises(fp.ValidationError) as info:
        signer.sign("cancel", fields)  # type: ignore[arg-type]
    assert leaks(info.value) == []


def test_a_key_that_cannot_be_encoded_is_refused_at_construction() -> None:
    with pytest.raises(fp.ConfigurationError) as info:
        fp.Md5Signer(CANARY + "\ud800")
    # The constructor's own argument is the key (the caller holds it too); the error
    # carries none of it.
    assert CANARY not in str(info.value) and CANARY not in repr(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"count": True},
        {"price": 10.5},
        {"price": "NaN"},
        {"tax_type": "3"},
        {"gtin": 123},
        {"ntin": "\x00"},
        {"name": ""},
        {"name": "x" * 5000},
    ],
)
def test_every_receipt_field_is_validated(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"count": 1, "name": "Товар", "price": Decimal("1"), **kwargs}
    with pytest.raises(fp.ValidationError):
        ReceiptPosition(**values)  # type: ignore[arg-type]
