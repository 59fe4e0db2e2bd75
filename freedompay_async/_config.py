"""Configuration values: merchant credentials, gateway base URLs and connection limits."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attrs

from ._exceptions import ConfigurationError

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "Credentials", "GatewayURL", "Limits"]


def merchant_id_of(value: object) -> int:
    """A merchant id as an int; ConfigurationError unless it is a positive integer (or
    its decimal text). Apart from :class:`Credentials` so that a caller can check the id
    before it reads the secret key (a raise then has no key in its frame)."""
    if isinstance(value, bool):
        raise ConfigurationError("merchant_id must be a positive integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdecimal():
        number = int(value.strip())
    else:
        raise ConfigurationError("merchant_id must be a positive integer")
    if number <= 0:
        raise ConfigurationError("merchant_id must be a positive integer")
    return number


@attrs.frozen
class Credentials:
    """A merchant's id and secret key ("payment password" in the merchant settings).

    The secret key is never shown by ``repr`` or ``str``.
    """

    merchant_id: int = attrs.field(converter=merchant_id_of)
    secret_key: str = attrs.field(repr=False)

    @secret_key.validator
    def _check_secret(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigurationError("secret_key must be a non-empty string")


def _base(value: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError("gateway base URL must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"gateway base URL must be http(s)://host[:port][/path], got {value!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError("gateway base URL must not carry a query or fragment")
    return value.rstrip("/")


@attrs.frozen
class GatewayURL:
    """Where the Gateway API lives: a documented preset or any custom URL.

    Presets cover every documented region, production and test. ``UZ_TEST`` is inferred
    from the naming of the other test hosts: the UZ page shows an unfilled
    ``{{test_domain}}`` template. ``GatewayURL("http://127.0.0.1:8080")`` points at the
    sandbox or a proxy. :meth:`preset` looks a preset up by name (``"kz-test"``).
    """

    base: str = attrs.field(converter=_base)

    KZ: ClassVar[GatewayURL]
    KZ_TEST: ClassVar[GatewayURL]
    UZ: ClassVar[GatewayURL]
    UZ_TEST: ClassVar[GatewayURL]
    KG: ClassVar[GatewayURL]
    KG_TEST: ClassVar[GatewayURL]
    MONEY: ClassVar[GatewayURL]
    MONEY_TEST: ClassVar[GatewayURL]

    @classmethod
    def of(cls, value: GatewayURL | str) -> GatewayURL:
        """Accept a preset, a GatewayURL or a URL string."""
        return value if isinstance(value, GatewayURL) else cls(value)

    @classmethod
    def presets(cls) -> Mapping[str, GatewayURL]:
        """Every preset by name: ``kz``, ``kz-test``, ``uz``, ..., ``money-test``."""
        return _PRESETS

    @classmethod
    def preset(cls, name: str) -> GatewayURL:
        """The preset called ``name`` (case-insensitive); ConfigurationError if none is."""
        found = _PRESETS.get(name.strip().lower()) if isinstance(name, str) else None
        if found is None:
            raise ConfigurationError(
                f"no gateway preset {str(name)[:40]!r}; presets: {', '.join(_PRESETS)}"
            )
        return found

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/g2g/cancel``."""
        return self.base + path

    def __str__(self) -> str:
        return self.base


GatewayURL.KZ = GatewayURL("https://api.freedompay.kz")
GatewayURL.KZ_TEST = GatewayURL("https://test-api.freedompay.kz")
GatewayURL.UZ = GatewayURL("https://api.freedompay.uz")
GatewayURL.UZ_TEST = GatewayURL("https://test-api.freedompay.uz")
GatewayURL.KG = GatewayURL("https://api.freedompay.kg")
GatewayURL.KG_TEST = GatewayURL("https://test-api.freedompay.kg")
GatewayURL.MONEY = GatewayURL("https://api.freedompay.money")
GatewayURL.MONEY_TEST = GatewayURL("https://test-api.freedompay.money")

_PRESETS: Mapping[str, GatewayURL] = MappingProxyType(
    {
        "kz": GatewayURL.KZ,
        "kz-test": GatewayURL.KZ_TEST,
        "uz": GatewayURL.UZ,
        "uz-test": GatewayURL.UZ_TEST,
        "kg": GatewayURL.KG,
        "kg-test": GatewayURL.KG_TEST,
        "money": GatewayURL.MONEY,
        "money-test": GatewayURL.MONEY_TEST,
    }
)

DEFAULT_MAX_REPLY_BYTES = 1024 * 1024


def _at_least(minimum: int) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigurationError(f"{attribute.name} must be an integer >= {minimum}")

    return check


@attrs.frozen
class Limits:
    """Connection pool and reply limits: every bound on what a gateway reply may cost.

    - ``max_connections`` caps requests in flight (and pooled connections to the
      gateway host); requests beyond it wait *before* pacing and before their attempt
      timer starts (the call's deadline still runs: see ``RetryPolicy.deadline``).
    - ``connect_timeout`` bounds opening a new TCP/TLS connection;
      ``keepalive_timeout`` how long an idle pooled connection is kept.
    - ``max_reply_bytes`` caps a reply body **after decompression** (1 MiB by default,
      some hundred times a real cancel or status reply, a status reply with many
      refunds included). The transport offers no compression (``Accept-Encoding:
      identity``); a gateway that compresses anyway (gzip or deflate) is decompressed
      in bounded steps and stopped at this cap, whether or not it sent a
      ``Content-Length``. Any other content coding is a MalformedReplyError.
    - ``max_xml_depth`` (32) and ``max_xml_elements`` (10,000, the root included)
      bound the parse work of one reply; both are checked while parsing, so a
      100,000-deep or 130,000-wide document under the byte cap is stopped early.
    - ``max_line_size`` (status line or one header line, bytes), ``max_field_size`` (one
      header field, bytes) and ``max_headers`` (header count) are handed to aiohttp's
      response parser for a session the transport creates (aiohttp's defaults: 8190,
      8190, 128); a reply whose head exceeds them is a MalformedReplyError. A
      borrowed ``session=`` keeps its own settings.
    """

    max_connections: int = attrs.field(default=100, validator=_at_least(1))
    connect_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    max_reply_bytes: int = attrs.field(default=DEFAULT_MAX_REPLY_BYTES, validator=_at_least(1024))
    max_xml_depth: int = attrs.field(default=32, validator=_at_least(2))
    max_xml_elements: int = attrs.field(default=10_000, validator=_at_least(8))
    max_line_size: int = attrs.field(default=8190, validator=_at_least(256))
    max_field_size: int = attrs.field(default=8190, validator=_at_least(256))
    max_headers: int = attrs.field(default=128, validator=_at_least(8))

    def __attrs_post_init__(self) -> None:
        if not self.connect_timeout > 0 or not self.keepalive_timeout >= 0:
            raise ConfigurationError("timeouts must be positive")
