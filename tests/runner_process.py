"""One job-runner process for tests/test_runner_processes.py: the real runner, the real notifier (local
mode: no credentials), against a shared PostgreSQL database, until SIGTERM.

    python -m tests.runner_process --database-url URL --agency PATH --lease SECONDS --batch N

It prints "ready" once running.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

from bot.jobs.runner import RunnerSettings
from bot.jobs.worker import running_jobs
from bot.settings import Settings
from bot.wiring import build_services


async def main(arguments: argparse.Namespace) -> None:
    settings = Settings(database_url=arguments.database_url, agency=arguments.agency, jobs="inline",
                        job_batch=arguments.batch, job_poll_seconds=0.2)
    wiring = build_services(settings)
    stop = asyncio.Event()
    for name in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(name, stop.set)
    try:
        async with running_jobs(wiring) as runner:
            runner.settings = RunnerSettings(batch=arguments.batch, concurrency=arguments.batch,
                                             lease=timedelta(seconds=arguments.lease), poll_seconds=0.2)
            print("ready", flush=True)
            await stop.wait()
    finally:
        await wiring.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--agency", required=True)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
