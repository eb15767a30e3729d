"""The servers a benchmark runs over loopback HTTP: our bot and its two baselines.

- `bare_app`: the floor. An aiohttp handler that reads the activity and POSTs one reply to the
  connector, nothing else.
- `echo_app`: the stock botbuilder 4.17 echo bot, as the SDK samples write it (CloudAdapter with
  ConfigurationBotFrameworkAuthentication, an ActivityHandler, authentication off). Nothing of ours.
- `guichet_app`: the real bot, `bot.app.create_app`.
The Bot Connector they all reply to is bot/devtools' connector stand-in (see bench/driver.py).

`python -m bench.servers {bare,echo} --port P` runs a baseline alone, for the benchmarks that put
each server in its own process.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: web.Application, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# --- the floor: a bare aiohttp handler ---------------------------------------------------------------

def bare_app() -> web.Application:
    """Receive an activity, POST one reply to its serviceUrl, answer 201: the least any bot does."""
    app = web.Application()
    sessions: list[aiohttp.ClientSession] = []

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        yield
        await sessions[0].close()

    async def messages(request: web.Request) -> web.Response:
        activity = json.loads(await request.read())
        service_url = activity["serviceUrl"].rstrip("/")
        conversation_id = activity["conversation"]["id"]
        reply = {"type": "message", "text": f"Echo: {activity.get('text')}", "replyToId": activity.get("id"),
                 "conversation": activity["conversation"], "from": activity["recipient"],
                 "recipient": activity["from"]}
        url = f"{service_url}/v3/conversations/{conversation_id}/activities/{activity.get('id')}"
        async with sessions[0].post(url, json=reply) as response:
            await response.read()
        return web.Response(status=201)

    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/api/messages", messages)
    return app


# --- the stock SDK echo bot --------------------------------------------------------------------------

def echo_app() -> web.Application:
    """The botbuilder samples' echo bot (02.echo-bot), unchanged but for the imports' grouping."""
    from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

    class DefaultConfig:
        PORT = 3978
        APP_ID = ""
        APP_PASSWORD = ""
        APP_TYPE = "MultiTenant"
        APP_TENANTID = ""

    class EchoBot(ActivityHandler):
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            text = f"Echo: {turn_context.activity.text}"
            await turn_context.send_activity(MessageFactory.text(text, text))

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(DefaultConfig()))
    bot = EchoBot()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot)  # type: ignore[return-value]

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="run one benchmark baseline server")
    parser.add_argument("server", choices=["bare", "echo"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = bare_app() if args.server == "bare" else echo_app()
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, backlog=1024)


if __name__ == "__main__":
    main()
