"""The merchant-side values: own fields first, then what every signed message carries."""

from __future__ import annotations

import attrs

import freedompay_async as fp


def test_each_value_lists_its_own_fields_before_the_shared_ones() -> None:
    shared = ["salt", "merchant_params", "extra", "fields"]
    for cls in (fp.RedirectBack, fp.ResultNotify, fp.CheckRequest):
        names = [field.name for field in attrs.fields(cls)]
        assert names[-4:] == shared, cls.__name__
        assert names[0] == "order_id", cls.__name__
        assert issubclass(cls, fp.SignedMessage)


def test_repr_shows_own_fields_first_and_only_names_of_params() -> None:
    back = fp.RedirectBack("A-1", 7, True, salt="s3cr3t-salt", merchant_params={"lang": "ru"})
    text = repr(back)
    assert text.startswith("RedirectBack(order_id='A-1', payment_id=7, succeeded=True")
    assert text.endswith("merchant_params=<lang>, extra=<>)")
    assert "s3cr3t-salt" not in text and "'ru'" not in text
