"""RedisCoordinator itself: its keys, their expiry, and Redis being unavailable."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio

from freedompay_async import (
    ConfigurationError,
    CoordinationUnavailableError,
    FreedomPayError,
    MemoryCoordinator,
    RedisCoordinator,
)
from freedompay_async.coordination import new_token


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


async def test_every_key_expires_by_itself(
    coordinator: RedisCoordinator, redis_client: redis.asyncio.Redis, prefix: str
) -> None:
    token = new_token()
    await coordinator.start(5, 0.3, token)
    await coordinator.acquire(5, token)
    await coordinator.note(5, token, "clearing:all", "{}")
    start, lease, notes = (f"{prefix}:{{5}}:{kind}" for kind in ("start", "lease", "notes"))
    assert 0 < await redis_client.pttl(start) <= 301
    assert 0 < await redis_client.pttl(lease) <= 1000
    assert 0 < await redis_client.pttl(notes) <= 86_400_000
    assert await redis_client.hget(lease.replace("lease", "notes"), "clearing:all") == "{}"
    await coordinator.finish(5, token, 0.2)  # the start now counts from 0.2 s after it
    assert 300 < await redis_client.pttl(start) <= 501
    await asyncio.sleep(0.55)
    assert await redis_client.exists(start) == 0  # gone a spacing interval after its end


async def test_scripts_are_loaded_again_after_a_flush(
    coordinator: RedisCoordinator, redis_client: redis.asyncio.Redis
) -> None:
    assert await coordinator.start(6, 0.1, new_token()) == 0.0
    await redis_client.script_flush()
    assert await coordinator.start(6, 0.1, new_token()) > 0  # the same rules, reloaded


async def test_redis_unavailable_is_a_typed_error_that_names_the_server() -> None:
    port = _dead_port()
    coordinator = RedisCoordinator.from_url(
        f"redis://fleet:hunter2-secret@127.0.0.1:{port}/0", timeout=0.5
    )
    assert "hunter2" not in repr(coordinator) and f"127.0.0.1:{port}" in repr(coordinator)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: coordinator.start(1, 1.5, "t"),
        lambda: coordinator.finish(1, "t", 0.1),
        lambda: coordinator.acquire(1, "t"),
        lambda: coordinator.renew(1, "t"),
        lambda: coordinator.release(1, "t"),
        lambda: coordinator.note(1, "t", "n", "v"),
    ]
    try:
        for call in calls:
            with pytest.raises(CoordinationUnavailableError) as caught:
                await call()
            error = caught.value
            assert isinstance(error, FreedomPayError) and error.payment_id == 1
            assert f"Redis at redis://fleet:***@127.0.0.1:{port}/0" in str(error)
            assert "hunter2" not in str(error) and not error.outcome_unknown
    finally:
        await coordinator.aclose()


def test_options_are_checked_where_they_are_given() -> None:
    with pytest.raises(ConfigurationError, match="not a Redis URL"):
        RedisCoordinator.from_url("http://user:secret@host/0")
    for bad in ({"prefix": ""}, {"prefix": "a{b"}, {"lease_ttl": 0}, {"note_ttl": -1},
                {"timeout": True}):  # fmt: skip
        with pytest.raises(ConfigurationError):
            RedisCoordinator.from_url("redis://127.0.0.1:1/0", **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MemoryCoordinator(lease_ttl=float("nan"))


async def test_a_borrowed_client_stays_open(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        coordinator = RedisCoordinator(client, prefix=prefix)
        assert (await coordinator.acquire(3, "t")).held
        await coordinator.aclose()
        assert await client.ping() is True
        assert "127.0.0.1" in repr(coordinator)
    finally:
        await client.aclose()


async def test_the_memory_coordinator_forgets_what_expired() -> None:
    now = [0.0]
    coordinator = MemoryCoordinator(lease_ttl=1.0, clock=lambda: now[0])
    for pid in range(100):
        await coordinator.start(pid, 0.5, "t")
        await coordinator.acquire(pid, "t")
    assert len(coordinator) == 100
    now[0] = 5.0
    await coordinator.start(1000, 0.5, "t")  # a sweep runs at most once a second
    assert len(coordinator) == 1
