"""The process's Prometheus metrics (prometheus-client) and the `/metrics` endpoint that shows them.

Each `Metrics` has its own CollectorRegistry, built once per process in bot.wiring and handed to what
records into it: two apps in one process (the tests) never add up each other's figures.

What is measured, and where:
- turns and their latency by kind (bot.app's /api/messages handler), failed turns (the adapter's
  turn-error handler), activities refused before any turn (400, 401, 415);
- every HTTP exchange with the Bot Connector by path (reply or proactive) and status (bot.connector_http),
  so sends, 429s and 403s;
- Microsoft Graph calls by operation and status, and their latency (a middleware in bot.integrations.graph_client);
- job runs by kind and result (bot.jobs.runner), and at each scrape the jobs due, running, late, failed
  and dropped as late, read from the database (the same figures on every replica: they are the queue's);
- the database pool's connections in use, and whether the database answered the scrape's query.

Labels hold kinds, statuses and operation names from our own code, never an id, a name or any text a
person typed; Graph URLs are reduced to their fixed segments (`graph_operation`).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.jobs import JobKind
from bot.services.ports import Clock, UnitOfWorkFactory
from bot.settings import Settings

log = logging.getLogger(__name__)

# A pending job this long past its due time means the runner is behind or not running.
LATE_AFTER = timedelta(minutes=2)
JOB_STATES = ("due", "running", "late", "failed", "dropped_late")
TURN_KINDS = ("message", "card_action", "invoke", "other")
# Turns answer in milliseconds; Teams gives up on a card action after about 15 s.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
GRAPH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def turn_kind(activity: Any) -> str:
    """message, card_action (Action.Execute or Action.Submit), invoke (any other), or other (conversation
    and installation updates)."""
    kind = getattr(activity, "type", None)
    if kind == "message":
        return "card_action" if isinstance(getattr(activity, "value", None), dict) else "message"
    if kind == "invoke":
        return "card_action" if getattr(activity, "name", None) == "adaptiveCard/action" else "invoke"
    return "other"


# Graph path segments kept in an operation's name; any other segment (a user, event or meeting id, an
# e-mail address) becomes {id}. Only these appear in labels.
_GRAPH_SEGMENTS = frozenset({
    "users", "events", "cancel", "onlineMeetings", "calendar", "getSchedule", "calendarView", "teamwork",
    "installedApps", "appCatalogs", "teamsApps", "me", "chats", "organization", "groups", "members",
})
_VERSION = re.compile(r"^(v1\.0|beta)$")


def graph_operation(method: str, path: str) -> str:
    """`POST /users/{id}/events/{id}/cancel` for `POST /v1.0/users/<guid>/events/<id>/cancel`."""
    parts = [part for part in path.split("/") if part]
    if parts and _VERSION.match(parts[0]):
        parts = parts[1:]
    named = [part if part in _GRAPH_SEGMENTS else "{id}" for part in parts]
    return f"{method.upper()} /{'/'.join(named)}"


class Metrics:
    """The metrics of one process (names per Prometheus' conventions: base units, `_total` counters)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter("guichet_turns", "Activities handled, by kind", ["kind"], registry=registry)
        self.turn_duration = Histogram(
            "guichet_turn_duration_seconds", "Time to answer an activity on /api/messages, by kind", ["kind"],
            buckets=TURN_BUCKETS, registry=registry)
        self.turn_errors = Counter("guichet_turn_errors", "Turns that failed (the person got the apology), by kind",
                                   ["kind"], registry=registry)
        self.refused = Counter("guichet_activities_refused",
                               "Requests to /api/messages refused before any turn, by HTTP status", ["status"],
                               registry=registry)
        self.connector_requests = Counter(
            "guichet_connector_requests", "HTTP exchanges with the Bot Connector, by path (reply, proactive) "
            "and status ('error': no answer)", ["path", "status"], registry=registry)
        self.graph_requests = Counter("guichet_graph_requests", "Microsoft Graph calls, by operation and status "
                                      "('error': no answer)", ["operation", "status"], registry=registry)
        self.graph_duration = Histogram("guichet_graph_request_duration_seconds",
                                        "Microsoft Graph call time (retries included), by operation",
                                        ["operation"], buckets=GRAPH_BUCKETS, registry=registry)
        self.job_runs = Counter("guichet_job_runs", "Job runs in this process, by kind and result (the outcome "
                                "of a finished job, 'retried' or 'failed')", ["kind", "result"], registry=registry)
        self.jobs = Gauge("guichet_jobs", "Jobs in the queue, by kind and state (due, running, late: due for "
                          f"over {int(LATE_AFTER.total_seconds())} s, failed for good, dropped_late)",
                          ["kind", "state"], registry=registry)
        self.database_up = Gauge("guichet_database_up", "1 when the database answered this scrape's query",
                                 registry=registry)
        self.database_in_use = Gauge("guichet_database_connections_in_use",
                                     "Database connections checked out of the pool", registry=registry)
        self.database_pool_size = Gauge("guichet_database_pool_size", "Connections the pool keeps open at most "
                                        "(overflow not counted)", registry=registry)
        # Children bound once: a turn then costs one lookup less per figure.
        self._turns = {kind: (self.turns.labels(kind), self.turn_duration.labels(kind)) for kind in TURN_KINDS}
        for kind in TURN_KINDS:
            self.turn_errors.labels(kind)

    def turn(self, kind: str, seconds: float) -> None:
        count, duration = self._turns[kind]
        count.inc()
        duration.observe(seconds)

    def turn_failed(self, kind: str) -> None:
        self.turn_errors.labels(kind).inc()

    def request_refused(self, status: int) -> None:
        self.refused.labels(str(status)).inc()

    def connector_observer(self, path: str) -> Callable[[int | None], None]:
        """What bot.connector_http calls with each answer's status (None: no answer)."""
        children: dict[int | None, Any] = {}

        def observe(status: int | None) -> None:
            child = children.get(status)
            if child is None:
                child = children[status] = self.connector_requests.labels(path, str(status or "error"))
            child.inc()

        return observe

    def graph_call(self, method: str, path: str, status: int | None, seconds: float) -> None:
        operation = graph_operation(method, path)
        self.graph_requests.labels(operation, str(status or "error")).inc()
        self.graph_duration.labels(operation).observe(seconds)

    def job_run(self, kind: str, result: str) -> None:
        self.job_runs.labels(kind, result).inc()

    def set_jobs(self, counts: Mapping[tuple[str, str], int]) -> None:
        for kind in [*JobKind, *{kind for kind, _state in counts}]:
            for state in JOB_STATES:
                self.jobs.labels(str(kind), state).set(counts.get((str(kind), state), 0))

    def set_pool(self, engine: AsyncEngine) -> None:
        pool = engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        self.database_in_use.set(checked_out() if callable(checked_out) else 0)
        self.database_pool_size.set(size() if callable(size) else 1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_allowed(authorization: str, *, token: str, production: bool) -> bool:
    """Open in development without a token; otherwise `Authorization: Bearer <token>`, compared in
    constant time. Production with no token set lets nobody in (and refuses to start, see bot.settings)."""
    if not token:
        return not production
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def refresh(metrics: Metrics, engine: AsyncEngine, uow: UnitOfWorkFactory, now: datetime) -> None:
    """Read the queue's figures and the pool's state for this scrape."""
    metrics.set_pool(engine)
    try:
        async with uow.read() as reading:
            counts = await reading.jobs.state_counts(now, LATE_AFTER)
    except Exception as error:  # the scrape still shows everything else, and that the database is away
        log.warning("metrics: job figures unavailable (%s)", type(error).__name__)
        metrics.database_up.set(0)
        return
    metrics.database_up.set(1)
    metrics.set_jobs(counts)


def metrics_page(settings: Settings, metrics: Metrics, engine: AsyncEngine, uow: UnitOfWorkFactory,
                 clock: Clock) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The GET /metrics handler of `guichet serve` and `guichet worker`."""

    async def page(request: web.Request) -> web.Response:
        if not metrics_allowed(request.headers.get("Authorization", ""), token=settings.metrics_token,
                               production=settings.env == "production"):
            return web.json_response({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        await refresh(metrics, engine, uow, clock.now())
        response = web.Response(body=metrics.exposition())
        # The classic text format's type, which every Prometheus and Azure Monitor's scraper read.
        response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
        return response

    return page
