"""One worker of the fleet benchmark: ``python -m benchmarks.fleet_worker CONFIG``.

CONFIG (JSON): ``base_url``, ``merchant_id``, ``secret_key``, ``redis`` (a URL or
null), ``prefix``, ``ids`` (payment ids to cancel) and ``concurrency``. Prints
``ready``, waits for a line on stdin, runs ``cancel_many`` over its ids and prints one
JSON line: ``cancels``, ``settled`` (cancelled or already cancelled), ``seconds``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from freedompay_async import AsyncSession, Credentials, Limits, RedisCoordinator


async def main(config: dict[str, Any]) -> None:
    coordinator = None
    if config["redis"]:
        coordinator = RedisCoordinator.from_url(config["redis"], prefix=config["prefix"])
    credentials = Credentials(config["merchant_id"], config["secret_key"])
    concurrency = int(config["concurrency"])
    async with AsyncSession(
        credentials,
        base_url=config["base_url"],
        limits=Limits(max_connections=concurrency),
        coordinator=coordinator,
    ) as fp:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = time.perf_counter()
        settled = 0
        async for outcome in fp.cancel_many(config["ids"], concurrency=concurrency):
            settled += outcome.state.settled
        seconds = time.perf_counter() - start
    print(json.dumps({"cancels": len(config["ids"]), "settled": settled, "seconds": seconds}))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
