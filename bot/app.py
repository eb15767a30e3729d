"""create_app(settings): the HTTP routes (messages, health, metrics) over what bot.wiring built."""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import requests
from aiohttp import web
from botbuilder.schema import Activity
from msrest.exceptions import DeserializationError
from msrest.serialization import Model
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.activity_json import NotPlain, activity_from_json
from bot.adapter import close_adapter
from bot.directline import add_token_route
from bot.domain.agency import Agency
from bot.domain.slots import claim_grid_problems
from bot.jobs.lock import RunnerLockBusy
from bot.jobs.runner import JobRunner
from bot.jobs.worker import running_jobs
from bot.metrics import Metrics, metrics_page, turn_kind
from bot.services.container import Services
from bot.services.ports import Clock
from bot.services.staff import StaffService
from bot.settings import Settings
from bot.teams_bot import TeamsBot
from bot.telemetry import instrument_app, start_azure_monitor
from bot.wiring import Wiring, build_bot, build_services
from storage.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
AGENCY = web.AppKey("agency", Agency)
ENGINE = web.AppKey("engine", AsyncEngine)
BOT = web.AppKey("bot", TeamsBot)
ADAPTER = web.AppKey("adapter", object)
UOW = web.AppKey("uow", UnitOfWorkFactory)
SERVICES = web.AppKey("services", Services)
RUNNER = web.AppKey("runner", JobRunner)
METRICS = web.AppKey("metrics", Metrics)
WIRING = web.AppKey("wiring", Wiring)

# Activity types whose handling needs a conversation to answer in.
_CONVERSATIONAL = {"message", "invoke", "conversationUpdate", "installationUpdate"}


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": "bad_request", "message": reason}, status=400)


def _parse_activity(body: Any) -> Activity | str:
    """The activity, or why the body is not one (the reason is safe to return to the caller)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object (a Bot Framework activity)"
    if not isinstance(body.get("type"), str) or not body["type"]:
        return "the activity has no type"
    try:
        try:
            activity = activity_from_json(body)
        except NotPlain:
            activity = Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError, RecursionError):
        return "the activity could not be read"
    if activity.type in _CONVERSATIONAL:
        conversation_id = getattr(activity.conversation, "id", None)
        if not isinstance(activity.service_url, str) or not activity.service_url.startswith(("http://", "https://")):
            return "the activity has no valid serviceUrl"
        if not isinstance(conversation_id, str) or not conversation_id:
            return "the activity has no conversation id"
        if not isinstance(getattr(activity.from_property, "id", None), str):
            return "the activity has no sender"
    return activity


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


async def messages(request: web.Request) -> web.StreamResponse:
    """POST /api/messages: the Bot Framework channel delivers activities here."""
    started = time.perf_counter()
    kind: str | None = None  # known once the activity reaches the adapter: a turn, timed by its kind
    status = 500
    try:
        response, kind = await _answer_activity(request)
        status = response.status
        return response
    except web.HTTPException as error:  # 413 from reading the body
        status = error.status
        raise
    finally:
        if kind is not None:
            request.app[METRICS].turn(kind, time.perf_counter() - started)
        else:
            request.app[METRICS].request_refused(status)


async def _answer_activity(request: web.Request) -> tuple[web.StreamResponse, str | None]:
    """The answer, and the turn's kind when the activity was handed to the adapter."""
    if request.content_type != "application/json":
        return web.json_response(
            {"error": "unsupported_media_type", "message": "send application/json"}, status=415
        ), None
    raw = await request.read()  # raises 413 past client_max_size
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _bad_request("the body is not valid JSON"), None
    if b"\\u0000" in raw and _holds_nul(body):
        # No channel sends NUL characters, and PostgreSQL text cannot store them.
        return _bad_request("the activity contains NUL characters"), None
    activity = _parse_activity(body)
    if isinstance(activity, str):
        return _bad_request(activity), None
    app = request.app
    adapter = app[ADAPTER]
    # Authentication first and on its own, so that whatever the SDK raises on a bad token (its own
    # PermissionError, PyJWT's errors, an IndexError for an unknown signing key) is a 401, while
    # errors of the turn itself stay with the adapter's turn-error handler.
    try:
        authenticated = await adapter.bot_framework_authentication.authenticate_request(  # type: ignore[attr-defined]
            activity, request.headers.get("Authorization", "")
        )
    except requests.RequestException:
        log.warning("cannot validate tokens: the OpenID metadata endpoint is unreachable")
        return web.json_response({"error": "unavailable"}, status=503, headers={"Retry-After": "5"}), None
    except Exception as error:  # any failure to validate the token means the caller is not trusted
        log.info("refused an activity: %s", type(error).__name__)
        return web.json_response({"error": "unauthorized"}, status=401), None
    kind = turn_kind(activity)
    response = await adapter.process_activity(authenticated, activity, app[BOT].on_turn)  # type: ignore[attr-defined]
    if response is not None:
        # The SDK leaves msrest models in invoke response bodies (AdaptiveCardInvokeResponse...).
        body = response.body.serialize() if isinstance(response.body, Model) else response.body
        return web.json_response(body, status=response.status), kind
    return web.Response(status=201), kind


