"""A local stand-in for Microsoft Graph v1.0 (aiohttp), just the endpoints Guichet calls:

- events: create (with `transactionId`: a retried creation returns the event made the first time, as
  Graph does), get, patch, cancel, delete, in `/users/{id}/events`;
- online meetings: list filtered by `JoinWebUrl eq '...'`, patch (lobby, presenters, recording);
- `/users/{id}/calendar/getSchedule`, from a calendar the test sets;
- `/users/{id}/teamwork/installedApps`: install (409 when already installed);
- the Entra token endpoint `/{tenant}/oauth2/v2.0/token` and its OpenID metadata (for the real azure-identity
  credential, and MSAL's for the bot's own token at the `botframework.com` tenant); with `accepted_secrets`
  set, another client secret gets Entra's 401 `invalid_client` (AADSTS7000215);
- `/users/{id}/events` listed (`$top`, `$select`), as `guichet doctor` reads a calendar.

Every request is recorded (method, path without `/v1.0`, query, headers without the token, JSON body) and
each body is checked against the Graph v1.0 model as Graph would: unknown properties, wrong enum values,
a `dateTime` with an offset or without a `timeZone`, a bad `@odata.bind` all get 400 with Graph's JSON
error shape; a request without a bearer token gets 401. `fail()` makes the next requests fail the way
Graph fails: throttled with Retry-After, 503, 504, too slow (a timeout), 403 for a missing permission or a
missing Teams application access policy, 404.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from tests.harness import free_port

VERSION = "/v1.0"
# The request's JSON body, read once by the middleware (which records it).
BODY = web.RequestKey("body", object)

LOBBY_SCOPES = {"organization", "organizer", "invited", "organizationAndFederated", "everyone",
                "organizationExcludingGuests"}
PRESENTERS = {"everyone", "organization", "roleIsPresenter", "organizer"}
MEETING_PROVIDERS = {"unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"}
SHOW_AS = {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}
BODY_TYPES = {"text", "html"}
# dateTimeTimeZone.dateTime: a local date and time, no offset (the zone is in timeZone).
LOCAL_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?$")

# Graph's error bodies for the failures tests ask for.
ERRORS: dict[str, tuple[int, str, str]] = {
    "throttled": (429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    "unavailable": (503, "ServiceNotAvailable", "Service is temporarily unavailable. Please try again later."),
    "gateway_timeout": (504, "GatewayTimeout", "The gateway did not receive a response in time."),
    "calendar_permission": (403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    "meeting_permission": (403, "Forbidden", "Application does not have permission to perform this operation."),
    "access_policy": (403, "General", "No application access policy found for this app."),
    "install_permission": (403, "Forbidden", "Missing role permissions on the request. API requires one of "
                           "'TeamsAppInstallation.ReadWriteSelfForUser.All, TeamsAppInstallation."
                           "ReadWriteForUser.All'. Roles on the request ''."),
    "not_found": (404, "ErrorItemNotFound", "The specified object was not found in the store."),
    "bad_request": (400, "ErrorInvalidRequest", "Your request can't be completed."),
}


class GraphBadRequest(Exception):
    """A body Graph would refuse with 400."""


class GraphNotFound(Exception):
    """No such event for this user: Graph's 404."""


@dataclass
class Recorded:
    method: str
    path: str  # without the /v1.0 prefix, percent-decoded
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case, without Authorization
    body: Any
    authorized: bool  # a bearer token came with it
    status: int = 0


@dataclass
class Failure:
    """How the server answers matching requests, `times` times: Graph's error `kind` (see ERRORS) or,
    with kind None, the normal answer after `delay` seconds (a timeout for a client that waits less).
    `effect`: the request takes effect first (the event is created, then the error comes)."""

    kind: str | None
    method: str | None = None
    path: str | None = None  # a regular expression searched in the path
    times: int = 1
    retry_after: str | None = None
    delay: float = 0.0
    effect: bool = False

    def matches(self, request: web.Request, path: str) -> bool:
        return (self.method is None or request.method == self.method) and \
            (self.path is None or re.search(self.path, path) is not None)


@dataclass
class BusyItem:
    status: str
    start: datetime
    end: datetime


