"""A Direct Line stand-in for tests: `POST /v3/directline/tokens/generate` with the channel secret."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.harness import free_port


@dataclass
class DirectLineStandIn:
    secret: str = "dl-secret-for-tests"
    # Each token request: (Authorization header, JSON body).
    requests: list[tuple[str, Any]] = field(default_factory=list)
    down: bool = False
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/directline/tokens/generate", self._generate)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.headers.get("Authorization", ""), body))
        if self.down:
            return web.json_response({"error": {"code": "ServiceError"}}, status=502)
        if request.headers.get("Authorization") != f"Bearer {self.secret}":
            return web.json_response({"error": {"code": "BadArgument"}}, status=403)
        return web.json_response({"conversationId": secrets.token_hex(8), "token": "dltoken." + secrets.token_hex(16),
                                  "expires_in": 3600})
