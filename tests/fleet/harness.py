"""Running fleet workers (``worker.py``) as real subprocesses against a served sandbox."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from freedompay_async.sandbox import LedgerEntry

from ..helpers import MERCHANT, SECRET

ROOT = Path(__file__).resolve().parents[2]
#: Fast settings: short attempts, a short settle window, short backoff.
RETRY = {"attempts": 3, "attempt_timeout": 0.6, "deadline": 20.0, "wait_initial": 0.05,
         "wait_max": 0.2}  # fmt: skip
SETTLE = {"window": 1.5, "poll_initial": 0.1, "poll_factor": 1.5, "poll_max": 0.3}


def config(
    base_url: str,
    jobs: Sequence[dict[str, Any]],
    *,
    redis_url: str | None,
    prefix: str,
    spacing: float,
    lease_ttl: float = 2.0,
) -> dict[str, Any]:
    """A worker's configuration (see ``worker.py``)."""
    return {
        "base_url": base_url, "merchant_id": MERCHANT, "redis": redis_url, "prefix": prefix,
        "lease_ttl": lease_ttl, "spacing": spacing, "retry": RETRY, "settle": SETTLE,
        "jobs": list(jobs),
    }  # fmt: skip


class Worker:
    """One worker process: started, waiting for its go."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, worker_config: dict[str, Any]) -> Worker:
        env = dict(os.environ, FREEDOMPAY_SECRET_KEY=SECRET)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fleet.worker", json.dumps(worker_config),
            cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            _, err = await proc.communicate()
            raise AssertionError(f"worker did not start: {line!r} {err.decode()[-2000:]}")
        return cls(proc)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def reports(self) -> list[dict[str, Any]]:
        """Wait for the worker to finish; its job reports (it must exit 0)."""
        out, err = await self.proc.communicate()
        assert self.proc.returncode == 0, err.decode()[-3000:]
        return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the worker."""
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.communicate()
        assert self.proc.returncode == -signal.SIGKILL


async def run_fleet(configs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start every worker, let them go at once, and gather every job report."""
    workers = await asyncio.gather(*(Worker.start(c) for c in configs))
    for worker in workers:
        worker.go()
    reports = await asyncio.gather(*(w.reports() for w in workers))
    return [report for found in reports for report in found]


def closest_gap(entry: LedgerEntry, since: float = float("-inf")) -> float:
    """The shortest time between two requests about the payment that arrived at the
    gateway from ``since`` on (its clock)."""
    times = [at for at, _ in entry.arrivals if at >= since]
    return min((b - a for a, b in itertools.pairwise(times)), default=float("inf"))
