"""A Direct Line stand-in for tests, shaped like Azure's Web Chat channel with enhanced authentication:

- `POST /v3/directline/tokens/generate` with the channel secret: a token bound to the user id asked for and
  to a conversation it names (`conversationId`);
- `POST /v3/directline/conversations` with a token: the token's conversation (the one generate named);
  a token is refused in any other conversation, as Azure refuses it;
- `POST …/conversations/{id}/activities`: the client's activity, forwarded to the bot's /api/messages with
  channelId `webchat` and `from.id` overwritten by the token's user id (what enhanced authentication does);
- `GET …/conversations/{id}/activities?watermark=`: what the client polls (both directions);
- the connector side the bot answers to (`/v3/conversations/{id}/activities[/{reply_to}]`); updating or
  deleting an activity is refused with 405, as Direct Line does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.harness import free_port

BOT_ID = "guichet-bot"


@web.middleware
async def _cors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Direct Line answers browsers from any origin (its tokens, not CORS, protect conversations)."""
    asked = request.headers.get("Access-Control-Request-Headers", "")
    headers = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": asked or "Authorization",
               "Access-Control-Allow-Methods": "GET, POST"}
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    response.headers.update(headers)
    return response


@dataclass
class DirectLineStandIn:
    secret: str = "dl-secret-for-tests"
    # The bot's /api/messages, once known.
    bot_messages_url: str = ""
    # Each token request: (Authorization header, JSON body).
    requests: list[tuple[str, Any]] = field(default_factory=list)
    down: bool = False
    # token -> user id; token -> its conversation; conversation id -> its activities in order; what the bot
    # received.
    tokens: dict[str, str] = field(default_factory=dict)
    token_conversations: dict[str, str] = field(default_factory=dict)
    conversations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    to_bot: list[dict[str, Any]] = field(default_factory=list)
    refused_changes: int = 0
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[_cors])
        base = "/v3/directline"
        app.router.add_post(base + "/tokens/generate", self._generate)
        app.router.add_post(base + "/conversations", self._start_conversation)
        app.router.add_post(base + "/conversations/{cid}/activities", self._from_client)
        app.router.add_get(base + "/conversations/{cid}/activities", self._poll)
        app.router.add_post("/v3/conversations/{cid}/activities", self._from_bot)
        app.router.add_post("/v3/conversations/{cid}/activities/{reply_to}", self._from_bot)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._refuse)
        app.router.add_delete("/v3/conversations/{cid}/activities/{aid}", self._refuse)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _user_of(self, request: web.Request, conversation_id: str | None = None) -> str | None:
        """The token's user id; None for an unknown token, or one used in another conversation than its own."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if conversation_id is not None and self.token_conversations.get(token) != conversation_id:
            return None
        return self.tokens.get(token)

    async def _generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.headers.get("Authorization", ""), body))
        if self.down:
            return web.json_response({"error": {"code": "ServiceError"}}, status=502)
        if request.headers.get("Authorization") != f"Bearer {self.secret}":
            return web.json_response({"error": {"code": "BadArgument"}}, status=403)
        token = "dltoken." + secrets.token_hex(16)
        conversation_id = secrets.token_hex(10)
        self.tokens[token] = body["user"]["id"]
        self.token_conversations[token] = conversation_id
        return web.json_response({"conversationId": conversation_id, "token": token, "expires_in": 3600})

    async def _start_conversation(self, request: web.Request) -> web.Response:
        if self._user_of(request) is None:
            return web.json_response({"error": {"code": "TokenExpired"}}, status=403)
        token = request.headers["Authorization"].removeprefix("Bearer ")
        # A generated token names its conversation: starting one is joining that one.
        conversation_id = self.token_conversations[token]
        self.conversations.setdefault(conversation_id, [])
        return web.json_response({"conversationId": conversation_id, "token": token, "expires_in": 3600}, status=201)

    async def _from_client(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["cid"]
        user_id = self._user_of(request, conversation_id)
        if user_id is None or conversation_id not in self.conversations:
            return web.json_response({"error": {"code": "BadArgument"}}, status=403)
        activity = await request.json()
        activity.update({
            "id": f"{conversation_id}|{len(self.conversations[conversation_id]):07d}", "channelId": "webchat",
            "serviceUrl": self.url, "conversation": {"id": conversation_id},
            "from": {**(activity.get("from") or {}), "id": user_id},  # enhanced authentication: the token's id
            "recipient": {"id": BOT_ID, "name": "Guichet"},
        })
        self.conversations[conversation_id].append(activity)
        self.to_bot.append(activity)
        assert self._http is not None
        async with self._http.post(self.bot_messages_url, json=activity) as response:
            if response.status >= 400:
                return web.json_response({"error": {"code": "BotError", "status": response.status}}, status=502)
        return web.json_response({"id": activity["id"]})

    async def _poll(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["cid"]
        if self._user_of(request, conversation_id) is None or conversation_id not in self.conversations:
            return web.json_response({"error": {"code": "BadArgument"}}, status=403)
        activities = self.conversations[conversation_id]
        start = int(request.query.get("watermark") or 0)
        return web.json_response({"activities": activities[start:], "watermark": str(len(activities))})

    async def _from_bot(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["cid"]
        activity = await request.json()
        if conversation_id not in self.conversations:
            return web.json_response({"error": {"code": "BadArgument"}}, status=404)
        activity["id"] = f"{conversation_id}|{len(self.conversations[conversation_id]):07d}"
        self.conversations[conversation_id].append(activity)
        return web.json_response({"id": activity["id"]})

    async def _refuse(self, _request: web.Request) -> web.Response:
        self.refused_changes += 1
        return web.json_response({"error": {"code": "BadArgument",
                                            "message": "This channel does not support this operation"}}, status=405)
