"""The XML reader: the regex fast path for flat replies must agree with xmltodict exactly."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from freedompay_async._wire.xml import (
    XMLReplyError,
    _parse_flat,
    parse_with_xmltodict,
    parse_xml_fields,
)

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,10}", fullmatch=True)
# Any text at all, markup characters and non-ASCII included: whatever the fast path
# accepts, it must read exactly as xmltodict does, and it may always decline.
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
space = st.sampled_from(["", " ", "\n", "\n    ", "\t", "\r\n"])
declarations = st.sampled_from(
    [
        "",
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="utf-8"?>',
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<?xml version="1.0" standalone="yes"?>',
    ]
)


@st.composite
def flat_documents(draw: st.DrawFn) -> bytes:
    root = draw(names)
    parts = [draw(declarations), draw(space), f"<{root}>"]
    for name, text in draw(st.lists(st.tuples(names, texts), min_size=1, max_size=8)):
        parts += [draw(space), f"<{name}>{text}</{name}>"]
    parts += [draw(space), f"</{root}>", draw(space)]
    return "".join(parts).encode("utf-8")


@given(flat_documents())
def test_the_fast_path_reads_exactly_what_xmltodict_reads_or_declines(body: bytes) -> None:
    fast = _parse_flat(body)
    event("fast path " + ("declined" if fast is None else "read it"))
    if fast is None:
        # Declining is allowed, but the document must still be read right by the full path.
        try:
            full = parse_with_xmltodict(body)
        except ValueError:
            with pytest.raises(XMLReplyError):
                parse_xml_fields(body)
        else:
            assert parse_xml_fields(body) == full
    else:
        assert fast == parse_with_xmltodict(body)


@given(flat_documents())
def test_parse_xml_fields_equals_the_full_parser_on_any_document_it_accepts(body: bytes) -> None:
    try:
        full = parse_with_xmltodict(body)
    except ValueError:
        # The case that matters most: what the full parser refuses is refused, typed.
        with pytest.raises(XMLReplyError):
            parse_xml_fields(body)
        return
    assert parse_xml_fields(body) == full


def test_the_documented_success_reply_takes_the_fast_path_unstripped() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<response>\n'
        b"    <pg_payment_id>7777777777</pg_payment_id>\n"
        b"    <pg_status>ok</pg_status>\n    <pg_note> a b </pg_note>\n</response>"
    )
    assert _parse_flat(body) == (
        "response",
        [("pg_payment_id", "7777777777"), ("pg_status", "ok"), ("pg_note", " a b ")],
    )