async def _warn_unreachable_counselors(staff: StaffService, agency_id: str, _app: web.Application) -> None:
    """Counselors no prompt or alert can reach, named by their id in the agency file (never by name): their
    clients would otherwise be left waiting with only a line in the log when it happens."""
    try:
        unreachable = await staff.unreachable_counselors()
    except Exception as error:  # the database may not be ready yet: the check is advice, not a condition
        log.warning("could not check which counselors the bot can reach: %s", type(error).__name__)
        return
    if unreachable:
        log.warning("agency %s: no prompt or alert can reach %d counselor(s) %s: the bot has no chat with them "
                    "yet, cannot install itself for them (Microsoft Graph and GUICHET_TEAMS_APP_ID) and the agency "
                    "file has no fallback_channel", agency_id, len(unreachable), ", ".join(unreachable))


_startup_frozen = False


async def _freeze_startup_objects(_app: web.Application) -> None:
    """Take what imports and start-up built (~160,000 objects, alive as long as the process) out of
    the garbage collector's sight: otherwise each full collection walks them all again, an ~80 ms
    pause that whichever turn is running at the time feels. Once per process."""
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()
        gc.freeze()


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means not ready
        log.warning("readiness check failed: %s", type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ready", "database": "ok"})


def create_app(settings: Settings, *, agency: Agency | None = None, clock: Clock | None = None,
               wiring: Wiring | None = None) -> web.Application:
    """Build the application (over `wiring`, else bot.wiring's); resources that need the event loop start
    in cleanup contexts."""
    wiring = wiring or build_services(settings, agency=agency, clock=clock)
    services = wiring.services
    agency = services.agency
    app = web.Application(client_max_size=settings.max_body_bytes)
    if start_azure_monitor(settings):
        instrument_app(app, wiring.engine)
    app[SETTINGS] = settings
    app[AGENCY] = agency
    app[ENGINE] = wiring.engine
    app[SERVICES] = services
    app[WIRING] = wiring
    app[METRICS] = wiring.metrics
    for problem in claim_grid_problems(agency):
        log.warning("agency %s: %s (bookings stay safe, but back-to-back times may be refused)", agency.id, problem)
    app[UOW] = wiring.uow
    if not settings.authentication_enabled:
        log.warning(
            "!!! AUTHENTICATION IS OFF: no MicrosoftAppId is set, so anyone who can reach this port can "
            "talk to the bot. Use this only on your own machine. !!!"
        )
    parts = build_bot(wiring)
    adapter, bot_state = parts.adapter, parts.state
    app[ADAPTER] = adapter
    app[BOT] = parts.bot

    async def database_lifetime(_app: web.Application) -> AsyncIterator[None]:
        yield
        await close_adapter(adapter)
        await bot_state.close()
        await wiring.close()

    async def jobs_lifetime(_app: web.Application) -> AsyncIterator[None]:
        # Stopped before the database closes (cleanup contexts unwind in reverse order).
        try:
            async with running_jobs(wiring) as runner:
                app[RUNNER] = runner
                yield
        except RunnerLockBusy as busy:
            log.warning("jobs are not run by this process: %s", busy)
            yield

    app.cleanup_ctx.append(database_lifetime)
    if settings.jobs == "inline":
        app.cleanup_ctx.append(jobs_lifetime)
    app.on_startup.append(partial(_warn_unreachable_counselors, wiring.use_cases.staff, agency.id))
    app.on_startup.append(_freeze_startup_objects)
    app.router.add_post("/api/messages", messages)
    add_token_route(app, settings, services, wiring.use_cases.web_identity)  # the agency's Web Chat page
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page(settings, wiring.metrics, wiring.engine, services.uow, services.clock))
    return app
