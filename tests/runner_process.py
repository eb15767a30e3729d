"""One job-runner process for tests/test_runner_processes.py: the real runner, the real notifier (local
mode: no credentials), against a shared PostgreSQL database, until SIGTERM.

    python -m tests.runner_process --database-url URL --agency PATH --lease SECONDS --batch N [--hang-after K]

It prints "ready" once running, then "ran <job id> <attempt>" for each reminder it has handled, so the test
knows which process did what. `--hang-after K`: after K reminders, every reminder it starts hangs (a process
stuck mid-batch), so that it surely holds claimed jobs when the test kills it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Mapping
from datetime import timedelta

from bot.domain.jobs import Job, JobKind
from bot.jobs import worker
from bot.jobs.runner import JobHandler, Result, RunnerSettings
from bot.services.container import Services
from bot.settings import Settings
from bot.wiring import UseCases, build_services


def _reporting(hang_after: int | None):  # type: ignore[no-untyped-def]
    """worker.job_handlers, with the reminder handler reporting each job it ran (and hanging when asked)."""
    build = worker.job_handlers
    started = 0

    def job_handlers(services: Services, use_cases: UseCases | None = None) -> Mapping[str, JobHandler]:
        handlers = dict(build(services, use_cases))
        reminder = handlers[str(JobKind.REMINDER)]

        async def reporting(job: Job) -> Result:
            nonlocal started
            started += 1
            if hang_after is not None and started > hang_after:
                await asyncio.Event().wait()
            result = await reminder(job)
            print(f"ran {job.id} {job.attempts}", flush=True)
            return result

        handlers[str(JobKind.REMINDER)] = reporting
        return handlers

    return job_handlers


async def main(arguments: argparse.Namespace) -> None:
    settings = Settings(database_url=arguments.database_url, agency=arguments.agency, jobs="inline",
                        job_batch=arguments.batch, job_poll_seconds=0.2)
    worker.job_handlers = _reporting(arguments.hang_after)
    wiring = build_services(settings)
    stop = asyncio.Event()
    for name in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(name, stop.set)
    try:
        async with worker.running_jobs(wiring) as runner:
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
    parser.add_argument("--hang-after", type=int)
    asyncio.run(main(parser.parse_args()))
