"""The exact bytes of a rendered multipart body (a golden test with a fixed boundary)."""

from __future__ import annotations

import pytest

from freedompay_async._wire import multipart as _multipart
from freedompay_async._wire.multipart import (
    multipart_boundary,
    parse_multipart,
    render_multipart,
)


@pytest.fixture(autouse=True)
def _fresh_head_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Part heads are cached by name; start empty so each test renders its own."""
    monkeypatch.setattr(_multipart, "_HEADS", {})


def test_the_body_is_exactly_the_documented_framing() -> None:
    fields = [("pg_a", "1"), ("pg_list", [("0", [("name", "Ф")])]), ("pg_b", "")]
    body, content_type = render_multipart(fields, boundary="BND")  # type: ignore[list-item]
    assert content_type == "multipart/form-data; boundary=BND"
    assert body == (
        b'--BND\r\nContent-Disposition: form-data; name="pg_a"\r\n\r\n1\r\n'
        b'--BND\r\nContent-Disposition: form-data; name="pg_list[0][name]"\r\n\r\n'
        + "Ф".encode()
        + b"\r\n"
        b'--BND\r\nContent-Disposition: form-data; name="pg_b"\r\n\r\n\r\n'
        b"--BND--\r\n"
    )


def test_every_framing_character_in_a_name_is_escaped() -> None:
    name = 'a\\b"c\rd\ne'
    body, _ = render_multipart([(name, "v")], boundary="B")
    assert (
        body
        == b'--B\r\nContent-Disposition: form-data; name="a\\\\b%22c%0Dd%0Ae"\r\n\r\nv\r\n--B--\r\n'
    )


def test_random_boundaries_are_fresh_hex_and_read_back() -> None:
    body1, type1 = render_multipart([("pg_a", "1")])
    body2, type2 = render_multipart([("pg_a", "1")])
    b1, b2 = multipart_boundary(type1), multipart_boundary(type2)
    assert b1 is not None and b2 is not None and b1 != b2
    assert b1.startswith("fp") and len(b1) == 34 and int(b1[2:], 16) >= 0
    assert parse_multipart(body1, b1) == [("pg_a", "1")] == parse_multipart(body2, b2)


def test_the_part_head_cache_is_bounded_and_heads_are_right_past_it() -> None:
    for i in range(_multipart._HEADS_MAX + 50):
        render_multipart([(f"pg_made_up_{i}", "v")], boundary="B")
    assert len(_multipart._HEADS) <= _multipart._HEADS_MAX
    body, _ = render_multipart([("pg_never_cached_name", "v")], boundary="B")
    assert b'name="pg_never_cached_name"' in body
    again, _ = render_multipart([("pg_never_cached_name", "v")], boundary="B")
    assert again == body