@dataclass
class GraphServer:
    """The stand-in; `start()` it, point the client at `url`, read `requests`, `events`, `meetings`."""

    ssl_context: ssl.SSLContext | None = None
    # Each new event answers this many reads without its Teams link (Graph can be slow to add it).
    link_after_reads: int = 0
    # Moving an event gives it a new Teams meeting (Graph usually keeps the old one).
    new_link_on_move: bool = False
    # Only these users exist when set (others get Graph's 404 ErrorInvalidUser).
    users: set[str] | None = None
    # When set, only these bearer tokens are accepted.
    accepted_tokens: set[str] | None = None
    catalog_apps: set[str] = field(default_factory=set)
    # SMTP address -> busy items, for getSchedule.
    calendars: dict[str, list[BusyItem]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    cancelled: dict[str, dict[str, Any]] = field(default_factory=dict)
    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)
    installed: set[tuple[str, str]] = field(default_factory=set)
    tokens_issued: list[dict[str, str]] = field(default_factory=list)
    # Mailbox -> the messages sent from it with sendMail (the JSON message, attachments as sent).
    sent_mail: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # When set, the token endpoint refuses any other client secret, as Entra does.
    accepted_secrets: set[str] | None = None
    failures: list[Failure] = field(default_factory=list)
    _reads_left: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    port: int = 0

    # --- lifetime ------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        users = VERSION + "/users/{user}"
        app.router.add_post(users + "/events", self._create_event)
        app.router.add_get(users + "/events", self._list_events)
        app.router.add_get(users + "/events/{event}", self._get_event)
        app.router.add_patch(users + "/events/{event}", self._patch_event)
        app.router.add_delete(users + "/events/{event}", self._delete_event)
        app.router.add_post(users + "/events/{event}/cancel", self._cancel_event)
        app.router.add_get(users + "/onlineMeetings", self._find_meetings)
        app.router.add_patch(users + "/onlineMeetings/{meeting}", self._patch_meeting)
        app.router.add_post(users + "/calendar/getSchedule", self._get_schedule)
        app.router.add_post(users + "/teamwork/installedApps", self._install_app)
        app.router.add_post(users + "/sendMail", self._send_mail)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration)
        # A request left waiting (a simulated timeout) must not hold the test's end for long.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def root(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://localhost:{self.port}"

    @property
    def url(self) -> str:
        """The Graph base URL to configure (like https://graph.microsoft.com/v1.0)."""
        return self.root + VERSION

    # --- what tests ask for --------------------------------------------------------------------------

    def fail(self, kind: str | None, *, path: str | None = None, method: str | None = None, times: int = 1,
             retry_after: str | None = None, delay: float = 0.0, effect: bool = False) -> None:
        self.failures.append(Failure(kind, method, path, times, retry_after, delay, effect))

    def requests_to(self, method: str, path_pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(path_pattern, r.path)]

    def live_events(self, user: str) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["_user"] == user]

    def meeting_of(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.meetings[event["_meeting"]]

    # --- the pipeline --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = request.path.removeprefix(VERSION)
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        record = Recorded(request.method, path, dict(request.query),
                          {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"},
                          body, bool(token))
        self.requests.append(record)
        response = await self._answer(request, path, token, body, handler)
        record.status = response.status
        return response

    async def _answer(self, request: web.Request, path: str, token: str, body: Any,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        is_graph = request.path.startswith(VERSION + "/")
        if is_graph and not token:
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        if is_graph and self.accepted_tokens is not None and token not in self.accepted_tokens:
            return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if is_graph and self.users is not None:
            user = request.match_info.get("user")
            if user is not None and user not in self.users:
                return graph_error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        if is_graph and request.body_exists and request.content_type != "application/json":
            return graph_error(415, "UnsupportedMediaType", "Content-Type must be application/json.")
        request[BODY] = body
        failure = next((f for f in self.failures if f.matches(request, path)), None)
        if failure is None:
            return await self._handle(request, handler)
        failure.times -= 1
        if failure.times <= 0:
            self.failures.remove(failure)
        if failure.kind is None:  # too slow: the normal answer, late
            if failure.effect:
                response = await self._handle(request, handler)
                await asyncio.sleep(failure.delay)
                return response
            await asyncio.sleep(failure.delay)
            return await self._handle(request, handler)
        if failure.effect:
            await self._handle(request, handler)
        await asyncio.sleep(failure.delay)
        status, code, message = ERRORS[failure.kind]
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else None
        return graph_error(status, code, message, headers)

    async def _handle(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except GraphBadRequest as error:
            return graph_error(400, "invalidRequest", str(error))
        except GraphNotFound:
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    # --- events --------------------------------------------------------------------------------------

    async def _create_event(self, request: web.Request) -> web.Response:
        user, body = request.match_info["user"], _object(request[BODY], "event")
        check_object(body, EVENT_CREATE, "microsoft.graph.event")
        for name in ("start", "end"):
            if name not in body:
                raise GraphBadRequest(f"The property '{name}' is required.")
        start, end = to_utc(body["start"]), to_utc(body["end"])
        if end < start:
            raise GraphBadRequest("The event's end is before its start.")
        transaction = body.get("transactionId")
        if transaction:
            for existing in self.events.values():
                if existing["_user"] == user and existing["transactionId"] == transaction:
                    # Graph's answer to a retried creation: the event made the first time.
                    return web.json_response(self._event_json(existing, read=False), status=201)
        event_id = "AAMkAGE1M2IyNGNm" + secrets.token_urlsafe(18) + "AAA="
        event: dict[str, Any] = {
            "id": event_id, "_user": user, "transactionId": transaction,
            "subject": body.get("subject", ""), "body": body.get("body", {"contentType": "text", "content": ""}),
            "start": body["start"], "end": body["end"], "showAs": body.get("showAs", "busy"),
            "isOnlineMeeting": body.get("isOnlineMeeting", False),
            "onlineMeetingProvider": body.get("onlineMeetingProvider", "unknown"),
            "allowNewTimeProposals": body.get("allowNewTimeProposals", True),
            "attendees": body.get("attendees", []), "_meeting": None,
        }
        if event["isOnlineMeeting"] and event["onlineMeetingProvider"] == "teamsForBusiness":
            event["_meeting"] = self._new_meeting(user, event)
        self.events[event_id] = event
        self._reads_left[event_id] = self.link_after_reads
        return web.json_response(self._event_json(event, read=False), status=201)

    def _event_of(self, request: web.Request) -> dict[str, Any]:
        event = self.events.get(request.match_info["event"])
        if event is None or event["_user"] != request.match_info["user"]:
            raise GraphNotFound
        return event

    async def _list_events(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        top = int(request.query.get("$top", "10"))
        selected = [name for name in request.query.get("$select", "").split(",") if name]
        found = [self._event_json(e, read=False) for e in self.events.values() if e["_user"] == user][:top]
        if selected:
            found = [{name: e.get(name) for name in ["id", *selected]} for e in found]
        return web.json_response({"@odata.context": f"{self.url}/$metadata#users('{user}')/events", "value": found})

    async def _get_event(self, request: web.Request) -> web.Response:
        event = self._event_of(request)
        return web.json_response(self._event_json(event, read=True))

    async def _patch_event(self, request: web.Request) -> web.Response:
        event = self._event_of(request)
        body = _object(request[BODY], "event")
        check_object(body, EVENT_UPDATE, "microsoft.graph.event")
        start = to_utc(body.get("start", event["start"]))
        end = to_utc(body.get("end", event["end"]))
        if end < start:
            raise GraphBadRequest("The event's end is before its start.")
        moved = "start" in body or "end" in body
        event.update({k: v for k, v in body.items() if not k.startswith("@")})
        if moved and self.new_link_on_move and event["_meeting"]:
            event["_meeting"] = self._new_meeting(event["_user"], event)
        return web.json_response(self._event_json(event, read=False))

    async def _cancel_event(self, request: web.Request) -> web.Response:
        event = self._event_of(request)
        body = action_parameters(request[BODY] or {}, "cancel")
        check_object(body, {"comment": is_str}, None)
        self.events.pop(event["id"])
        self.cancelled[event["id"]] = {**event, "comment": body.get("comment")}
        return web.Response(status=202)

    async def _delete_event(self, request: web.Request) -> web.Response:
        event = self._event_of(request)
        self.events.pop(event["id"])
        self.cancelled[event["id"]] = {**event, "comment": None}
        return web.Response(status=204)

    def _event_json(self, event: dict[str, Any], *, read: bool) -> dict[str, Any]:
        public = {k: v for k, v in event.items() if not k.startswith("_")}
        left = self._reads_left.get(event["id"], 0)
        link_ready = left <= 0
        if read and left > 0:
            self._reads_left[event["id"]] = left - 1
        meeting = self.meetings.get(event["_meeting"]) if event["_meeting"] else None
        public["onlineMeeting"] = {"joinUrl": meeting["joinWebUrl"]} if meeting and link_ready else None
        public["@odata.context"] = f"{self.url}/$metadata#users('{event['_user']}')/events/$entity"
        public["isCancelled"] = False
        public["isOrganizer"] = True
        return public

    # --- online meetings -----------------------------------------------------------------------------

    def _new_meeting(self, user: str, event: dict[str, Any]) -> str:
        meeting_id = "MSo1N2Y5ZGFjYy03MWJm" + secrets.token_urlsafe(24)
        thread = secrets.token_hex(16)
        context = quote('{"Tid":"00000000-0000-0000-0000-00000000cafe","Oid":"' + user + '"}', safe="")
        self.meetings[meeting_id] = {
            "id": meeting_id, "_user": user,
            # The shape of a real join link, percent-escapes included (they must survive the $filter).
            "joinWebUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0"
                          f"?context={context}",
            "subject": event["subject"],
            "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": True},
            "allowedPresenters": "everyone", "allowRecording": True, "allowTranscription": True,
            "recordAutomatically": False,
        }
        return meeting_id

    async def _find_meetings(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        wanted = re.fullmatch(r"JoinWebUrl eq '((?:[^']|'')*)'", request.query.get("$filter", ""))
        if wanted is None:
            raise GraphBadRequest("Filter is required: JoinWebUrl eq '<join url>'.")
        url = wanted.group(1).replace("''", "'")
        found = [self._meeting_json(m) for m in self.meetings.values() if m["_user"] == user
                 and m["joinWebUrl"] == url]
        return web.json_response({"@odata.context": f"{self.url}/$metadata#users('{user}')/onlineMeetings",
                                  "value": found})

    async def _patch_meeting(self, request: web.Request) -> web.Response:
        meeting = self.meetings.get(request.match_info["meeting"])
        if meeting is None or meeting["_user"] != request.match_info["user"]:
            return graph_error(404, "NotFound", "The meeting was not found.")
        body = _object(request[BODY], "onlineMeeting")
        check_object(body, MEETING_UPDATE, "microsoft.graph.onlineMeeting")
        for name, value in body.items():
            if name == "lobbyBypassSettings":
                meeting[name] = {**meeting[name], **{k: v for k, v in value.items() if not k.startswith("@")}}
            elif not name.startswith("@"):
                meeting[name] = value
        return web.json_response(self._meeting_json(meeting))

    @staticmethod
    def _meeting_json(meeting: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in meeting.items() if not k.startswith("_")}

    # --- availability --------------------------------------------------------------------------------

    async def _get_schedule(self, request: web.Request) -> web.Response:
        body = action_parameters(request[BODY], "getSchedule")
        check_object(body, GET_SCHEDULE, None)
        for name in ("schedules", "startTime", "endTime"):
            if name not in body:
                raise GraphBadRequest(f"The parameter '{name}' is required.")
        if not 1 <= len(body["schedules"]) <= 100:
            raise GraphBadRequest("schedules: between 1 and 100 addresses.")
        start, end = to_utc(body["startTime"]), to_utc(body["endTime"])
        prefer = request.headers.get("Prefer", "")
        if prefer and 'outlook.timezone="UTC"' not in prefer:
            raise GraphBadRequest("this stand-in answers in UTC only")
        value = []
        for address in body["schedules"]:
            if address not in self.calendars:
                value.append({"scheduleId": address, "error": {
                    "message": f"The mailbox {address} was not found.", "responseCode": "ErrorMailboxNotFound"}})
                continue
            items = [item for item in self.calendars[address] if item.start < end and item.end > start]
            value.append({
                "scheduleId": address, "availabilityView": "",
                "scheduleItems": [{"isPrivate": False, "status": item.status,
                                   "start": graph_time(item.start), "end": graph_time(item.end)}
                                  for item in items],
            })
        return web.json_response({"value": value})

    # --- Teams app installation ----------------------------------------------------------------------

    async def _install_app(self, request: web.Request) -> web.Response:
        user, body = request.match_info["user"], _object(request[BODY], "installation")
        check_object(body, {"teamsApp@odata.bind": is_str}, "microsoft.graph.userScopeTeamsAppInstallation")
        bind = body.get("teamsApp@odata.bind")
        prefix = f"{self.url}/appCatalogs/teamsApps/"
        if not bind or not bind.startswith(prefix) or "/" in bind[len(prefix):] or bind == prefix:
            raise GraphBadRequest(f"teamsApp@odata.bind must be {prefix}{{id}}.")
        app_id = bind[len(prefix):]
        if app_id not in self.catalog_apps:
            return graph_error(404, "NotFound", "The app was not found in the catalog.")
        if (user, app_id) in self.installed:
            return graph_error(409, "Conflict", "App is already installed.")
        self.installed.add((user, app_id))
        return web.Response(status=201)

    # --- mail ----------------------------------------------------------------------------------------

    async def _send_mail(self, request: web.Request) -> web.Response:
        """sendMail: 202 with no body; the message is checked as Graph's deserializer would."""
        body = action_parameters(request[BODY], "sendMail")
        check_object(body, {"message": _MESSAGE, "saveToSentItems": is_bool}, None, "sendMail")
        message = body.get("message")
        if not isinstance(message, dict) or not message.get("toRecipients"):
            raise GraphBadRequest("At least one recipient is required, but none were found.")
        for attachment in message.get("attachments") or []:
            try:
                base64.b64decode(attachment.get("contentBytes") or "", validate=True)
            except ValueError:
                raise GraphBadRequest("attachments.contentBytes: invalid base64.") from None
        self.sent_mail.setdefault(request.match_info["user"], []).append(message)
        return web.Response(status=202)

    # --- Entra sign-in -------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        if self.accepted_secrets is not None and form.get("client_secret") not in self.accepted_secrets:
            return web.json_response({
                "error": "invalid_client", "error_codes": [7000215],
                "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
                                     "in the request is the client secret value, not the client secret ID.",
            }, status=401)
        self.tokens_issued.append({"tenant": request.match_info["tenant"],
                                   **{k: str(v) for k, v in form.items() if k != "client_secret"}})
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                                  "access_token": "token-from-local-authority"})


    async def _openid_configuration(self, request: web.Request) -> web.Response:
        """What MSAL reads before its first token request."""
        base = f"{self.root}/{request.match_info['tenant']}"
        return web.json_response({"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                                  "authorization_endpoint": f"{base}/oauth2/v2.0/authorize"})


# --- Graph's model, the parts Guichet sends ----------------------------------------------------------

Checker = Callable[[Any, str], None]


def is_str(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise GraphBadRequest(f"{where}: a string is expected.")


def is_bool(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise GraphBadRequest(f"{where}: a boolean is expected.")


def is_int(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise GraphBadRequest(f"{where}: an integer is expected.")


def one_of(values: set[str]) -> Checker:
    def check(value: Any, where: str) -> None:
        if value not in values:
            raise GraphBadRequest(f"{where}: the value '{value}' is not valid; expected one of {sorted(values)}.")
    return check


def list_of(item: Checker) -> Checker:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise GraphBadRequest(f"{where}: an array is expected.")
        for i, element in enumerate(value):
            item(element, f"{where}[{i}]")
    return check


def obj(properties: dict[str, Checker], odata_type: str | None, required: tuple[str, ...] = ()) -> Checker:
    def check(value: Any, where: str) -> None:
        check_object(value, properties, odata_type, where)
        for name in required:
            if name not in value:
                raise GraphBadRequest(f"{where}: the property '{name}' is required.")
    return check


def check_local_date_time(value: Any, where: str) -> None:
    if not isinstance(value, str) or not LOCAL_DATE_TIME.match(value):
        raise GraphBadRequest(f"{where}: '{value}' is not a local date and time (no offset; the zone goes "
                              "in timeZone).")


DATE_TIME_TIME_ZONE = obj({"dateTime": check_local_date_time, "timeZone": is_str}, "microsoft.graph.dateTimeTimeZone",
                          required=("dateTime", "timeZone"))
ITEM_BODY = obj({"contentType": one_of(BODY_TYPES), "content": is_str}, "microsoft.graph.itemBody")
EMAIL_ADDRESS = obj({"address": is_str, "name": is_str}, "microsoft.graph.emailAddress")
ATTENDEE = obj({"emailAddress": EMAIL_ADDRESS, "type": one_of({"required", "optional", "resource"})},
               "microsoft.graph.attendee")
LOCATION = obj({"displayName": is_str}, "microsoft.graph.location")

EVENT_UPDATE: dict[str, Checker] = {
    "allowNewTimeProposals": is_bool, "attendees": list_of(ATTENDEE), "body": ITEM_BODY,
    "categories": list_of(is_str), "end": DATE_TIME_TIME_ZONE, "hideAttendees": is_bool,
    "importance": one_of({"low", "normal", "high"}), "isAllDay": is_bool, "isOnlineMeeting": is_bool,
    "isReminderOn": is_bool, "location": LOCATION, "onlineMeetingProvider": one_of(MEETING_PROVIDERS),
    "reminderMinutesBeforeStart": is_int, "responseRequested": is_bool,
    "sensitivity": one_of({"normal", "personal", "private", "confidential"}), "showAs": one_of(SHOW_AS),
    "start": DATE_TIME_TIME_ZONE, "subject": is_str,
}
# transactionId is set once, at creation ("you cannot change transactionId in a subsequent update").
EVENT_CREATE: dict[str, Checker] = {**EVENT_UPDATE, "transactionId": is_str}

MEETING_UPDATE: dict[str, Checker] = {
    "allowAttendeeToEnableCamera": is_bool, "allowAttendeeToEnableMic": is_bool, "allowBreakoutRooms": is_bool,
    "allowMeetingChat": one_of({"enabled", "disabled", "limited"}), "allowParticipantsToChangeName": is_bool,
    "allowPowerPointSharing": is_bool, "allowRecording": is_bool, "allowTeamworkReactions": is_bool,
    "allowTranscription": is_bool, "allowWhiteboard": is_bool, "allowedPresenters": one_of(PRESENTERS),
    "isEntryExitAnnounced": is_bool, "recordAutomatically": is_bool, "subject": is_str,
    "lobbyBypassSettings": obj({"scope": one_of(LOBBY_SCOPES), "isDialInBypassEnabled": is_bool},
                               "microsoft.graph.lobbyBypassSettings"),
}

GET_SCHEDULE: dict[str, Checker] = {
    "schedules": list_of(is_str), "startTime": DATE_TIME_TIME_ZONE, "endTime": DATE_TIME_TIME_ZONE,
    "availabilityViewInterval": is_int,
}


def check_object(value: Any, properties: dict[str, Checker], odata_type: str | None, where: str = "") -> None:
    """Graph's deserializer: known properties only, each of its type; `@odata.type` naming this type."""
    label = where or (odata_type or "body")
    if not isinstance(value, dict):
        raise GraphBadRequest(f"{label}: an object is expected.")
    for name, item in value.items():
        if name == "@odata.type":
            if odata_type is None or item.lstrip("#") != odata_type:
                raise GraphBadRequest(f"{label}: '@odata.type' {item!r} does not match.")
            continue
        if name not in properties:
            raise GraphBadRequest(f"The property '{name}' does not exist on type '{odata_type or label}'. Make sure "
                                  "to only use property names that are defined by the type.")
        properties[name](item, f"{label}.{name}")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GraphBadRequest(f"{what}: a JSON object is expected.")
    return value


def action_parameters(value: Any, what: str) -> dict[str, Any]:
    """An action's parameters by name. Graph's metadata spells them capitalised (the SDK sends `Comment`,
    `StartTime`), its documentation in camelCase (`comment`, `startTime`): Graph takes either."""
    return {name[:1].lower() + name[1:]: item for name, item in _object(value, what).items()}


def to_utc(value: dict[str, str]) -> datetime:
    zone_name = value["timeZone"]
    try:
        zone = UTC if zone_name == "UTC" else ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise GraphBadRequest(f"TimeZoneNotSupportedException: {zone_name}") from error
    local = datetime.fromisoformat(value["dateTime"][:26])
    return local.replace(tzinfo=zone).astimezone(UTC)


def graph_time(moment: datetime) -> dict[str, str]:
    """How Graph writes a time back: seven fractional digits, the zone beside."""
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _error_body(code: str, message: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {"error": {"code": code, "message": message,
                      "innerError": {"date": now, "request-id": str(uuid.uuid4()),
                                     "client-request-id": str(uuid.uuid4())}}}


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(_error_body(code, message), status=status, headers=headers)


_RECIPIENT = obj({"emailAddress": obj({"address": is_str, "name": is_str}, "microsoft.graph.emailAddress",
                                      required=("address",))}, "microsoft.graph.recipient")
_MESSAGE = obj({
    "subject": is_str,
    "body": obj({"contentType": one_of({"text", "html"}), "content": is_str}, "microsoft.graph.itemBody"),
    "toRecipients": list_of(_RECIPIENT),
    "attachments": list_of(obj({"name": is_str, "contentType": is_str, "contentBytes": is_str},
                               "microsoft.graph.fileAttachment", required=("name", "contentBytes"))),
}, "microsoft.graph.message")
