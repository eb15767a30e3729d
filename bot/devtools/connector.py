"""The Bot Connector stand-in: the `serviceUrl` of every activity, where the bot sends what the user sees.

It answers the Bot Framework Connector API as Teams' connector does: replies, sends, updates and
deletes of activities, new conversations, member lookups, and the OneDrive upload session of a file
the user allowed.
"""

from __future__ import annotations

import re
import secrets
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.devtools.activities import Identity, new_activity_id

ConnectorCallback = Callable[[str, str, dict[str, Any], str], None]
"""(event, conversation id, activity, activity id); event is "send", "reply", "update" or "delete"."""


class ConnectorStub:
    """A local Bot Connector: the bot's `serviceUrl`. Answers like the real one ({"id": ...}, 200/201)."""

    def __init__(
        self,
        identity: Identity,
        on_activity: ConnectorCallback,
        *,
        downloads_dir: Path | None = None,
        on_file: Callable[[Path], None] | None = None,
    ) -> None:
        self.identity = identity
        self.on_activity = on_activity
        self.on_file = on_file
        self.downloads_dir = downloads_dir
        self.received: list[dict[str, Any]] = []
        self.service_url = ""
        self._uploads: dict[str, Path] = {}
        self._runner: web.AppRunner | None = None

    async def start(self, port: int | None = None) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        # One catch-all route: bots join serviceUrl and path with or without a slash between them.
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = _bind_local(port)
        site = web.SockSite(self._runner, sock)
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
            self.on_activity("delete", conversation_id, {}, rest[0])
            return web.json_response({})
        if method not in ("POST", "PUT") or len(rest) > 1:
            return _not_found("unknown path")
        try:
            activity = await request.json()
        except ValueError:
            return web.json_response({"error": {"code": "BadSyntax", "message": "invalid JSON"}}, status=400)
        if not isinstance(activity, dict):
            return web.json_response(
                {"error": {"code": "BadSyntax", "message": "not an activity"}}, status=400
            )
        self.received.append(activity)
        if method == "PUT":
            self.on_activity("update", conversation_id, activity, rest[0])
            return web.json_response({"id": rest[0]})
        activity_id = new_activity_id()
        self.on_activity("reply" if rest else "send", conversation_id, activity, activity_id)
        return web.json_response({"id": activity_id})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        try:
            parameters = await request.json()
        except ValueError:
            return web.json_response({"error": {"code": "BadSyntax", "message": "invalid JSON"}}, status=400)
        members = parameters.get("members") or [] if isinstance(parameters, dict) else []
        ours = any(isinstance(m, dict) and m.get("id") == self.identity.user_id for m in members)
        # Teams has one personal chat per user and bot: creating it again returns the same id.
        conversation_id = self.identity.conversation_id if ours else "a:1" + secrets.token_urlsafe(45)
        answer: dict[str, Any] = {"id": conversation_id}
        activity = parameters.get("activity") if isinstance(parameters, dict) else None
        if isinstance(activity, dict):
            self.received.append(activity)
            activity_id = new_activity_id()
            answer["activityId"] = activity_id
            self.on_activity("send", conversation_id, activity, activity_id)
        return web.json_response(answer, status=201)

    def _members(self, rest: list[str]) -> web.Response:
        account = self.identity.account()
        if rest[1] == "pagedmembers":
            return web.json_response({"members": [account]})
        if len(rest) == 3:
            if rest[2] in (account["id"], account["aadObjectId"]):
                return web.json_response(account)
            return _not_found("member not found")
        return web.json_response([account])

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


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": {"code": "NotFound", "message": message}}, status=404)


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
        sock.listen(128)
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


