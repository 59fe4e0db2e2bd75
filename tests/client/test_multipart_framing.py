"""The multipart body can never be misframed: boundary collisions and quotes in names.

Read back twice: by the library's own reader and by aiohttp's server over loopback
(an independent multipart parser, as a gateway would be).
"""

from __future__ import annotations

import random

import pytest
from aiohttp import ClientSession, web

from freedompay_async._wire import multipart as _multipart
from freedompay_async._wire.multipart import (
    multipart_boundary,
    parse_multipart,
    render_multipart,
)

from ..helpers import serve


@pytest.fixture(autouse=True)
def _fresh_head_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Part heads are cached by name; start empty so each test renders its own."""
    monkeypatch.setattr(_multipart, "_HEADS", {})


def test_a_given_boundary_that_occurs_in_a_value_is_refused() -> None:
    with pytest.raises(ValueError, match="boundary"):
        render_multipart([("pg_a", "x--XYZ--y")], boundary="XYZ")


def test_a_random_boundary_that_collides_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    colliding = 0xC0FFEE
    draws = iter([colliding, colliding, 0xBEEF])
    monkeypatch.setattr(random, "getrandbits", lambda _bits: next(draws))
    value = f"before fp{colliding:032x} after"
    body, content_type = render_multipart([("pg_a", value), ("pg_b", "2")])
    boundary = multipart_boundary(content_type)
    assert boundary is not None and boundary == f"fp{0xBEEF:032x}"
    assert parse_multipart(body, boundary) == [("pg_a", value), ("pg_b", "2")]


NAMES = ['pg_"quoted"', 'a"b', 'end"', 'pg_x"; name="pg_evil']


@pytest.mark.parametrize("name", NAMES)
def test_quotes_in_part_names_are_escaped_and_read_back(name: str) -> None:
    body, content_type = render_multipart([(name, "v"), ("pg_evil", "real")])
    assert b'name="' + name.replace('"', "%22").encode() + b'"' in body
    assert parse_multipart(body, multipart_boundary(content_type)) == [
        (name, "v"),
        ("pg_evil", "real"),
    ]


async def test_aiohttp_reads_the_same_fields_over_loopback() -> None:
    seen: list[list[tuple[str, str]]] = []

    async def handle(request: web.Request) -> web.Response:
        reader = await request.multipart()
        fields = []
        async for part in reader:
            fields.append((part.name or "", (await part.read()).decode()))  # type: ignore[union-attr]
        seen.append(fields)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", handle)
    colliding_value = "a\r\n--fp" + "0" * 32 + '\r\nContent-Disposition: form-data; name="x"'
    fields = [('pg_"q"', "1"), ("pg_text", colliding_value), ("pg_ru", "Отмена")]
    body, content_type = render_multipart(fields)
    async with serve(app) as url, ClientSession() as http:
        async with http.post(url, data=body, headers={"Content-Type": content_type}) as resp:
            assert resp.status == 200
    # aiohttp's reader undoes no %22 escaping: it sees the escaped name, unbroken framing.
    assert seen == [[("pg_%22q%22", "1"), ("pg_text", colliding_value), ("pg_ru", "Отмена")]]
