"""Building the Microsoft Graph client (msgraph-sdk over httpx) from the settings: the credential, the
national cloud, the token scope, the trusted certificates and the bounded retries.

Everything that calls Graph (meetings, availability, installing the app) goes through one `GraphClient`,
so the same rules hold for every call:

- the base URL (`GUICHET_GRAPH_BASE_URL`) is set on the request adapter before the SDK client is built,
  and the token scope follows its host (`https://<host>/.default`); the token is only ever sent to that host;
- the credential signs in at `GUICHET_GRAPH_AUTHORITY_HOST` (national clouds have their own);
- TLS is always verified. A private CA (a corporate proxy that inspects TLS) is trusted through the
  standard `SSL_CERT_FILE` variable, applied explicitly to both halves: httpx (the Graph calls) would read
  it by itself, but azure-identity's aiohttp transport (the token) only sees what OpenSSL loaded when
  aiohttp was imported, merged with the system store. Both get the same file here;
- the SDK's retry middleware retries 429/503/504 at most `max_retries` times within one call, and only
  when Graph asks to wait no longer than `max_retry_wait` seconds; anything longer goes back to the
  caller (MeetingUnavailable with Graph's Retry-After) so a durable job waits instead of a held request.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import BaseMiddleware, RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from kiota_http.observability_options import ObservabilityOptions
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as sdk_default_options
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from msgraph_core.middleware.options import GraphTelemetryHandlerOption

from bot.metrics import Metrics
from bot.settings import Settings

# Graph answers most calls within seconds; creating an event with its Teams meeting can take longer.
DEFAULT_TIMEOUT_SECONDS = 30.0
# Within one call: a couple of quick retries. The job around the call retries further, later.
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_RETRY_WAIT_SECONDS = 5.0


@dataclass
class GraphClient:
    """The SDK client and what the integrations need beside it; `close()` releases connections."""

    sdk: GraphServiceClient
    # e.g. https://graph.microsoft.com/v1.0 (for @odata.bind references)
    base_url: str
    # Named in the administrator's log lines (an app id, not personal data).
    client_id: str
    _http: httpx.AsyncClient
    _transports: list[httpx.AsyncBaseTransport]
    _owned_credential: AsyncTokenCredential | None = None

    async def close(self) -> None:
        await self._http.aclose()
        for transport in self._transports:
            await transport.aclose()
        if self._owned_credential is not None:
            await self._owned_credential.close()


class BoundedRetryHandler(RetryHandler):
    """The SDK's RetryHandler, except that it does not sleep inside the call when Graph's Retry-After is
    longer than `max_wait` (the SDK would sleep up to three minutes per retry): the response goes back
    to the caller, which reports the wait."""

    def __init__(self, options: RetryHandlerOption, max_wait: float) -> None:
        super().__init__(options)
        self.max_wait = max_wait

    def should_retry(self, request: httpx.Request, options: RetryHandlerOption, response: httpx.Response) -> bool:
        if not super().should_retry(request, options, response):
            return False
        wait = self._get_retry_after(response)
        return wait is None or wait <= self.max_wait


class MetricsMiddleware(BaseMiddleware):
    """Counts each Graph call by operation and status, and times it (bot.metrics)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        started = time.perf_counter()
        status: int | None = None
        try:
            response = await super().send(request, transport)
            status = response.status_code
            return response
        finally:
            self._metrics.graph_call(request.method, request.url.path, status, time.perf_counter() - started)


def graph_scope(base_url: str) -> str:
    """The token scope for a Graph endpoint: its host's `.default` (each national cloud has its own)."""
    host = urlsplit(base_url).hostname
    if not host:
        raise ValueError("the Graph base URL has no host")
    return f"https://{host}/.default"


def trusted_ca_file() -> str | None:
    """The CA bundle named by SSL_CERT_FILE, if any (read at each build, so tests can set it)."""
    return os.environ.get("SSL_CERT_FILE") or None


def build_credential(settings: Settings) -> AsyncTokenCredential:
    """The app registration's credential (certificate when given, else the secret), signing in at the
    configured authority host."""
    kwargs: dict[str, Any] = {"authority": settings.graph_authority_host}
    cafile = trusted_ca_file()
    if cafile:
        # azure-core builds ssl.create_default_context(cafile=...) from this, as httpx does for Graph.
        kwargs["connection_verify"] = cafile
    if settings.graph_certificate_path:
        return CertificateCredential(settings.graph_tenant_id, settings.graph_client_id,
                                     certificate_path=str(settings.graph_certificate_path), **kwargs)
    return ClientSecretCredential(settings.graph_tenant_id, settings.graph_client_id,
                                  settings.graph_client_secret, **kwargs)


def build_graph_client(
    settings: Settings,
    credential: AsyncTokenCredential | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
    metrics: Metrics | None = None,
) -> GraphClient:
    """A Graph client for the settings' cloud. `credential`: one the caller owns (tests pass a fixed
    token); by default the app registration's, closed with the client."""
    # httpx logs every request's URL at INFO: Graph URLs name counselors and carry Teams join links.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    owned = None
    if credential is None:
        credential = owned = build_credential(settings)
    base_url = settings.graph_base_url.rstrip("/")
    host = urlsplit(base_url).hostname or ""
    cafile = trusted_ca_file()
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cafile) if cafile else True
    http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), http2=True, verify=verify)
    # The SDK's default pipeline (redirects, /me rewriting, telemetry...) with our bounded retry handler.
    retry_options = RetryHandlerOption(delay=0.0, max_retries=max_retries)
    middleware = [
        BoundedRetryHandler(retry_options, max_retry_wait) if isinstance(handler, RetryHandler) else handler
        for handler in KiotaClientFactory.get_default_middleware(sdk_default_options)
    ]
    if metrics is not None:
        # First, so it sees each call as the bot does: after redirects and retries, with its final status.
        middleware.insert(0, MetricsMiddleware(metrics))
    telemetry = sdk_default_options[GraphTelemetryHandlerOption.get_key()]
    assert isinstance(telemetry, GraphTelemetryHandlerOption)
    middleware.append(GraphTelemetryHandler(options=telemetry))
    # msgraph-core's wrapper around these transports does not close them (its aclose() is httpx's no-op):
    # keep them to close ourselves, or every pooled connection leaks.
    transports = [http._transport, *(t for t in http._mounts.values() if t is not None)]
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[graph_scope(base_url)], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth, client=http)
    # The SDK's own trace spans (sent to Application Insights when it is on) without the request URL:
    # Graph URLs name counselors and carry Teams join links.
    adapter.observability_options = ObservabilityOptions(include_euii_attributes=False)
    # Before the client is built: it copies the adapter's base URL, defaulting to the global cloud.
    adapter.base_url = base_url
    return GraphClient(sdk=GraphServiceClient(request_adapter=adapter), base_url=base_url,
                       client_id=settings.graph_client_id, _http=http, _transports=transports,
                       _owned_credential=owned)
