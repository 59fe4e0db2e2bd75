"""A minimal keep-alive HTTP/1.1 server answering every POST with a signed cancel reply.

Runs in its own process (``CannedServer`` starts ``python -m benchmarks.canned_server``
and reads the bound port from its first line of output), so the client being measured
has a core to itself. Requests are parsed incrementally from a per-connection buffer:
partial reads and pipelined requests are both handled, ``Content-Length`` and chunked
bodies alike.

Every reply is a real, signed ``/g2g/cancel`` success for the ``pg_payment_id`` found in
the request body (a bytes search, no multipart parsing), signed with
``freedompay_async.Md5Signer`` for script ``cancel``: the client verifies it exactly as
it would a gateway reply, including that the id matches the one it asked for. Signed
replies are cached per id (the cache is cleared when it grows past ``--cache`` entries),
so after the first pass over an id range the server does no hashing at all.

The server exits when its standard input closes (the parent died or is done) or after
``--max-seconds``, whichever comes first: it can never outlive a benchmark for long.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from freedompay_async import Md5Signer, signed_response

SCRIPT = "cancel"
DEFAULT_SECRET = "benchmark-secret-key"
DEFAULT_MERCHANT_ID = 545_454

_PID_MARK = b'name="pg_payment_id"\r\n\r\n'
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\nbad request"
)


class ReplyBook:
    """Signed reply bytes (status line, headers and XML body) per payment id, cached."""

    def __init__(self, secret_key: str, max_entries: int) -> None:
        self._signer = Md5Signer(secret_key)
        self._max = max_entries
        self._cache: dict[bytes, bytes] = {}
        self.signed = 0

    def reply(self, pid: bytes) -> bytes:
        """The full HTTP response for a cancel of payment ``pid`` (ASCII digits)."""
        cached = self._cache.get(pid)
        if cached is not None:
            return cached
        if len(self._cache) >= self._max:
            self._cache.clear()
        built = self._build(pid.decode("ascii"))
        self._cache[pid] = built
        return built

    def _build(self, pid: str) -> bytes:
        fields = [
            ("pg_status", "ok"),
            ("pg_payment_id", pid),
            ("pg_payment_revoke_id", str(int(pid) + 1_000_000_000)),
            ("pg_revoke_status", "success"),
        ]
        body = signed_response(SCRIPT, self._signer, fields, salt="cannedsalt" + pid[-6:])
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/xml; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        ).encode("ascii")
        self.signed += 1
        return head + body


def _chunked_body(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``start``: (body, end offset) or None if partial."""
    parts: list[bytes] = []
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0].strip() or b"0", 16)
        pos = line_end + 2
        if size == 0:
            # Trailers (normally none) end with an empty line.
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def _payment_id(body: bytes) -> bytes | None:
    start = body.find(_PID_MARK)
    if start < 0:
        return None
    start += len(_PID_MARK)
    end = body.find(b"\r\n", start)
    pid = body[start:end] if end >= 0 else b""
    return pid if pid.isdigit() and 0 < len(pid) <= 20 else None


class CannedProtocol(asyncio.Protocol):
    """One keep-alive connection: buffer, split requests, answer each with canned bytes."""

    def __init__(self, book: ReplyBook, stats: dict[str, int]) -> None:
        self._book = book
        self._stats = stats
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._stats["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        buf = self._buf
        buf += data
        out: list[bytes] = []
        close = False
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                if len(buf) > _MAX_HEAD:
                    out.append(_BAD_REQUEST)
                    close = True
                break
            head = bytes(buf[:head_end]).lower()
            body_start = head_end + 4
            if b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                decoded = _chunked_body(buf, body_start)
                if decoded is None:
                    break
                body, consumed = decoded
            else:
                length = 0
                at = head.find(b"\r\ncontent-length:")
                if at >= 0:
                    value_end = head.find(b"\r\n", at + 2)
                    raw = head[at + 17 : value_end if value_end >= 0 else len(head)].strip()
                    if not raw.isdigit() or int(raw) > _MAX_BODY:
                        out.append(_BAD_REQUEST)
                        close = True
                        break
                    length = int(raw)
                consumed = body_start + length
                if len(buf) < consumed:
                    break
                body = bytes(buf[body_start:consumed])
            del buf[:consumed]
            pid = _payment_id(body)
            if pid is None:
                out.append(_BAD_REQUEST)
                close = True
                break
            out.append(self._book.reply(pid))
            self._stats["requests"] += 1
            if b"\r\nconnection: close" in head:
                close = True
                break
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            transport.close()


async def serve(
    host: str, port: int, secret: str, cache: int, prefill: int, max_seconds: float
) -> None:
    """Serve until stdin closes or ``max_seconds`` pass; print ``PORT <n>`` once bound.

    ``prefill`` signs the replies for payment ids ``1..prefill`` before binding, so a
    benchmark over that id range never waits for the server to hash.
    """
    loop = asyncio.get_running_loop()
    book = ReplyBook(secret, cache)
    for pid in range(1, min(prefill, cache) + 1):
        book.reply(str(pid).encode("ascii"))
    stats = {"connections": 0, "requests": 0}
    server = await loop.create_server(
        lambda: CannedProtocol(book, stats), host, port, backlog=1024, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            stop.set()

    stdin_watched = True
    try:
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    except (OSError, ValueError, NotImplementedError):
        stdin_watched = False
    try:
        async with server:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_seconds):
                    await stop.wait()
    finally:
        if stdin_watched:
            loop.remove_reader(sys.stdin.fileno())
    print(
        f"served {stats['requests']} requests on {stats['connections']} connections, "
        f"signed {book.signed} replies",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--cache", type=int, default=300_000, help="max cached replies")
    parser.add_argument("--prefill", type=int, default=0, help="pre-sign ids 1..N")
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the canned server binds to loopback only")
    asyncio.run(
        serve(args.host, args.port, args.secret, args.cache, args.prefill, args.max_seconds)
    )


class CannedServer:
    """Start the canned server in a child process; ``url`` once entered, stopped on exit.

    ``cpu_seconds()`` is the child's user+system CPU time so far (Linux ``/proc``), to
    check that the server is not the bottleneck.
    """

    def __init__(
        self,
        *,
        secret: str = DEFAULT_SECRET,
        cache: int = 300_000,
        prefill: int = 0,
        max_seconds: float = 1800.0,
    ) -> None:
        self._args = [
            "--secret",
            secret,
            "--cache",
            str(cache),
            "--prefill",
            str(prefill),
            "--max-seconds",
            str(max_seconds),
        ]
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> Self:
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.canned_server", *self._args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=root,
            env=env,
        )
        assert self._proc.stdout is not None
        # Pre-signing a few hundred thousand replies takes seconds; never wait forever.
        ready, _, _ = select.select([self._proc.stdout], [], [], 120)
        line = self._proc.stdout.readline() if ready else b""
        if not line.startswith(b"PORT "):
            self.__exit__(None, None, None)
            raise RuntimeError("canned server did not start")
        self.port = int(line.split()[1])
        return self

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds the server process has used, or None if unknown."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


if __name__ == "__main__":
    main()
