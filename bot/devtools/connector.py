"""The Bot Connector stand-in: the `serviceUrl` of every activity, where the bot sends what the user sees.

It answers the Bot Framework Connector API as Teams' connector does: replies, sends, updates and
deletes of activities, new conversations, member lookups, and the OneDrive upload session of a file
the user allowed. `guichet chat` renders what it receives (`on_activity`); the tests read what it
recorded (`received`, `messages_for`, `wait_for` for a message the bot sends on its own) and make it
fail on purpose (`fail_next`: throttling with Retry-After, 5xx, a timeout, MessageWritesBlocked); the
benchmarks read each conversation's replies with `take` and keep no history, so that a request costs
no more than the bot's own HTTP round trip.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import secrets
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from bot.devtools.activities import Identity, adaptive_cards, new_activity_id
from bot.domain.json_parts import object_at
from bot.rate_limit import CONVERSATION_WINDOWS, TENANT_PER_SECOND


@dataclass
class Recorded:
    """One activity the bot wrote to the connector, and where."""

    method: str
    path: str
    conversation_id: str
    activity: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    event: str = "send"  # "send" (a new message), "reply", "update" or "delete"
    activity_id: str = ""  # the id the connector gave it, or the one an update or delete named

    @property
    def text(self) -> str | None:
        return self.activity.get("text")

    @property
    def cards(self) -> list[dict[str, Any]]:
        return adaptive_cards(self.activity)


@dataclass(frozen=True)
class Failure:
    """How the stand-in answers one write badly: after `delay` seconds, `status`, with a Retry-After
    header and a JSON body when given. A delay longer than the bot's timeout plays a connector that
    does not answer in time."""

    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    body: Any = None


# What Teams answers a bot that writes to someone who blocked it or uninstalled the app.
MESSAGE_WRITES_BLOCKED = Failure(403, body={"error": {"code": "MessageWritesBlocked"}})

Listener = Callable[[Recorded], None]


class TeamsLimits:
    """Teams' limits for one bot, as the stand-in enforces them on new messages (tests and benchmarks):
    the per-conversation windows and the per-tenant rate of bot.rate_limit; a message beyond any of them
    is refused with 429 and a Retry-After, as Teams does. Counts what it refused."""

    def __init__(self, *, tenant_per_second: int = TENANT_PER_SECOND,
                 conversation_windows: tuple[tuple[float, int], ...] = CONVERSATION_WINDOWS) -> None:
        self._tenant = ((1.0, tenant_per_second),)
        self._conversation = conversation_windows
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self.throttled = 0

    def admit(self, conversation_id: str, tenant_id: str, now: float) -> float | None:
        """None when the message may go (and is counted), else the seconds to wait."""
        checks = ((("c", conversation_id), self._conversation), (("t", tenant_id), self._tenant))
        wait = 0.0
        for key, windows in checks:
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - windows[-1][0]:
                sent.popleft()
            for window, limit in windows:
                if len(sent) >= limit:
                    wait = max(wait, sent[len(sent) - limit] + window - now)
        if wait > 0:
            self.throttled += 1
            return wait
        for key, _windows in checks:
            self._sent[key].append(now)
        return None


class ConnectorStandIn:
    """A local Bot Connector on 127.0.0.1. Answers like the real one ({"id": ...}, 200/201).

    `people` are the Teams users it knows: a new conversation with one of them is their personal chat
    (Teams has one per user and bot), and member lookups describe them. `history=False` keeps nothing
    but each conversation's untaken activities (`take`) and records no headers: the benchmarks' mode.
    """

    def __init__(
        self,
        *,
        people: Iterable[Identity] = (),
        on_activity: Listener | None = None,
        downloads_dir: Path | None = None,
        on_file: Callable[[Path], None] | None = None,
        history: bool = True,
    ) -> None:
        self.people: dict[str, Identity] = {person.user_id: person for person in people}
        self.on_activity = on_activity
        self.downloads_dir = downloads_dir
        self.on_file = on_file
        self.history = history
        self.received: list[Recorded] = []
        # How to answer the next writes (activities, new conversations), first come first served:
        # an HTTP status, or a Failure.
        self.fail_next: list[int | Failure] = []
        self.failed = 0  # writes answered from fail_next
        # Optional: Teams' rate limits, a share of new messages answered 503 at random, a delay per write.
        self.limits: TeamsLimits | None = None
        self.transient_failure_rate = 0.0
        self.transient_failures = 0
        self.delay = 0.0
        self._random = random.Random(20261206)
        self.service_url = ""
        self._inbox: dict[str, list[Recorded]] = {}
        self._arrived = asyncio.Event()
        self._uploads: dict[str, Path] = {}
        self._runner: web.AppRunner | None = None

    # -- lifetime -----------------------------------------------------------------------------------------

    async def start(self, port: int | None = None) -> str:
        """Listen on `port` when it is free, else on any free port; the service URL (with a final slash)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        # One catch-all route: bots join serviceUrl and path with or without a slash between them.
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = _bind_local(port)
        # As many waiting connections as the benchmarks' 200 citizens open at once: a full accept queue
        # drops a connection, which the client only tries again after a second. (The site listens
        # again with its own backlog, 128 unless told.)
        site = web.SockSite(self._runner, sock, backlog=_BACKLOG)
        await site.start()
        self.service_url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        return self.service_url

    @property
    def port(self) -> int:
        return int(self.service_url.rstrip("/").rsplit(":", 1)[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    def add_person(self, identity: Identity) -> None:
        self.people[identity.user_id] = identity

    # -- what was received ----------------------------------------------------------------------------------

    def messages_for(self, conversation_id: str) -> list[Recorded]:
        """Everything the bot wrote to one conversation, in order (needs `history`)."""
        return [recorded for recorded in self.received if recorded.conversation_id == conversation_id]

    def take(self, conversation_id: str) -> list[Recorded]:
        """What the bot wrote to one conversation since the last `take` for it."""
        return self._inbox.pop(conversation_id, [])

    async def wait_for(self, predicate: Callable[[Recorded], bool], within: float = 5.0) -> Recorded:
        """The first recorded activity that satisfies `predicate`, waiting for it up to `within` seconds
        (for messages the bot sends on its own). Needs `history`; raises TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for recorded in self.received:
                if predicate(recorded):
                    return recorded
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("the expected activity never reached the connector")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue

    def _record(
        self, request: web.Request, conversation_id: str, activity: dict[str, Any], event: str, activity_id: str
    ) -> None:
        headers = dict(request.headers) if self.history else {}
        recorded = Recorded(request.method, request.path, conversation_id, activity, headers, event, activity_id)
        if self.history:
            self.received.append(recorded)
        self._inbox.setdefault(conversation_id, []).append(recorded)
        self._arrived.set()
        if self.on_activity is not None:
            self.on_activity(recorded)

    async def _injected_failure(self) -> web.Response:
        """The answer `fail_next` asks for this write (call it only when fail_next is not empty)."""
        failure = self.fail_next.pop(0)
        self.failed += 1
        if isinstance(failure, int):
            failure = Failure(failure)
        if failure.delay:
            await asyncio.sleep(failure.delay)
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
        if failure.body is None:
            return web.Response(status=failure.status, headers=headers)
        return web.json_response(failure.body, status=failure.status, headers=headers)

    # -- the Connector API ------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [part for part in request.match_info["tail"].split("/") if part]
        method = request.method
        if parts[:1] == ["uploads"] and len(parts) == 3 and method == "PUT":
            return await self._upload(request, parts[1], parts[2])
        if parts[:1] == ["files"] and len(parts) == 3 and method == "GET":
            path = self._uploads.get(parts[1])
            return web.FileResponse(path) if path and path.exists() else _not_found("no such file")
        if parts[:2] != ["v3", "conversations"]:
            return _not_found("unknown path")
        rest = parts[2:]
        if not rest and method == "POST":
            return await self._create_conversation(request)
        if len(rest) >= 2 and rest[1] == "activities":
            return await self._activities(request, rest[0], rest[2:])
        if len(rest) in (2, 3) and rest[1] in ("members", "pagedmembers") and method == "GET":
            return self._members(rest)
        return _not_found("unknown path")

    async def _activities(self, request: web.Request, conversation_id: str, rest: list[str]) -> web.Response:
        method = request.method
        if method == "DELETE" and len(rest) == 1:
            self._record(request, conversation_id, {}, "delete", rest[0])
            return web.json_response({})
        if method not in ("POST", "PUT") or len(rest) > 1:
            return _not_found("unknown path")
        if self.fail_next:
            return await self._injected_failure()
        if self.delay:
            await asyncio.sleep(self.delay)
        activity = await _json_object(request)
        if not isinstance(activity, dict):
            return activity
        if method == "POST" and not rest:
            refused = self._refuse_new_message(conversation_id, activity)
            if refused is not None:
                return refused
        if method == "PUT":
            self._record(request, conversation_id, activity, "update", rest[0])
            return web.json_response({"id": rest[0]})
        activity_id = new_activity_id()
        self._record(request, conversation_id, activity, "reply" if rest else "send", activity_id)
        return web.json_response({"id": activity_id})

    def _refuse_new_message(self, conversation_id: str, activity: dict[str, Any]) -> web.Response | None:
        """A 429 beyond Teams' limits, or one of the random 503s; None to take the message."""
        if self.transient_failure_rate and self._random.random() < self.transient_failure_rate:
            self.transient_failures += 1
            return web.json_response({"error": {"code": "ServiceUnavailable"}}, status=503)
        if self.limits is None:
            return None
        tenant = object_at(object_at(activity, "channelData"), "tenant")
        wait = self.limits.admit(conversation_id, str(tenant.get("id") or ""), time.monotonic())
        if wait is None:
            return None
        return web.json_response({"error": {"code": "TooManyRequests"}}, status=429,
                                 headers={"Retry-After": str(max(1, math.ceil(wait)))})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        if self.fail_next:
            return await self._injected_failure()
        parameters = await _json_object(request)
        if not isinstance(parameters, dict):
            return parameters
        members = parameters.get("members") or []
        known = [self.people[m["id"]] for m in members if isinstance(m, dict) and m.get("id") in self.people]
        # Teams has one personal chat per user and bot: creating it again returns the same id.
        conversation_id = known[0].conversation_id if known else "a:1" + secrets.token_urlsafe(45)
        answer: dict[str, Any] = {"id": conversation_id}
        activity = parameters.get("activity")
        if isinstance(activity, dict):
            activity_id = new_activity_id()
            answer["activityId"] = activity_id
            self._record(request, conversation_id, activity, "send", activity_id)
        return web.json_response(answer, status=201)

    def _members(self, rest: list[str]) -> web.Response:
        conversation_id = rest[0]
        accounts = [person.account() for person in self.people.values() if person.conversation_id == conversation_id]
        if rest[1] == "pagedmembers":
            return web.json_response({"members": accounts})
        if len(rest) == 3:
            for account in accounts:
                if rest[2] in (account["id"], account["aadObjectId"]):
                    return web.json_response(account)
            return _not_found("member not found")
        return web.json_response(accounts)

    async def _upload(self, request: web.Request, unique_id: str, name: str) -> web.Response:
        if self.downloads_dir is None:
            return _not_found("uploads are disabled")
        body = await request.read()
        start, end, total = 0, len(body) - 1, len(body)
        content_range = re.match(r"bytes (\d+)-(\d+)/(\d+)", request.headers.get("Content-Range", ""))
        if content_range:
            start, end, total = (int(group) for group in content_range.groups())
        path = self._uploads.get(unique_id)
        if path is None:
            self.downloads_dir.mkdir(parents=True, exist_ok=True)
            path = _free_file_name(self.downloads_dir, Path(name).name or "download")
            self._uploads[unique_id] = path
        with path.open("r+b" if path.exists() else "wb") as handle:
            handle.seek(start)
            handle.write(body)
        if end + 1 < total:
            return web.json_response({"nextExpectedRanges": [f"{end + 1}-"]}, status=202)
        if self.on_file is not None:
            self.on_file(path)
        return web.json_response({"id": unique_id, "name": path.name, "size": total}, status=201)

    def upload_info(self, name: str) -> dict[str, Any]:
        """Where the bot uploads a file the user allowed (the OneDrive upload session Teams creates)."""
        unique_id = uuid.uuid4().hex
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name) or "download"
        return {
            "contentUrl": f"{self.service_url}files/{unique_id}/{safe}",
            "name": name,
            "uploadUrl": f"{self.service_url}uploads/{unique_id}/{safe}",
            "uniqueId": unique_id,
            "fileType": Path(name).suffix.lstrip("."),
        }


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The JSON object a request carries, or the 400 answer the connector gives when there is none."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": {"code": "BadSyntax", "message": "invalid JSON"}}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": {"code": "BadSyntax", "message": "not an object"}}, status=400)
    return body


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": {"code": "NotFound", "message": message}}, status=404)


_BACKLOG = 1024


def _bind_local(port: int | None) -> socket.socket:
    """A listening socket on 127.0.0.1: the remembered port when free (reminders keep reaching the same
    client), else any free port."""
    for candidate in ([port] if port else []) + [0]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(_BACKLOG)
        sock.setblocking(False)
        return sock
    raise OSError("no free port on 127.0.0.1")


def _free_file_name(folder: Path, name: str) -> Path:
    candidate = folder / name
    counter = 1
    while candidate.exists():
        candidate = folder / f"{Path(name).stem} ({counter}){Path(name).suffix}"
        counter += 1
    return candidate


