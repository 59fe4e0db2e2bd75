"""A fleet worker for the multi-process tests: ``python -m tests.fleet.worker CONFIG``.

CONFIG is a JSON object: ``base_url``, ``merchant_id``, ``redis`` (a URL, or null for a
worker without a coordinator), ``prefix``, ``lease_ttl``, ``spacing``, ``retry`` and
``settle`` (keyword arguments of RetryPolicy and SettlePolicy) and ``jobs``, each
``{"op": "cancel" | "clear" | "refund", "payment_id": N, "amount": "100.00"}``. The
secret key comes from ``FREEDOMPAY_SECRET_KEY`` (never on the command line).

The worker builds its session and coordinator, prints ``ready``, waits for a line on
stdin (so that every worker starts at once), runs all its jobs concurrently, and prints
one JSON line per job: ``job``, ``op``, ``payment_id``, ``outcome`` (``ok`` or the
error's class name), ``confirmed_by_status``, ``outcome_unknown``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from typing import Any

from freedompay_async import (
    AsyncSession,
    Credentials,
    FreedomPayError,
    PaymentSpacing,
    RedisCoordinator,
    RetryPolicy,
    SettlePolicy,
)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _job(fp: AsyncSession, number: int, job: dict[str, Any]) -> dict[str, Any]:
    op, pid = job["op"], int(job["payment_id"])
    report: dict[str, Any] = {"job": number, "op": op, "payment_id": pid}
    try:
        if op == "cancel":
            result: Any = await fp.cancel(pid)
        elif op == "clear":
            result = await fp.clear(pid)
        else:
            result = await fp.refund(pid, Decimal(job["amount"]))
    except FreedomPayError as exc:
        report.update(outcome=type(exc).__name__, outcome_unknown=exc.outcome_unknown,
                      confirmed_by_status=False, message=str(exc))  # fmt: skip
    else:
        report.update(outcome="ok", outcome_unknown=False,
                      confirmed_by_status=bool(result.confirmed_by_status))  # fmt: skip
    return report


async def main(config: dict[str, Any]) -> None:
    credentials = Credentials(int(config["merchant_id"]), os.environ["FREEDOMPAY_SECRET_KEY"])
    coordinator = None
    if config.get("redis"):
        coordinator = RedisCoordinator.from_url(
            config["redis"], prefix=config["prefix"], lease_ttl=float(config["lease_ttl"])
        )
    async with AsyncSession(
        credentials,
        base_url=config["base_url"],
        retry=RetryPolicy(**config["retry"]),
        settle=SettlePolicy(**config["settle"]),
        spacing=PaymentSpacing(float(config["spacing"])),
        coordinator=coordinator,
        log_attempts=False,
    ) as fp:
        _say("ready")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        jobs = config["jobs"]
        reports = await asyncio.gather(*(_job(fp, n, job) for n, job in enumerate(jobs)))
    for report in reports:
        _say(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
