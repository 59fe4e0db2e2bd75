"""The journal's header line: which gateway, API family, merchant and operation a
journal belongs to, and the shard (``--shard K/N``) it was started for. A header
without ``api`` (written before ``--api``) is the Gateway API's, the only one then.

The gateway's base URL is kept normalised (:func:`normalise_base_url`), both when a
header is written and when one is read back, so that two spellings of one gateway
(``HTTP://Host:443`` and ``http://host:443/``, an explicit default port) compare equal.
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["HEADER_MAGIC", "JOURNAL_VERSION", "JournalHeader", "normalise_base_url"]

#: The value of the header's ``journal`` key.
HEADER_MAGIC = "freedompay-async"
JOURNAL_VERSION = 2

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def normalise_base_url(url: str) -> str:
    """``url`` with its scheme and host lowercased, a default port (80 for http, 443
    for https) dropped and no trailing slash. Text that is not an absolute URL is
    returned with only the trailing slashes stripped."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return url.rstrip("/")
    if not parts.scheme or host is None:
        return url.rstrip("/")
    scheme = parts.scheme.lower()
    netloc = f"[{host}]" if ":" in host else host  # hostname is lowercased, unbracketed
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


@attrs.frozen
class JournalHeader:
    """The first line of a journal: which gateway and merchant its outcomes came from.

    ``base_url`` is a :class:`~freedompay_async.GatewayURL`'s ``base``, normalised by
    :func:`normalise_base_url`; ``started`` an ISO 8601 UTC time; ``shard`` the
    ``K/N`` of a run started with ``--shard`` (None: the whole input); ``api`` the
    API family (``gateway`` or ``merchant``) the run spoke.
    """

    operation: str
    base_url: str = attrs.field(converter=normalise_base_url)
    merchant_id: int = attrs.field()
    started: str = attrs.field(factory=_now)
    version: int = JOURNAL_VERSION
    shard: str | None = None
    api: str = "gateway"

    def as_record(self) -> dict[str, Any]:
        """The header line as a dict (``shard`` only when set, ``api`` only when not
        ``gateway``)."""
        record: dict[str, Any] = {
            "journal": HEADER_MAGIC,
            "version": self.version,
            "operation": self.operation,
            "base_url": self.base_url,
            "merchant_id": self.merchant_id,
            "started": self.started,
        }
        if self.api != "gateway":  # absent: the Gateway API, as in journals before --api
            record["api"] = self.api
        if self.shard is not None:
            record["shard"] = self.shard
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JournalHeader | None:
        """The header a parsed first line holds, or None if it is not a header."""
        if record.get("journal") != HEADER_MAGIC:
            return None
        operation, base_url = record.get("operation"), record.get("base_url")
        merchant, version = record.get("merchant_id"), record.get("version")
        if not isinstance(operation, str) or not isinstance(base_url, str):
            return None
        if isinstance(merchant, bool) or not isinstance(merchant, int):
            return None
        started, shard = record.get("started"), record.get("shard")
        api = record.get("api", "gateway")
        if not isinstance(api, str):
            return None
        return cls(
            operation=operation,
            base_url=base_url,
            merchant_id=merchant,
            started=started if isinstance(started, str) else "",
            version=version if isinstance(version, int) else JOURNAL_VERSION,
            shard=shard if isinstance(shard, str) else None,
            api=api,
        )

    def differs_from(self, other: JournalHeader) -> list[str]:
        """What makes ``other`` belong to another gateway, API family, merchant,
        operation or shard (base URLs compared normalised). A journal started for a
        shard serves that shard only; one started for the whole input serves any run."""
        names = ["base_url", "api", "merchant_id", "operation"]
        if self.shard is not None:
            names.append("shard")
        return [
            f"{name} {getattr(self, name)!r} (journal) vs {getattr(other, name)!r} (this run)"
            for name in names
            if getattr(self, name) != getattr(other, name)
        ]
