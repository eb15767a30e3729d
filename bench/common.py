"""What the benchmarks share: the machine's description, throw-away databases, a bot in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

from bench.servers import free_port
from bot.settings import PROJECT_ROOT

POSTGRES_ADMIN_URL = os.environ.get("GUICHET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def machine() -> dict[str, object]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform()}


@asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="guichet-bench-") as directory:
        yield f"sqlite+aiosqlite:///{directory}/bench.db"


async def postgres_reachable() -> bool:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throw-away database on the PostgreSQL server the tests use, dropped afterwards."""
    name = f"guichet_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


class ServerProcess:
    """A server in its own process (the bot, or a baseline), and its peak memory."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._args = [*args, "--port", str(self.port)]
        self._env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
        self.process: asyncio.subprocess.Process | None = None
        self._stderr: IO[bytes] | None = None

    def errors(self) -> str:
        """What the server wrote to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    async def start(self, stderr: IO[bytes], ready_path: str = "/healthz", within: float = 30.0) -> None:
        # stderr is a file, not a pipe: a full pipe would block the server on its next log line.
        self._stderr = stderr
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *self._args, env=self._env, cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
        deadline = asyncio.get_running_loop().time() + within
        async with aiohttp.ClientSession() as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"server exited at start: {self.errors()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + ready_path) as response:
                        if response.status < 500:
                            return
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError("server did not start in time")
                await asyncio.sleep(0.1)

    def peak_rss_mb(self) -> float:
        """VmHWM: the process's peak resident memory so far."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crash would."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()


@asynccontextmanager
async def server_process(args: list[str], env: dict[str, str] | None = None, *, ready_path: str = "/healthz",
                         port: int | None = None) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(args, env, port)
    with tempfile.TemporaryFile() as stderr:
        try:
            await server.start(stderr, ready_path)
            yield server
        finally:
            await server.stop()
