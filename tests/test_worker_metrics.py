"""`guichet worker` as its own process answers /metrics and /healthz: the jobs it ran are counted there."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bot.domain.jobs import JobKind
from bot.settings import PROJECT_ROOT
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade_database
from storage.unit_of_work import UnitOfWorkFactory
from tests.harness import free_port
from tests.test_metrics import samples, value


async def _close_ended_due_now(database_url: str) -> None:
    await upgrade_database(database_url)
    engine = create_engine(database_url)
    try:
        async with UnitOfWorkFactory(create_session_factory(engine))() as uow:
            now = datetime.now(UTC)
            await uow.jobs.schedule(str(JobKind.CLOSE_ENDED), now - timedelta(seconds=1), {}, "close-now", now=now)
            await uow.commit()
    finally:
        await engine.dispose()


async def test_the_worker_serves_its_own_metrics(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/worker.db"
    await _close_ended_due_now(database_url)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "GUICHET_DATABASE_URL": database_url,
           "GUICHET_JOB_POLL_SECONDS": "0.2"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "worker", "--port", str(port),
                                                   env=env, stdout=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        figures: dict = {}
        for _ in range(300):  # until the job is done and counted (30 s at most)
            await asyncio.sleep(0.1)
            try:
                async with http.get(f"{url}/metrics") as response:
                    figures = samples(await response.text())
            except aiohttp.ClientError:
                continue
            if value(figures, "guichet_job_runs_total", kind="close_ended", result="done"):
                break
        assert value(figures, "guichet_job_runs_total", kind="close_ended", result="done") == 1
        assert value(figures, "guichet_database_up") == 1
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)
