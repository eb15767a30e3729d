"""`guichet worker` and `guichet jobs list|retry`: the job runner as its own process, and its operator's view.

`guichet worker` also answers /metrics and /healthz on GUICHET_PORT (or `--port`): the figures of what it
runs (jobs, proactive messages, Graph calls), under the same token as the bot's (bot.metrics).

`guichet jobs list --failed` shows what an operator may want to retry: each job with its kind, due
time, attempts and last error (an error class and, for Teams, its code: never message text or names),
then the totals per status and outcome and how many messages for the staff reached nobody.
Exit codes: 0 done, 1 nothing to retry under that id, 2 the runner cannot start here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from bot.domain.jobs import JobResult, JobStatus
from bot.jobs.lock import RunnerLockBusy
from bot.jobs.worker import running_jobs
from bot.settings import Settings
from bot.wiring import Wiring, build_services


@contextlib.asynccontextmanager
async def _metrics_endpoint(wiring: Wiring, port: int) -> AsyncIterator[None]:
    """The worker's /metrics (its job runs, proactive messages, Graph calls) and /healthz, on `port`.
    A port already taken (`guichet serve` on the same machine) costs the endpoint, not the worker."""
    from aiohttp import web

    from bot.app import healthz
    from bot.metrics import metrics_page

    services = wiring.services
    app = web.Application()
    app.router.add_get("/metrics", metrics_page(wiring.settings, wiring.metrics, wiring.engine, services.uow,
                                                services.clock))
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, wiring.settings.host, port).start()
    except OSError as error:
        print(f"guichet worker: no /metrics on port {port} ({error.strerror}); give another with --port",
              file=sys.stderr)
    try:
        yield
    finally:
        await runner.cleanup()


async def _work(settings: Settings, port: int | None = None) -> int:
    wiring = build_services(settings)
    try:
        async with running_jobs(wiring), _metrics_endpoint(wiring, port or settings.port):
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for name in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(name, stop.set)
            print(f"guichet worker running the jobs of {wiring.services.agency.id}; stop with Ctrl-C", flush=True)
            await stop.wait()
    except RunnerLockBusy as busy:
        print(f"guichet: {busy}", file=sys.stderr)
        return 2
    finally:
        await wiring.close()
    return 0


def _worker_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_work(settings, args.port))


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    wiring = build_services(settings)
    try:
        services = wiring.services
        async with services.uow.read() as uow:
            jobs = await uow.jobs.listing(status=JobStatus.FAILED.value if args.failed else args.status,
                                          kind=args.kind, limit=args.limit)
            counts = await uow.jobs.outcome_counts()
        zone = services.agency.zone
        print(f"{'id':>8}  {'kind':<17} {'status':<9} {'due (local)':<16} {'tries':>5}  outcome / last error")
        for job in jobs:
            detail = job.outcome or ""
            if job.last_error:
                detail = f"{detail} {job.last_error}".strip()
            due = job.run_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            print(f"{job.id:>8}  {job.kind:<17} {job.status:<9} {due:<16} {job.attempts:>5}  {detail}")
        if not jobs:
            print("(none)")
        print()
        print("totals: " + ", ".join(f"{status}{'/' + outcome if outcome else ''} {count}"
                                     for (status, outcome), count in sorted(counts.items(), key=_key)))
        # Counted apart: each is a counselor who never heard of a client (see the runner's error log).
        lost = sum(count for (_status, outcome), count in counts.items() if outcome == JobResult.STAFF_MESSAGE_LOST)
        print(f"staff messages that reached nobody: {lost}")
        return 0
    finally:
        await wiring.close()


def _key(item: tuple[tuple[str, str | None], int]) -> tuple[str, str]:
    (status, outcome), _count = item
    return status, outcome or ""


async def _retry(settings: Settings, args: argparse.Namespace) -> int:
    wiring = build_services(settings)
    try:
        services = wiring.services
        async with services.uow() as uow:
            retried = await uow.jobs.retry(args.id, services.clock.now())
            await uow.commit()
    finally:
        await wiring.close()
    if not retried:
        print(f"guichet: job {args.id} is not a failed job", file=sys.stderr)
        return 1
    print(f"job {args.id} is due again now")
    return 0


def _jobs_command(settings: Settings, args: argparse.Namespace) -> int:
    work = _list if args.jobs_command == "list" else _retry
    return asyncio.run(work(settings, args))


def add_job_commands(sub: Any) -> None:
    """Add `worker` and `jobs` to the `guichet` command's subparsers."""
    worker = sub.add_parser("worker", help="run the jobs (reminders, retention) in this process")
    worker.add_argument("--port", type=int, help="port of its /metrics and /healthz (default GUICHET_PORT)")
    # Refused in production with unsafe settings, as `guichet serve` is (bot.production).
    worker.set_defaults(handler=_worker_command, production_checked=True)

    jobs = sub.add_parser("jobs", help="see and retry the bot's jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="jobs, newest due first, with totals per status and outcome")
    listing.add_argument("--failed", action="store_true", help="only jobs that failed for good")
    listing.add_argument("--status", choices=[status.value for status in JobStatus])
    listing.add_argument("--kind", help="only jobs of this kind (reminder, retention...)")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_jobs_command)
    retry = jobs_sub.add_parser("retry", help="run a failed job again now")
    retry.add_argument("id", type=int)
    retry.set_defaults(handler=_jobs_command)
