"""The coordination protocol on Redis, for fleets: :class:`RedisCoordinator`.

Needs redis-py (the ``redis`` extra: ``pip install 'freedompay_async[redis]'``), and is
imported lazily: this module loads without it, and only making a coordinator asks for
it. Every step is one Lua script (``redis_scripts``) run on the server's clock; every
failure to get an answer is a :class:`~freedompay_async.CoordinationUnavailableError`
naming the server (never its password), never a fall-back to in-process state.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .._exceptions import ConfigurationError, CoordinationUnavailableError
from . import redis_scripts
from .base import Claim, cancel_requests
from .memory import DEFAULT_LEASE_TTL, DEFAULT_NOTE_TTL, check_ttl

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "RedisCoordinator", "redacted_url"]

#: The first part of every key the coordinator writes.
DEFAULT_PREFIX = "freedompay"
#: Seconds to connect to Redis, and to wait for one answer.
DEFAULT_TIMEOUT = 2.0
_MISSING = (
    "RedisCoordinator needs redis-py, which is not installed: "
    "pip install 'freedompay_async[redis]'"
)


def _redis_errors() -> tuple[type[BaseException], type[BaseException]]:
    """redis-py's root error and its "unknown script" error (ConfigurationError when
    redis-py is missing)."""
    try:
        from redis.exceptions import NoScriptError, RedisError
    except ImportError as exc:
        raise ConfigurationError(_MISSING) from exc
    return RedisError, NoScriptError


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages and reprs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _where(client: Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


class _Script:
    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


_START = _Script(redis_scripts.START)
_FINISH = _Script(redis_scripts.FINISH)
_ACQUIRE = _Script(redis_scripts.ACQUIRE)
_RENEW = _Script(redis_scripts.RENEW)
_RELEASE = _Script(redis_scripts.RELEASE)
_NOTE = _Script(redis_scripts.NOTE)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisCoordinator:
    """:class:`~freedompay_async.Coordinator` on one Redis server, shared by a fleet.

    >>> coordinator = RedisCoordinator.from_url("redis://redis.internal:6379/0")
    >>> fp = AsyncSession(credentials, coordinator=coordinator)

    Every worker that acts on the same payments points at the same Redis (and the same
    ``prefix``). Per payment it keeps, under ``{prefix}:{<payment id>}:``, a start
    record for the spacing (``start``, gone an interval after the latest start), the
    money lease (``lease``: the holder's token, gone ``lease_ttl`` seconds after its
    last renewal) and the notes about unsettled money movements (``notes``, gone
    ``note_ttl`` seconds after the last was written; deleted as each movement settles).

    ``RedisCoordinator(client)`` borrows a ``redis.asyncio.Redis`` client and never
    closes it; :meth:`from_url` makes one of its own, closed by :meth:`aclose` (which
    the session calls when it closes). Needs Redis 5 or newer.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        note_ttl: float = DEFAULT_NOTE_TTL,
    ) -> None:
        self._errors, self._no_script = _redis_errors()
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError("prefix must be non-empty text without braces")
        self._client = client
        self._prefix = prefix
        self._lease_ttl = check_ttl("lease_ttl", lease_ttl)
        self._lease_ms = max(1, math.ceil(self._lease_ttl * 1000))
        self._note_ms = max(1, math.ceil(check_ttl("note_ttl", note_ttl) * 1000))
        self._where = _where(client)
        self._owned = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        note_ttl: float = DEFAULT_NOTE_TTL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RedisCoordinator:
        """A coordinator with a client of its own for ``url`` (``redis://``,
        ``rediss://`` or ``unix://``), connecting on first use.

        ``timeout`` bounds connecting and each answer (seconds); a connection that
        fails is tried twice more at once, then the step fails with
        :class:`~freedompay_async.CoordinationUnavailableError`.
        """
        _redis_errors()
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        seconds = check_ttl("timeout", timeout)
        try:
            client = Redis.from_url(
                url,
                socket_timeout=seconds,
                socket_connect_timeout=seconds,
                retry=Retry(NoBackoff(), 2),
            )
        except (ValueError, TypeError):
            raise ConfigurationError(f"not a Redis URL: {redacted_url(str(url))!r}") from None
        coordinator = cls(client, prefix=prefix, lease_ttl=lease_ttl, note_ttl=note_ttl)
        coordinator._where = redacted_url(url)
        coordinator._owned = True
        return coordinator

    def __repr__(self) -> str:
        return f"<RedisCoordinator {self._where} prefix={self._prefix!r}>"

    @property
    def lease_ttl(self) -> float:
        """Seconds a lease lives after it was taken or last renewed."""
        return self._lease_ttl

    @property
    def prefix(self) -> str:
        """The first part of every key written."""
        return self._prefix

    def key(self, payment_id: int, kind: str) -> str:
        """The key of one payment's ``start``, ``lease`` or ``notes``."""
        return f"{self._prefix}:{{{payment_id}}}:{kind}"

    async def _run(
        self, script: _Script, payment_id: int, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        """Run ``script``; a cancellation that arrived meanwhile is raised, even where
        redis-py swallowed it and answered (:func:`~.base.cancel_requests`)."""
        before = cancel_requests()
        try:
            result = await self._eval(script, keys, args)
        except (self._errors, OSError) as exc:
            if cancel_requests() > before:
                raise asyncio.CancelledError from exc
            raise self._unavailable(exc, payment_id) from exc
        if cancel_requests() > before:
            raise asyncio.CancelledError
        return result

    async def _eval(self, script: _Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        client = self._client
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except self._no_script:
            await client.script_load(script.text)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    def _unavailable(self, exc: BaseException, payment_id: int) -> CoordinationUnavailableError:
        return CoordinationUnavailableError(
            f"the payment coordinator (Redis at {self._where}) is unavailable "
            f"({type(exc).__name__}: {exc}); the step that needed it did not happen, "
            "and nothing falls back to in-process coordination",
            payment_id=payment_id,
        )

    async def start(self, payment_id: int, interval: float, token: str) -> float:
        """Claim an attempt's start now (0.0), or the seconds until one is free."""
        micros = max(1, math.ceil(interval * 1_000_000))
        keys = (self.key(payment_id, "start"),)
        wait = await self._run(_START, payment_id, keys, (micros, token))
        return int(wait) / 1_000_000

    async def finish(self, payment_id: int, token: str, elapsed: float) -> None:
        """Count the next start from the end of ``token``'s attempt, if still the latest."""
        micros = max(0, math.ceil(elapsed * 1_000_000))
        await self._run(_FINISH, payment_id, (self.key(payment_id, "start"),), (token, micros))

    async def acquire(self, payment_id: int, token: str) -> Claim:
        """Take (or renew) the lease for ``token`` unless another token holds it."""
        keys = (self.key(payment_id, "lease"), self.key(payment_id, "notes"))
        held, rest = await self._run(_ACQUIRE, payment_id, keys, (token, self._lease_ms))
        if not int(held):
            remaining = int(rest)
            return Claim(False, retry_in=(remaining if remaining > 0 else self._lease_ms) / 1000)
        flat = [_text(item) for item in rest]
        return Claim(True, notes=dict(zip(flat[::2], flat[1::2], strict=True)))

    async def renew(self, payment_id: int, token: str) -> bool:
        """Extend ``token``'s lease; False when it does not hold it."""
        keys = (self.key(payment_id, "lease"),)
        return bool(int(await self._run(_RENEW, payment_id, keys, (token, self._lease_ms))))

    async def release(self, payment_id: int, token: str) -> None:
        """Give up ``token``'s lease."""
        await self._run(_RELEASE, payment_id, (self.key(payment_id, "lease"),), (token,))

    async def note(self, payment_id: int, token: str, name: str, value: str | None) -> bool:
        """Set or remove a note while ``token`` holds the lease."""
        keys = (self.key(payment_id, "lease"), self.key(payment_id, "notes"))
        args: tuple[str | int, ...] = (
            (token, name, "0") if value is None else (token, name, "1", value, self._note_ms)
        )
        return bool(int(await self._run(_NOTE, payment_id, keys, args)))

    async def aclose(self) -> None:
        """Close the client :meth:`from_url` made (a borrowed one is left open)."""
        if self._owned:
            await self._client.aclose()
