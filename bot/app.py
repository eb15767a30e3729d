"""create_app(settings): the one place that builds and wires the bot, its storage and its HTTP routes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import jwt
from aiohttp import web
from botbuilder.core import ConversationState
from botbuilder.schema import Activity
from msrest.exceptions import DeserializationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapter import create_adapter
from bot.domain.agency import Agency, load_agency
from bot.domain.clock import Clock, SystemClock
from bot.domain.slots import SlotEngine
from bot.services.audit import AuditTrail
from bot.services.container import Services
from bot.services.people import PeopleService
from bot.settings import Settings
from bot.teams_bot import TeamsBot
from dialogs.main_dialog import Feature, build_main_dialog
from storage.bot_state import DatabaseStorage
from storage.db import create_engine, create_session_factory
from storage.unit_of_work import UnitOfWorkFactory

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
AGENCY = web.AppKey("agency", Agency)
ENGINE = web.AppKey("engine", AsyncEngine)
BOT = web.AppKey("bot", TeamsBot)
ADAPTER = web.AppKey("adapter", object)
UOW = web.AppKey("uow", UnitOfWorkFactory)
SERVICES = web.AppKey("services", Services)

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
        activity = Activity().deserialize(body)
    except (DeserializationError, TypeError, ValueError, AttributeError):
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


async def messages(request: web.Request) -> web.StreamResponse:
    """POST /api/messages: the Bot Framework channel delivers activities here."""
    if request.content_type != "application/json":
        return web.json_response(
            {"error": "unsupported_media_type", "message": "send application/json"}, status=415
        )
    raw = await request.read()  # raises 413 past client_max_size
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _bad_request("the body is not valid JSON")
    activity = _parse_activity(body)
    if isinstance(activity, str):
        return _bad_request(activity)
    app = request.app
    auth_header = request.headers.get("Authorization", "")
    try:
        response = await app[ADAPTER].process_activity(auth_header, activity, app[BOT].on_turn)  # type: ignore[attr-defined]
    except (PermissionError, jwt.PyJWTError):
        # The SDK raises PyJWT's own errors for malformed tokens instead of PermissionError.
        return web.json_response({"error": "unauthorized"}, status=401)
    if response is not None:
        return web.json_response(response.body, status=response.status)
    return web.Response(status=201)


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


def create_app(settings: Settings, *, agency: Agency | None = None, clock: Clock | None = None) -> web.Application:
    """Build the application; resources that need the event loop start in cleanup contexts."""
    agency = agency or load_agency(settings.agency)
    clock = clock or SystemClock()
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[AGENCY] = agency

    engine = create_engine(settings.database_url)
    app[ENGINE] = engine
    uow_factory = UnitOfWorkFactory(create_session_factory(engine))
    app[UOW] = uow_factory
    services = Services(agency=agency, uow=uow_factory, clock=clock, audit=AuditTrail(agency.id, clock),
                        slots=SlotEngine(agency))
    app[SERVICES] = services
    # The conversation map: each feature brings its dialogs, commands and menu buttons.
    features: list[Feature] = []

    if not settings.authentication_enabled:
        log.warning(
            "!!! AUTHENTICATION IS OFF: no MicrosoftAppId is set, so anyone who can reach this port can "
            "talk to the bot. Use this only on your own machine. !!!"
        )
    adapter = create_adapter(settings, default_language=agency.default_language)
    app[ADAPTER] = adapter
    conversation_state = ConversationState(DatabaseStorage(uow_factory.session_factory))
    app[BOT] = TeamsBot(
        agency=agency,
        conversation_state=conversation_state,
        dialog=build_main_dialog(agency, features),
        people=PeopleService(agency, uow_factory, clock),
    )

    async def database_lifetime(_app: web.Application) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app.cleanup_ctx.append(database_lifetime)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
