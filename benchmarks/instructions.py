"""Instructions per request, counted by valgrind's callgrind: a load-independent measure.

    python -m benchmarks.instructions                     # library, floor, baseline
    python -m benchmarks.instructions library floor --loop uvloop

Wall-clock and CPU-time figures move with whatever else the machine runs; the number
of instructions a client executes per request hardly does, so two variants of the
library can be compared on a busy machine. Each contender runs in a fresh process under
``valgrind --tool=callgrind`` twice (``--small`` and ``--large`` requests against the
canned server, which runs uninstrumented); the difference divided by the difference in
requests cancels start-up, imports and warm-up. Requires valgrind; slow (minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from freedompay_async import RetryPolicy

from ._common import Contender, baseline, floor, library_cancel, library_cancel_many
from .canned_server import CannedServer

CONTENDERS: dict[str, Contender] = {
    "library": library_cancel("library: cancel(), default middleware", RetryPolicy),
    "library-no-retry": library_cancel("library: RetryPolicy.none()", RetryPolicy.none),
    "batch": library_cancel_many("library: cancel_many(), spacing 1.5 s", RetryPolicy),
    "batch-no-spacing": library_cancel_many(
        "library: cancel_many(), spacing=None", RetryPolicy, spacing=None
    ),
    "baseline": baseline,
    "floor": floor,
}


class _Unmetered:
    """Stands in for Meter: no clocks, no latency list (the same work for everyone)."""

    latencies = None

    def start(self) -> None:
        pass

    def stop(self, name: str, requests: int) -> int:
        return requests


def _child(url: str, name: str, n: int, concurrency: int, loop: str) -> None:
    contender = CONTENDERS[name]
    # The warm-up id is not among the timed ones, so per-payment spacing never waits.
    coro = contender(url, range(n + 1, n + 2), range(1, n + 1), concurrency, _Unmetered())  # type: ignore[arg-type]
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


def _count(url: str, name: str, n: int, concurrency: int, loop: str) -> int:
    fd, out = tempfile.mkstemp(suffix=".callgrind")
    os.close(fd)
    try:
        args = ["--child", url, name, str(n), str(concurrency), loop]
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-m", "benchmarks.instructions", *args],
            check=True, capture_output=True,
        )  # fmt: skip
        with open(out) as f:
            found = re.search(r"^summary: (\d+)", f.read(), re.MULTILINE)
    finally:
        os.unlink(out)
    if found is None:
        raise SystemExit("no instruction summary in the callgrind output")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        url, name, n, concurrency, loop = argv[1:6]
        _child(url, name, int(n), int(concurrency), loop)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contenders", nargs="*", help=f"any of {', '.join(CONTENDERS)}")
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=2500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    chosen = args.contenders or ["library", "floor", "baseline"]
    unknown = set(chosen) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    counts: dict[str, float] = {}
    with CannedServer(prefill=args.large + 1) as server:
        for name in chosen:
            low = _count(server.url, name, args.small, args.concurrency, args.loop)
            high = _count(server.url, name, args.large, args.concurrency, args.loop)
            counts[name] = (high - low) / (args.large - args.small)
            print(
                f"[{args.loop}] {name:<18} {counts[name]:>10,.0f} instructions/request", flush=True
            )
    if "floor" in counts:
        for name, value in counts.items():
            if name != "floor":
                own = value - counts["floor"]
                ratio = counts["floor"] / value
                print(f"  {name:<18} floor/{name} = {ratio:.2f}, own share {own:+,.0f}/request")
    if "library" in counts and "baseline" in counts:
        print(f"  baseline/library = {counts['baseline'] / counts['library']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
