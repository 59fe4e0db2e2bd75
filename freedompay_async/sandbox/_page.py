"""The sandbox's payment page: what ``pg_redirect_url`` opens in a browser or a test.

``GET /pay.html?customer=<token>`` shows the order (description, amount) and a form
with two buttons; ``POST /pay.html`` with ``customer`` and ``outcome`` (``paid`` or
``failed``) plays the buyer's choice (check, payment, result notification) and sends
the browser back: a 302 to the success or failure URL with the signed fields in its
query for ``GET``, or a page whose form posts them there for ``POST``.
"""

from __future__ import annotations

import html

from aiohttp import web
from yarl import URL

from ._checkout import Checkout
from ._outbound import Pairs, with_query
from ._status import money

__all__ = ["browser_back", "page"]

_STYLE = "body{font-family:sans-serif;max-width:32em;margin:3em auto}"


def page(checkout: Checkout, token: str) -> web.Response:
    """The payment page of ``checkout``."""
    description = html.escape(checkout.description)
    amount = f"{money(checkout.amount)} {html.escape(checkout.currency)}"
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sandbox payment</title>"
        f"<style>{_STYLE}</style></head><body><h1>Sandbox payment</h1>"
        f"<p>{description}</p><p><strong>{amount}</strong></p>"
        "<form method='post' action='/pay.html'>"
        f"<input type='hidden' name='customer' value='{html.escape(token)}'>"
        "<button name='outcome' value='paid'>Pay</button> "
        "<button name='outcome' value='failed'>Fail</button></form></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


def _autopost(url: str, pairs: Pairs) -> web.Response:
    inputs = "".join(
        f"<input type='hidden' name='{html.escape(name)}' value='{html.escape(value)}'>"
        for name, value in pairs
    )
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Back to the shop</title>"
        f"</head><body onload='document.forms[0].submit()'>"
        f"<form method='post' action='{html.escape(url)}'>{inputs}"
        "<button>Back to the shop</button></form></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


def browser_back(url: str, method: str, pairs: Pairs, paid: bool) -> web.Response:
    """Send the browser back to the merchant (or, without a URL, say how it went)."""
    if not url:
        word = "paid" if paid else "not paid"
        return web.Response(text=f"The payment is {word}.", content_type="text/plain")
    if method == "POST":
        return _autopost(url, pairs)
    location: URL = with_query(url, pairs)
    raise web.HTTPFound(location)
