"""The md5 pg_sig: documented vectors, flattening rules, verification, key rotation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from freedompay_async import Md5Signer, RotatingSigner, Signer, ValidationError, script_name
from freedompay_async._wire.fields import (
    Fields,
    FieldValue,
    form_pairs,
    from_form_pairs,
    php_str,
)
from freedompay_async._wire.signing import (
    flatten,
    signature_string,
)

SIGNER = Md5Signer("secret")

V1 = [
    ("pg_order_id", "23"),
    ("pg_merchant_id", "1234"),
    ("pg_amount", "25"),
    ("pg_description", "test"),
    ("pg_salt", "molbulak"),
]
VECTORS: list[tuple[str, str, Fields, str, str]] = [
    (
        "V1",
        "init_payment.php",
        V1,
        "init_payment.php;25;test;1234;23;molbulak;secret",
        "0e28bf37044bc0ad332a0612ff22422f",
    ),
    (
        "V2",
        "cancel",
        [
            ("pg_merchant_id", "1234"),
            ("pg_payment_id", "7777777777"),
            ("pg_salt", "YtfwCGiBHsFLpYGk"),
        ],
        "cancel;1234;7777777777;YtfwCGiBHsFLpYGk;secret",
        "651d38ffae3e1c8d4f6568431e02f6af",
    ),
    (
        "V3",
        "cancel",
        [
            ("pg_payment_id", "7777777777"),
            ("pg_payment_revoke_id", "7777777778"),
            ("pg_status", "ok"),
            ("pg_revoke_status", "success"),
            ("pg_salt", "YtfwCGiBHsFLpYGk"),
        ],
        "cancel;7777777777;7777777778;success;YtfwCGiBHsFLpYGk;ok;secret",
        "d35b3f9a9d08cd0c592bcada23083bbd",
    ),
    (
        "V4",
        "cancel",
        [
            ("pg_status", "error"),
            ("pg_error_code", "1100"),
            ("pg_error_description", "Некорректная подпись запроса"),
            ("pg_datetime", "2024-10-07T06:33:20+00:00"),
            ("pg_salt", "7fkmeKvqQYackCJU"),
        ],
        "cancel;2024-10-07T06:33:20+00:00;1100;Некорректная подпись запроса;"
        "7fkmeKvqQYackCJU;error;secret",
        "3b22bfecfe3bb2ee77e1e39c4b8ef24c",
    ),
    (
        "V5",
        "init_payment.php",
        [
            *V1,
            (
                "pg_receipt_positions",
                [
                    (
                        "0",
                        [
                            ("count", "1"),
                            ("name", "product name"),
                            ("tax_type", "3"),
                            ("price", "900"),
                        ],
                    )
                ],
            ),
        ],
        "init_payment.php;25;test;1234;23;1;product name;900;3;molbulak;secret",
        "9a8b7b0a38f4b26db5e095c2d917d9e0",
    ),
    (
        "V6",
        "result",
        [("pg_status", "ok"), ("pg_description", "Order paid"), ("pg_salt", "abc123")],
        "result;Order paid;abc123;ok;secret",
        "102a8d68d1a3464b9ff00f93b24f2a21",
    ),
    (
        "V7",
        "status_v2",
        [("pg_merchant_id", "1234"), ("pg_payment_id", "1"), ("pg_order_id", ""), ("pg_salt", "s")],
        "status_v2;1234;;1;s;secret",
        "4469e212e60f9f7933a8d6d085c1d18b",
    ),
]


@pytest.mark.parametrize(("name", "script", "fields", "pre_image", "digest"), VECTORS)
def test_reference_vectors_sign_to_the_published_md5(
    name: str, script: str, fields: Fields, pre_image: str, digest: str
) -> None:
    assert signature_string(script, fields, "secret") == pre_image
    assert SIGNER.sign(script, fields) == digest
    assert SIGNER.verify(script, [*fields, ("pg_sig", digest)], digest)


def test_v5_flat_keys_carry_three_digit_position_suffixes() -> None:
    flat = flatten(VECTORS[4][2])
    assert "pg_receipt_positions0060001count001" in flat
    assert "pg_receipt_positions0060001price004" in flat


def test_pg_sig_uses_up_a_position_but_is_not_signed() -> None:
    fields = [("pg_a", "1"), ("pg_sig", "zzz"), ("pg_b", "2")]
    assert flatten(fields) == {"pg_a001": "1", "pg_b003": "2"}
    assert signature_string("x", fields, "k") == "x;1;2;k"


def test_eleven_receipt_positions_sort_like_php_ksort() -> None:
    positions = [(str(i), [("name", f"item{i}")]) for i in range(11)]
    values = signature_string("cancel", [("pg_receipt_positions", positions)], "k").split(";")[1:-1]
    # PHP ksort on "...0001name001", "...1002...", "...10011..." puts element 10 before 1.
    assert values == ["item0", "item10", "item1", *[f"item{i}" for i in range(2, 10)]]


def test_repeated_xml_elements_keep_document_order() -> None:
    fields = [("pg_refunds", [("pg_refund", [("id", "2")]), ("pg_refund", [("id", "1")])])]
    assert signature_string("s", fields, "k") == "s;2;1;k"


def test_empty_values_are_signed() -> None:
    assert signature_string("s", [("a", ""), ("b", "")], "k") == "s;;;k"


def test_verify_rejects_wrong_signature_wrong_script_and_wrong_key() -> None:
    fields = VECTORS[2][2]
    good = SIGNER.sign("cancel", fields)
    assert SIGNER.verify("cancel", fields, good.upper())
    assert not SIGNER.verify("cancel", fields, "0" * 32)
    assert not SIGNER.verify("refund", fields, good)
    assert not Md5Signer("other").verify("cancel", fields, good)
    assert not SIGNER.verify("cancel", fields, "ü" * 32)
    assert not SIGNER.verify("cancel", fields, "")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.freedompay.kz/g2g/cancel", "cancel"),
        ("https://api.freedompay.kz/g2g/status_v2?x=1/y", "status_v2"),
        ("https://api.freedompay.kz/init_payment.php", "init_payment.php"),
        ("https://shop.example/pay/result#frag", "result"),
        ("https://shop.example/pay/", ""),
        ("/v1/merchant/12/card/init", "init"),
    ],
)
def test_script_name_is_the_last_path_segment_up_to_the_query(url: str, expected: str) -> None:
    assert script_name(url) == expected


def test_rotating_signer_signs_with_current_and_accepts_previous() -> None:
    rotating = RotatingSigner.md5("new", "old")
    fields = [("pg_a", "1"), ("pg_salt", "s")]
    assert rotating.sign("cancel", fields) == Md5Signer("new").sign("cancel", fields)
    assert rotating.verify("cancel", fields, Md5Signer("old").sign("cancel", fields))
    assert rotating.verify("cancel", fields, Md5Signer("new").sign("cancel", fields))
    assert not rotating.verify("cancel", fields, Md5Signer("other").sign("cancel", fields))
    assert isinstance(rotating, Signer)


def test_signers_never_show_their_key() -> None:
    for obj in (Md5Signer("topsecret"), RotatingSigner.md5("topsecret", "oldsecret")):
        assert "topsecret" not in repr(obj) and "topsecret" not in str(obj)
        assert "oldsecret" not in repr(obj)


def test_php_str_matches_php_string_casts() -> None:
    from decimal import Decimal

    assert [php_str(v) for v in (True, False, None, 10, Decimal("10.50"), "x")] == [
        "1",
        "",
        "",
        "10",
        "10.50",
        "x",
    ]
    with pytest.raises(ValidationError):  # was TypeError: every refusal is a library error
        php_str(10.0)


# --- properties -------------------------------------------------------------------------

names = st.text(alphabet="abcdefgz_019-.AZ", min_size=1, max_size=8).map(lambda s: "pg_" + s)
values = st.text(max_size=12)
flat_fields = st.lists(st.tuples(names, values), max_size=12)
trees: st.SearchStrategy[list[tuple[str, FieldValue]]] = st.recursive(
    flat_fields.map(list),
    lambda children: st.lists(st.tuples(names, st.one_of(values, children)), max_size=5),
    max_leaves=20,
)


def reference_md5(script: str, fields: Fields, key: str) -> str:
    flat = flatten(fields)
    text = ";".join([script, *(flat[k] for k in sorted(flat)), key])
    return hashlib.md5(text.encode()).hexdigest()


@given(trees, st.text(alphabet="abc_.", max_size=10))
def test_signature_equals_the_reference_flatten_then_sort(fields: Fields, script: str) -> None:
    assert SIGNER.sign(script, fields) == reference_md5(script, fields, "secret")


@given(trees)
def test_any_signed_tree_verifies(fields: Fields) -> None:
    assert SIGNER.verify("cancel", fields, SIGNER.sign("cancel", fields))


@given(flat_fields.filter(lambda f: bool(f)), st.data())
def test_changing_any_value_breaks_the_signature(
    fields: list[tuple[str, str]], data: st.DataObject
) -> None:
    signature = SIGNER.sign("cancel", fields)
    # pg_sig is never part of its own pre-image, so changing it proves nothing: draw
    # among the other fields (there is always one: a lone pg_sig is filtered out).
    signed_positions = [i for i, (key, _) in enumerate(fields) if key != "pg_sig"]
    assume(signed_positions)
    index = data.draw(st.sampled_from(signed_positions))
    key, value = fields[index]
    tampered = list(fields)
    tampered[index] = (key, value + data.draw(st.text(min_size=1, max_size=3)))
    assert not SIGNER.verify("cancel", tampered, signature)


unique_trees: st.SearchStrategy[list[tuple[str, FieldValue]]] = st.recursive(
    st.dictionaries(names, values, max_size=6).map(lambda d: list(d.items())),
    lambda children: st.dictionaries(
        names, st.one_of(values, children), min_size=1, max_size=4
    ).map(lambda d: list(d.items())),
    max_leaves=20,
)


def drop_empty_groups(fields: Fields) -> list[tuple[str, FieldValue]]:
    out: list[tuple[str, FieldValue]] = []
    for key, value in fields:
        if isinstance(value, str):
            out.append((key, value))
        elif inner := drop_empty_groups(value):
            out.append((key, inner))
    return out


@given(unique_trees)
def test_bracket_form_names_rebuild_the_same_tree(fields: Fields) -> None:
    # What the client posts as pg_x[0][name] is what a server rebuilds and verifies.
    expected = drop_empty_groups(fields)  # an empty group has no form field to post
    assert from_form_pairs(form_pairs(fields)) == expected
    assert SIGNER.sign("cancel", from_form_pairs(form_pairs(fields))) == SIGNER.sign(
        "cancel", expected
    )


def test_unencodable_text_is_a_validation_error_that_holds_no_secret() -> None:
    signer = Md5Signer("the-secret-key")
    with pytest.raises(ValidationError) as info:
        signer.sign("cancel", [("pg_description", "bad \udc80 text")])
    chain: list[BaseException] = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert all("the-secret-key" not in repr(e) and "the-secret-key" not in str(e) for e in chain)
    assert not any(isinstance(e, UnicodeError) for e in chain)
    assert not signer.verify("cancel", [("pg_description", "\udc80")], "0" * 32)


def test_fields_nested_absurdly_deep_are_refused_not_a_recursion_error() -> None:
    tree: FieldValue = "x"
    for _ in range(5000):
        tree = [("a", tree)]
    assert not isinstance(tree, str)
    with pytest.raises(ValidationError):
        SIGNER.sign("cancel", tree)
    assert not SIGNER.verify("cancel", tree, "0" * 32)
