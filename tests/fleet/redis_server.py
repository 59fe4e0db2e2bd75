"""A real ``redis-server`` for the fleet tests: started on a free loopback port, no persistence.

Debian's ``redis-server`` package provides it (``apt-get install redis-server``; CI
installs it when missing). Without it the tests that need it are skipped and say why,
unless ``FREEDOMPAY_REQUIRE_REDIS=1`` (set by CI), which makes a missing server a
failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: How long a starting server may take to answer PING (seconds).
_START_WITHIN = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str:
    """The path of ``redis-server``, or skip (fail when CI requires it)."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("FREEDOMPAY_REQUIRE_REDIS") == "1":
            pytest.fail(message + "; FREEDOMPAY_REQUIRE_REDIS=1 requires it")
        pytest.skip(message)
    return found


def _start(binary: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    port = _free_port()
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + _START_WITHIN
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # the port was taken meanwhile, say
            return None
        if _answers(port):
            return proc, port
        time.sleep(0.02)
    _stop(proc)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


class RedisProcess:
    """A running redis-server: its ``url``; :meth:`stop` ends it (idempotent)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self._proc = proc
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self._proc.returncode is None:
            _stop(self._proc)


@contextlib.contextmanager
def running_redis(workdir: Path) -> Iterator[RedisProcess]:
    """Run a redis-server until the block ends (or its ``stop()``)."""
    binary = redis_server_binary()
    for _ in range(3):
        started = _start(binary, workdir)
        if started is not None:
            break
    else:
        pytest.fail("redis-server did not start on a free loopback port")
    server = RedisProcess(*started)
    try:
        yield server
    finally:
        server.stop()
