"""Helpers of the operator-safety tests: counting servers, streamed subprocesses."""

from __future__ import annotations

import asyncio
import socket
import sys

from aiohttp import web

from freedompay_async.sandbox import SandboxGateway

from .test_cli import Run, cli_env


class Counted:
    """A loopback server that answers every request the same way and counts them."""

    def __init__(self, status: int, body: bytes, content_type: str = "text/html") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.requests = 0

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.requests += 1
            await request.read()
            return web.Response(status=self.status, body=self.body, content_type=self.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


def closed_port() -> socket.socket:
    """A bound, never listening socket: connecting to its port is refused, and no other
    process can take the port while the test holds it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class Streaming:
    """A CLI subprocess whose stderr is read as it comes (to wait for a message)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.err_lines: list[str] = []
        self._reader = asyncio.create_task(self._read())
        self._out = asyncio.create_task(self._read_out())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.err_lines.append(line.decode())

    async def _read_out(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read()

    async def wait_err(self, text: str) -> None:
        async with asyncio.timeout(30):
            while not any(text in line for line in self.err_lines):
                assert self.proc.returncode is None, "".join(self.err_lines)
                await asyncio.sleep(0.02)

    async def finish(self) -> Run:
        async with asyncio.timeout(60):
            out = await self._out
            await self._reader
            rc = await self.proc.wait()
        return Run(rc, out.decode(), "".join(self.err_lines))


async def start_streaming(*args: str, preexec: object = None) -> Streaming:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "freedompay_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        preexec_fn=preexec,  # type: ignore[arg-type]
    )
    return Streaming(proc)


async def wait_requests(gw: SandboxGateway, count: int, run: Streaming) -> None:
    async with asyncio.timeout(30):
        while gw.requests_total < count:
            assert run.proc.returncode is None, "".join(run.err_lines)
            await asyncio.sleep(0.02)
