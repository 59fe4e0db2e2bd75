"""Fixtures of the fleet tests: a real Redis, a key prefix of each test's own, coordinators."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio

from freedompay_async import RedisCoordinator

from .redis_server import running_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this test run's own (one per xdist worker), no persistence."""
    workdir: Path = tmp_path_factory.mktemp("redis")
    with running_redis(workdir) as server:
        yield server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses, so tests share the server and nothing else."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client, to look at (and tamper with) what the coordinators keep."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def coordinator(redis_url: str, prefix: str) -> AsyncIterator[RedisCoordinator]:
    """A RedisCoordinator on the test's server and prefix, 1 s leases."""
    made = RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=1.0)
    try:
        yield made
    finally:
        await made.aclose()
