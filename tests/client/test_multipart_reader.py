"""The one multipart reader (callbacks, the sandbox): every framing rule and refusal.

Bodies are written out by hand here, byte for byte, as a browser or PHP client would
send them, so the reader is not only ever checked against the library's own writer.
"""

from __future__ import annotations

import pytest

import freedompay_async as fp
from freedompay_async._wire.multipart import (
    multipart_boundary,
    parse_multipart,
)


def part(headers: str, value: bytes | str, boundary: str = "B") -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return f"--{boundary}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"


def body(*parts: bytes, boundary: str = "B", epilogue: bytes = b"") -> bytes:
    return b"".join(parts) + f"--{boundary}--\r\n".encode() + epilogue


CD = "Content-Disposition: form-data; "


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ("Multipart/Form-Data ; boundary=abc", "abc"),
        ('multipart/form-data; charset=utf-8; boundary="a;b c"', "a;b c"),
        ('multipart/form-data; BOUNDARY="q\\"x"', 'q"x'),
        ("multipart/form-data; boundary=" + "x" * 200, "x" * 200),
        ("multipart/form-data; boundary=" + "x" * 201, None),
        ('multipart/form-data; boundary=""', None),
        ("multipart/form-data", None),
        ("multipart/mixed; boundary=abc", None),
        ("text/plain; boundary=abc", None),
        ("multipart/form-data; boundary=abc; x=1;y", "abc"),
    ],
)
def test_boundary_from_content_type(content_type: str, boundary: str | None) -> None:
    assert multipart_boundary(content_type) == boundary


def test_a_plain_body_with_preamble_and_epilogue() -> None:
    data = b"preamble text\r\n" + body(
        part(CD + 'name="a"', "1"),
        part(CD + 'name="b"; filename="f.txt"\r\nContent-Type: text/plain', "two\r\nlines"),
        part(CD + 'name="c"', ""),
        epilogue=b"epilogue\r\n--B\r\nignored",
    )
    assert parse_multipart(data, "B") == [("a", "1"), ("b", "two\r\nlines"), ("c", "")]


def test_names_quoted_escaped_and_percent_encoded() -> None:
    data = body(
        part(CD + 'name="a\\"b"', "1"),
        part(CD + 'name="x%22y%0D%0Az"', "2"),
        part(CD + "name=bare", "3"),
        part('content-disposition:form-data;name="lower"', "4"),
        part(CD + "name*=UTF-8''%D0%B8%D0%BC%D1%8F", "5"),
        part(CD + "name*=utf8'ru'%D1%8F", "6"),
        part(CD + 'name=""', "7"),
        part("X-Other: 1\r\n" + CD + 'name="after"', "8"),
    )
    assert parse_multipart(data, "B") == [
        ('a"b', "1"),
        ('x"y\r\nz', "2"),
        ("bare", "3"),
        ("lower", "4"),
        ("имя", "5"),
        ("я", "6"),
        ("", "7"),
        ("after", "8"),
    ]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (CD + "name*=latin-1''%E9", "multipart field name in an unsupported charset"),
        (CD + "name*=utf-8''%FF", "multipart field name is not valid UTF-8"),
    ],
)
def test_unusable_encoded_names_are_refused(headers: str, message: str) -> None:
    with pytest.raises(fp.ValidationError) as info:
        parse_multipart(body(part(headers, "v")), "B")
    assert str(info.value) == message


@pytest.mark.parametrize(
    "headers",
    [
        "Content-Type: text/plain",
        'Content-Disposition: attachment; name="a"',
        'Content-Disposition: form-data; filename="f"',
        "no colon here",
    ],
)
def test_a_part_without_a_form_data_name(headers: str) -> None:
    data = body(part(headers, "v"), part(CD + 'name="ok"', "1"))
    with pytest.raises(fp.ValidationError) as info:
        parse_multipart(data, "B")
    assert str(info.value) == "multipart part without a form-data name"
    assert parse_multipart(data, "B", skip_nameless=True) == [("ok", "1")]


def test_a_part_without_headers_is_nameless() -> None:
    data = b"--B\r\n\r\nvalue\r\n--B--\r\n"
    assert parse_multipart(data, "B", skip_nameless=True) == []
    with pytest.raises(fp.ValidationError, match="without a form-data name"):
        parse_multipart(data, "B")


def test_a_delimiter_line_may_end_in_whitespace() -> None:
    data = b"--B \t\r\n" + CD.encode() + b'name="a"\r\n\r\n1\r\n--B--'
    assert parse_multipart(data, "B") == [("a", "1")]


@pytest.mark.parametrize(
    ("data", "boundary", "message"),
    [
        (b"", "", "multipart body without a usable boundary"),
        (b"x", "x" * 201, "multipart body without a usable boundary"),
        (b"x", "граница", "multipart body without a usable boundary"),
        (b"no delimiter at all", "B", "multipart body without its boundary"),
        (b"--Bjunk\r\n", "B", "malformed multipart delimiter line"),
        (b"--B", "B", "malformed multipart delimiter line"),
        (b"--B\r\n" + CD.encode() + b'name="a"\r\n', "B",
         "multipart part with unterminated headers"),
        (b"--B\r\n" + CD.encode() + b'name="a"\r\n\r\nvalue', "B", "multipart body is truncated"),
        (b"--B\r\n" + CD.encode() + b'name="\xff"\r\n\r\nv\r\n--B--', "B",
         "multipart header is not valid UTF-8"),
        (b"--B\r\n" + CD.encode() + b'name="a"\r\n\r\n\xff\r\n--B--', "B",
         "multipart field is not valid UTF-8"),
    ],
)  # fmt: skip
def test_badly_framed_bodies_are_refused(data: bytes, boundary: str, message: str) -> None:
    with pytest.raises(fp.ValidationError) as info:
        parse_multipart(data, boundary)
    assert str(info.value) == message


def test_edge_names_and_boundaries() -> None:
    data = body(
        part(CD + 'name="a:b"', "1", boundary="x"),
        part(CD + "name*=utf-8''it's", "2", boundary="x"),
        boundary="x",
    )
    assert multipart_boundary("multipart/form-data; boundary=x") == "x"
    assert parse_multipart(data, "x") == [("a:b", "1"), ("it's", "2")]
    long = "y" * 200
    assert parse_multipart(body(part(CD + 'name="n"', "v", boundary=long), boundary=long), long)
