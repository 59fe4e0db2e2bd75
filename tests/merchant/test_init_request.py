"""InitPaymentRequest: validation, the documented variants, and the signed fields sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.fields import from_form_pairs
from freedompay_async._wire.multipart import multipart_boundary, parse_multipart

from ..helpers import MERCHANT, SECRET, SIGNER, serve, signed

SHOP = "https://shop.example/pay"


def request(**extra: object) -> fp.InitPaymentRequest:
    fields: dict[str, object] = {"amount": "150.00", "description": "Order A-1"}
    fields.update(extra)
    return fp.InitPaymentRequest(**fields)  # type: ignore[arg-type]


def sent(value: fp.InitPaymentRequest) -> dict[str, object]:
    return dict(value.to_fields(MERCHANT, "salt"))


# -- documented variants where the regional pages disagree -----------------------------


def test_order_id_is_optional_as_on_the_kz_page() -> None:
    assert "pg_order_id" not in sent(request())


def test_order_id_is_sent_when_given_as_the_uz_and_kg_pages_require() -> None:
    assert sent(request(order_id="A-1"))["pg_order_id"] == "A-1"
    assert sent(request(order_id=1001))["pg_order_id"] == "1001"


@pytest.mark.parametrize("code", ["kk", "kz", "KK", "ru", "en", "kg", "uz"])
def test_both_kazakh_language_codes_are_accepted_and_sent_as_given(code: str) -> None:
    assert sent(request(language=code))["pg_language"] == code.lower()


def test_an_unknown_language_code_is_refused() -> None:
    with pytest.raises(fp.ValidationError, match="language"):
        request(language="kaz")


@pytest.mark.parametrize("phone", [77011234567, "77011234567"])
def test_the_phone_as_a_number_kz_or_a_string_uz_is_sent_as_the_same_digits(
    phone: int | str,
) -> None:
    value = request(user_phone=phone)
    assert sent(value)["pg_user_phone"] == "77011234567"
    assert "77011234567" not in repr(value)  # the buyer's contacts stay out of repr


@pytest.mark.parametrize("phone", ["+77011234567", "8 701 123", "abc", -7701, True, 12])
def test_a_phone_that_is_not_digits_is_refused(phone: object) -> None:
    with pytest.raises(fp.ValidationError, match="user_phone"):
        request(user_phone=phone)


# -- the script-name rule and the other checks ----------------------------------------


@pytest.mark.parametrize("name", ["result_url", "check_url", "success_url", "failure_url"])
def test_a_url_ending_in_a_slash_is_refused(name: str) -> None:
    with pytest.raises(fp.ValidationError, match="script name"):
        request(**{name: f"{SHOP}/result/"})
    # the same rule the merchant side applies when it verifies what comes back
    with pytest.raises(fp.ConfigurationError):
        fp.callback_script_name(f"{SHOP}/result/")


@pytest.mark.parametrize("url", ["shop.example/pay/result", "ftp://shop.example/r", "x" * 300])
def test_a_url_that_is_not_absolute_http_is_refused(url: str) -> None:
    with pytest.raises(fp.ValidationError):
        request(result_url=url)


def test_two_step_is_pg_auto_clearing_0_and_the_shop_setting_is_nothing_sent() -> None:
    assert sent(request(auto_clearing=False))["pg_auto_clearing"] == "0"
    assert sent(request(auto_clearing=True))["pg_auto_clearing"] == "1"
    assert "pg_auto_clearing" not in sent(request())
    with pytest.raises(fp.ValidationError):
        request(auto_clearing=0)


@pytest.mark.parametrize(
    "extra",
    [
        {"amount": 1.5},
        {"amount": "0.001"},
        {"amount": "100000000"},
        {"description": ""},
        {"description": "x" * 1025},
        {"description": "line\nbreak"},
        {"lifetime": 299},
        {"lifetime": 604_801},
        {"success_url_method": "AUTOPOST"},
        {"request_method": "PUT"},
        {"currency": "tenge"},
        {"user_contact_email": "not an address"},
        {"merchant_params": {"pg_order": "1"}},
        {"merchant_params": {"sku id": "1"}},
        {"merchant_params": {"sku": 1}},
        {"order_id": "has space"},
    ],
)
def test_unusable_values_are_refused_before_anything_is_signed(extra: dict[str, object]) -> None:
    with pytest.raises(fp.ValidationError):
        request(**extra)


def test_every_field_is_rendered_under_its_documented_name() -> None:
    value = request(
        order_id="A-1",
        currency="kzt",
        result_url=f"{SHOP}/result",
        check_url=f"{SHOP}/check",
        request_method="post",
        success_url=f"{SHOP}/success",
        success_url_method="GET",
        failure_url=f"{SHOP}/failure",
        failure_url_method="post",
        auto_clearing=False,
        lifetime=3600,
        testing_mode=True,
        language="kk",
        user_contact_email="buyer@example.com",
        receipt_positions=[fp.ReceiptPosition(1, "Товар", Decimal("150"), tax_type=3)],
        merchant_params={"sku": "B-7", "channel": "web"},
    )
    fields = value.to_fields(MERCHANT, "salt")
    flat = dict(fields)
    assert flat["pg_merchant_id"] == str(MERCHANT) and flat["pg_amount"] == "150.00"
    assert flat["pg_currency"] == "KZT" and flat["pg_description"] == "Order A-1"
    assert flat["pg_request_method"] == "POST" and flat["pg_failure_url_method"] == "POST"
    assert flat["pg_lifetime"] == "3600" and flat["pg_testing_mode"] == "1"
    assert flat["pg_result_url"] == f"{SHOP}/result" and flat["pg_check_url"] == f"{SHOP}/check"
    assert flat["pg_user_contact_email"] == "buyer@example.com"
    assert flat["sku"] == "B-7" and flat["channel"] == "web"
    assert isinstance(flat["pg_receipt_positions"], list)
    assert fields[-1] == ("pg_salt", "salt")
    assert value.payment_id is None


# -- over the wire ---------------------------------------------------------------------


async def test_init_payment_is_signed_with_its_script_and_its_reply_verified() -> None:
    seen: list[list[tuple[str, object]]] = []

    async def init(request: web.Request) -> web.Response:
        body = await request.read()
        boundary = multipart_boundary(request.headers["Content-Type"])
        assert boundary is not None
        seen.append(list(from_form_pairs(parse_multipart(body, boundary))))
        reply = [
            ("pg_status", "ok"),
            ("pg_payment_id", "4567788"),
            ("pg_redirect_url", "https://api.freedompay.kz/pay.html?customer=4983"),
            ("pg_redirect_url_type", "need data"),
        ]
        return web.Response(body=signed(reply, "init_payment.php"), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/init_payment.php", init)
    async with (
        serve(app) as url,
        fp.AsyncSession(fp.Credentials(MERCHANT, SECRET), base_url=url, api="merchant") as fp_,
    ):
        page = await fp_.init_payment(order_id="23", amount=25, description="test")
    assert page == fp.PaymentPage(
        4567788, "https://api.freedompay.kz/pay.html?customer=4983", "need data"
    )
    (fields,) = seen
    signature = dict(fields).pop("pg_sig")
    assert isinstance(signature, str)
    unsigned = [(k, v) for k, v in fields if k != "pg_sig"]
    assert SIGNER.verify("init_payment.php", unsigned, signature)  # type: ignore[arg-type]
    assert not SIGNER.verify("init_payment", unsigned, signature)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "script"),
    [
        ([("pg_status", "ok"), ("pg_payment_id", "5"), ("pg_redirect_url", "https://p/x")],
         "init_payment"),  # signed with another script name: a forgery
        ([("pg_status", "ok"), ("pg_redirect_url", "https://p/x")], "init_payment.php"),
        ([("pg_status", "ok"), ("pg_payment_id", "5"), ("pg_redirect_url", "/pay.html")],
         "init_payment.php"),
    ],
)  # fmt: skip
async def test_an_unusable_init_reply_is_never_a_page(
    reply: list[tuple[str, str]], script: str
) -> None:
    async def init(_request: web.Request) -> web.Response:
        return web.Response(body=signed(reply, script), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/init_payment.php", init)
    async with (
        serve(app) as url,
        fp.AsyncSession(fp.Credentials(MERCHANT, SECRET), base_url=url) as fp_,
    ):
        with pytest.raises(fp.ReplyError) as info:
            await fp_.init_payment(amount=25, description="test", reconcile=False)
    assert info.value.outcome_unknown  # it may have created a payment all the same


async def test_keywords_and_a_request_value_do_not_mix() -> None:
    async with fp.AsyncSession(fp.Credentials(MERCHANT, SECRET)) as fp_:
        with pytest.raises(fp.ValidationError):
            await fp_.init_payment(request(), amount=5)
        with pytest.raises(fp.ValidationError, match="unexpected keyword"):
            await fp_.init_payment(amount=5, description="x", colour="red")
