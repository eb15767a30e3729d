"""A local stand-in for the managed-identity token endpoint, in the two shapes MSAL's ManagedIdentityClient
(and so botframework-connector's ManagedIdentityAppCredentials) speaks:

- App Service, Functions and Container Apps: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=…&client_id=…`
  with the `X-IDENTITY-HEADER: $IDENTITY_HEADER` secret; the answer carries `expires_on` (epoch seconds);
- a virtual machine's IMDS: `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01…`
  with `Metadata: true` (MSAL reads the host from AZURE_POD_IDENTITY_AUTHORITY_HOST, as on AKS); the answer
  carries `expires_in`.

Only the user-assigned identity `client_id` gets a token; each token is new (token-1, token-2…), so a test
sees when a client asked again. `lifetime` below five minutes makes MSAL ask again on every use.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.harness import free_port

APP_SERVICE_PATH = "/msi/token"
IMDS_PATH = "/metadata/identity/oauth2/token"


@dataclass
class IdentityRequest:
    shape: str  # "app service" or "imds"
    query: dict[str, str]


@dataclass
class IdentityServer:
    client_id: str
    lifetime: int = 3600
    header_secret: str = field(default_factory=lambda: secrets.token_hex(8))
    requests: list[IdentityRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(APP_SERVICE_PATH, self._app_service)
        app.router.add_get(IMDS_PATH, self._imds)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _token(self, request: web.Request, shape: str) -> tuple[str, str] | web.Response:
        self.requests.append(IdentityRequest(shape, dict(request.query)))
        if request.query.get("client_id") != self.client_id:
            return web.json_response({"error": "invalid_request",
                                      "error_description": "Identity not found"}, status=400)
        resource = request.query.get("resource", "")
        token = f"managed-identity-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return token, resource

    async def _app_service(self, request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.header_secret:
            return web.json_response({"statusCode": 401, "message": "Unauthorized"}, status=401)
        if request.query.get("api-version") != "2019-08-01":
            return web.json_response({"statusCode": 400, "message": "api-version"}, status=400)
        answer = self._token(request, "app service")
        if isinstance(answer, web.Response):
            return answer
        token, resource = answer
        return web.json_response({"access_token": token, "expires_on": str(int(time.time()) + self.lifetime),
                                  "resource": resource, "token_type": "Bearer", "client_id": self.client_id})

    async def _imds(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata") != "true":
            return web.json_response({"error": "invalid_request", "error_description": "Metadata header"},
                                     status=400)
        answer = self._token(request, "imds")
        if isinstance(answer, web.Response):
            return answer
        token, resource = answer
        return web.json_response({"access_token": token, "expires_in": str(self.lifetime), "resource": resource,
                                  "token_type": "Bearer", "client_id": self.client_id})
