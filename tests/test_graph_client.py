"""Building the Graph client from the settings (bot.integrations.graph_client): national clouds, the
credential, production's refusal to run without Graph, and TLS through a private CA named by
SSL_CERT_FILE, for the sign-in and the Graph calls alike (the real azure-identity credential against the
stand-in's token endpoint)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import certifi
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from msgraph.generated.models.event import Event

import bot.integrations.graph_client as graph_client_module
from bot.domain.agency import Agency
from bot.integrations.graph import GraphMeetingProvider, build_meeting_provider
from bot.integrations.graph_client import build_graph_client, graph_scope
from bot.services.ports import MeetingRefused, MeetingRequest, MeetingUnavailable
from bot.settings import Settings, SettingsError, load_settings
from tests.fixtures.graph import APP, TENANT, FixedToken, graph_settings_for
from tests.fixtures.tls import private_ca
from tests.graph_server import GraphServer

US_GRAPH = "https://graph.microsoft.us/v1.0"
US_LOGIN = "https://login.microsoftonline.us"
GRAPH_VARIABLES = ("GUICHET_GRAPH_TENANT_ID", "GUICHET_GRAPH_CLIENT_ID", "GUICHET_GRAPH_CLIENT_SECRET",
                   "GUICHET_GRAPH_CERTIFICATE_PATH", "GUICHET_ENV")


class CapturingCredential:
    """Stands in for azure-identity's credential classes: remembers how it was built and the scopes asked
    for, then refuses the sign-in so nothing leaves the machine."""

    built: list[CapturingCredential] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False
        CapturingCredential.built.append(self)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        raise ClientAuthenticationError("AADSTS700016: stopped by the test")

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> type[CapturingCredential]:
    CapturingCredential.built = []
    monkeypatch.setattr(graph_client_module, "ClientSecretCredential", CapturingCredential)
    monkeypatch.setattr(graph_client_module, "CertificateCredential", CapturingCredential)
    return CapturingCredential


def a_request() -> MeetingRequest:
    starts = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    return MeetingRequest(appointment_id="a", organizer_id="o", starts_at=starts, ends_at=starts + timedelta(hours=1),
                          subject="s", body="b", transaction_id="t")


async def test_a_national_cloud_gets_its_endpoint_its_scope_and_its_sign_in_host(
        capture: type[CapturingCredential], agency: Agency, caplog: pytest.LogCaptureFixture) -> None:
    settings = graph_settings_for(US_GRAPH, graph_authority_host=US_LOGIN)
    provider = build_meeting_provider(settings, agency)
    assert provider is not None

    with caplog.at_level(logging.ERROR), pytest.raises(MeetingRefused):
        await provider.create(a_request())
    await provider.close()

    [credential] = capture.built
    assert credential.args == (TENANT, APP, "not-a-real-secret")
    assert credential.kwargs["authority"] == US_LOGIN
    assert credential.scopes == [("https://graph.microsoft.us/.default",)]
    assert credential.closed  # the client built it, the client closed it
    assert "GUICHET_GRAPH_AUTHORITY_HOST" in caplog.records[0].getMessage()


async def test_requests_go_to_the_configured_endpoint(capture: type[CapturingCredential]) -> None:
    client = build_graph_client(graph_settings_for(US_GRAPH, graph_authority_host=US_LOGIN))
    try:
        adapter = client.sdk.request_adapter
        info = client.sdk.users.by_user_id("someone").events.to_post_request_information(Event())
        adapter.set_base_url_for_request_information(info)  # type: ignore[attr-defined]
        assert info.url == f"{US_GRAPH}/users/someone/events"
    finally:
        await client.close()


async def test_a_certificate_replaces_the_secret(capture: type[CapturingCredential], tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"
    pem.write_text("not read by the stand-in credential")
    settings = graph_settings_for(US_GRAPH, graph_client_secret="", graph_certificate_path=pem,
                                  graph_authority_host=US_LOGIN)
    client = build_graph_client(settings)
    await client.close()

    [credential] = capture.built
    assert credential.args == (TENANT, APP)
    assert credential.kwargs["certificate_path"] == str(pem) and credential.kwargs["authority"] == US_LOGIN


def test_the_scope_follows_the_host_only() -> None:
    assert graph_scope("https://graph.microsoft.com/v1.0") == "https://graph.microsoft.com/.default"
    assert graph_scope("https://dod-graph.microsoft.us:443/v1.0") == "https://dod-graph.microsoft.us/.default"


# --- settings ---------------------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in GRAPH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file
    return monkeypatch


def test_production_without_graph_refuses_to_load_naming_what_is_missing(
        clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("GUICHET_ENV", "production")

    with pytest.raises(SettingsError) as refused:
        load_settings()

    message = str(refused.value)
    assert "\n" not in message
    for name in ("GUICHET_GRAPH_TENANT_ID", "GUICHET_GRAPH_CLIENT_ID", "GUICHET_GRAPH_CLIENT_SECRET",
                 "GUICHET_GRAPH_CERTIFICATE_PATH"):
        assert name in message


def test_production_with_graph_loads(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("GUICHET_ENV", "production")
    clean_environment.setenv("GUICHET_GRAPH_TENANT_ID", TENANT)
    clean_environment.setenv("GUICHET_GRAPH_CLIENT_ID", APP)
    clean_environment.setenv("GUICHET_GRAPH_CLIENT_SECRET", "s3cr3t-value")

    settings = load_settings()

    assert settings.env == "production" and settings.graph_configured
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert "s3cr3t-value" not in repr(settings)


def test_a_blank_certificate_line_in_the_env_file_means_no_certificate(clean_environment: pytest.MonkeyPatch) -> None:
    # deployment/.env.example lists every setting: an administrator who fills the secret leaves this one blank.
    clean_environment.setenv("GUICHET_GRAPH_TENANT_ID", TENANT)
    clean_environment.setenv("GUICHET_GRAPH_CLIENT_ID", APP)
    clean_environment.setenv("GUICHET_GRAPH_CLIENT_SECRET", "s3cr3t-value")
    clean_environment.setenv("GUICHET_GRAPH_CERTIFICATE_PATH", "")

    settings = load_settings()

    assert settings.graph_configured and settings.graph_certificate_path is None


def test_development_without_graph_is_local_mode(clean_environment: pytest.MonkeyPatch, agency: Agency) -> None:
    settings = load_settings()

    assert settings.env == "development" and not settings.graph_configured
    assert build_meeting_provider(settings, agency) is None


def test_half_a_graph_configuration_never_loads(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("GUICHET_GRAPH_TENANT_ID", TENANT)

    with pytest.raises(SettingsError, match="GUICHET_GRAPH_CLIENT_ID"):
        load_settings()


@pytest.mark.parametrize("name, url", [
    ("graph_base_url", "http://graph.microsoft.com/v1.0"),
    ("graph_base_url", "graph.microsoft.com"),
    ("graph_base_url", "https://graph.microsoft.us"),  # no version: every request would miss
    ("graph_authority_host", "http://login.microsoftonline.com"),
])
def test_graph_and_sign_in_are_reached_over_https_only(clean_environment: pytest.MonkeyPatch, name: str,
                                                       url: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(**{name: url})


# --- TLS through a private CA -------------------------------------------------------------------------------


@pytest.fixture
async def tls_server(tmp_path: Path) -> Any:
    ca_file, context = private_ca(tmp_path)
    server = GraphServer(ssl_context=context, accepted_tokens={"token-from-local-authority"})
    await server.start()
    yield server, ca_file
    await server.stop()


def _tls_settings(server: GraphServer) -> Settings:
    return graph_settings_for(server.url, graph_authority_host=server.root)


async def test_a_private_ca_in_ssl_cert_file_is_trusted_for_sign_in_and_graph(
        tls_server: tuple[GraphServer, Path], agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    server, ca_file = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    provider = build_meeting_provider(_tls_settings(server), agency)  # the real ClientSecretCredential
    assert isinstance(provider, GraphMeetingProvider)
    try:
        meeting = await provider.create(a_request())
    finally:
        await provider.close()

    assert meeting.join_url
    [sign_in] = server.tokens_issued
    assert sign_in["tenant"] == TENANT and sign_in["client_id"] == APP
    assert sign_in["grant_type"] == "client_credentials"
    assert sign_in["scope"] == "https://localhost/.default"
    assert all(r.status < 400 for r in server.requests)


async def test_without_the_private_ca_nothing_is_sent_and_the_fix_is_logged(
        tls_server: tuple[GraphServer, Path], agency: Agency, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    server, _ = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # public roots only
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    provider = build_meeting_provider(_tls_settings(server), agency)
    assert provider is not None
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(MeetingUnavailable):
            await provider.create(a_request())
    finally:
        await provider.close()

    assert server.tokens_issued == [] and [r for r in server.requests if r.path.startswith("/users")] == []
    assert "SSL_CERT_FILE" in caplog.records[-1].getMessage()


async def test_graph_calls_without_the_private_ca_fail_with_the_fix_logged(
        tls_server: tuple[GraphServer, Path], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    server, _ = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    provider = GraphMeetingProvider(build_graph_client(_tls_settings(server), FixedToken()))
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(MeetingUnavailable):
            await provider.create(a_request())
    finally:
        await provider.close()

    assert server.requests == []
    [line] = caplog.records
    assert "SSL_CERT_FILE" in line.getMessage()


async def test_graph_calls_trust_ssl_cert_file_too(tls_server: tuple[GraphServer, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The Graph half alone (a fixed token): httpx gets the same CA file."""
    server, ca_file = tls_server
    server.accepted_tokens = None
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    provider = GraphMeetingProvider(build_graph_client(_tls_settings(server), FixedToken()))
    try:
        await provider.create(a_request())
    finally:
        await provider.close()

    assert server.requests[0].path == "/users/o/events" and server.requests[0].status == 201
