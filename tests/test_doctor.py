"""`guichet doctor` against local stand-ins: the Graph test server (over TLS with a private CA, as Entra and Graph
are reached) also plays Entra's token endpoint for the Graph app registration and for the bot's own sign-in
at the `botframework.com` tenant (GUICHET_BOT_LOGIN_URL). A configured production passes every line; each
failure an administrator can meet is named with what to fix, and the exit status says so. No secret, no
counselor's id or name, ever appears in what it prints."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import msal
import pytest
from botframework.connector.auth import ManagedIdentityAppCredentials

import bot.cli
from bot.domain.agency import Agency
from storage.migrate import upgrade_database
from tests.fixtures.graph import APP, TENANT
from tests.fixtures.tls import private_ca
from tests.graph_server import GraphServer
from tests.identity_server import APP_SERVICE_PATH, IdentityServer

BOT_APP = "3f1b8d0e-0000-4000-8000-00000000a11d"
BOT_SECRET = "bot-secret-value-never-shown"
GRAPH_SECRET = "graph-secret-value-never-shown"
METRICS_TOKEN = "m" * 64
CHECKS = ["settings", "production", "agency file", "database", "database migrations", "Bot Framework token",
          "Microsoft Graph token", "counselor's calendar", "Teams online meetings"]


@pytest.fixture
async def entra_and_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GraphServer]:
    ca_file, context = private_ca(tmp_path)
    server = GraphServer(ssl_context=context, accepted_tokens={"token-from-local-authority"},
                         accepted_secrets={BOT_SECRET, GRAPH_SECRET})
    await server.start()
    # The private CA, for azure-identity and httpx (SSL_CERT_FILE) and for MSAL's requests (REQUESTS_CA_BUNDLE).
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield server
    await server.stop()


@pytest.fixture
def configured(entra_and_graph: GraphServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               agency_path: Path) -> dict[str, str]:
    """Development settings with everything configured (production's own needs are added by the tests)."""
    for name in list(os.environ):
        if name.upper().startswith(("GUICHET_", "MICROSOFTAPP")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    server = entra_and_graph
    values = {
        "GUICHET_AGENCY": str(agency_path),
        "GUICHET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/doctor.db",
        "MicrosoftAppId": BOT_APP, "MicrosoftAppPassword": BOT_SECRET,
        "GUICHET_BOT_LOGIN_URL": f"{server.root}/botframework.com",
        "GUICHET_GRAPH_TENANT_ID": TENANT, "GUICHET_GRAPH_CLIENT_ID": APP, "GUICHET_GRAPH_CLIENT_SECRET": GRAPH_SECRET,
        "GUICHET_GRAPH_BASE_URL": server.url, "GUICHET_GRAPH_AUTHORITY_HOST": server.root,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


async def run_doctor() -> int:
    """`guichet doctor` as the command runs it (its own event loop), while the stand-ins answer on this one."""
    return await asyncio.to_thread(bot.cli.main, ["doctor"])


async def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    """Run `guichet doctor`; its exit status and each check's line by name."""
    status = await run_doctor()
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        verdict, _, rest = line.partition("  ")
        name = rest.strip().split(":")[0]
        lines[name] = f"{verdict.strip()} {rest.strip()}"
    assert list(lines) == CHECKS, out
    for secret in (BOT_SECRET, GRAPH_SECRET, METRICS_TOKEN):
        assert secret not in out
    return status, lines


def _no_personal_data(lines: dict[str, str], agency: Agency) -> None:
    text = "\n".join(lines.values())
    for counselor in agency.counselors:
        assert counselor.id not in text and counselor.display_name not in text


def failures(lines: dict[str, str]) -> dict[str, str]:
    return {name: line for name, line in lines.items() if line.startswith("FAIL")}


async def managed_identity(monkeypatch: pytest.MonkeyPatch, client_id: str) -> IdentityServer:
    """The bot as a user-assigned managed identity, its token from the platform's endpoint (a local stand-in,
    named by the variables Container Apps sets)."""
    identity = IdentityServer(client_id=client_id)
    await identity.start()
    monkeypatch.setattr(ManagedIdentityAppCredentials, "global_token_cache", msal.TokenCache())
    for name, value in {"IDENTITY_ENDPOINT": identity.root + APP_SERVICE_PATH,
                        "IDENTITY_HEADER": identity.header_secret, "MicrosoftAppType": "UserAssignedMSI",
                        "MicrosoftAppPassword": "", "MicrosoftAppTenantId": TENANT}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GUICHET_BOT_LOGIN_URL")
    return identity


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_configured_production_passes_every_check(
        configured: dict[str, str], database_url: str, entra_and_graph: GraphServer, agency: Agency,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """As on Azure Container Apps: PostgreSQL, a managed identity for the bot, Graph, a metrics token."""
    await upgrade_database(database_url)
    identity = await managed_identity(monkeypatch, BOT_APP)
    for name, value in {"GUICHET_ENV": "production", "GUICHET_DATABASE_URL": database_url,
                        "GUICHET_METRICS_TOKEN": METRICS_TOKEN}.items():
        monkeypatch.setenv(name, value)
    try:
        status, lines = await doctor(capsys)
    finally:
        await identity.stop()

    assert status == 0, lines
    assert all(line.startswith("OK ") for line in lines.values()), lines
    assert "postgresql" in lines["database"] and "UserAssignedMSI" in lines["Bot Framework token"]
    assert identity.issued == ["managed-identity-token-1"]
    _no_personal_data(lines, agency)


async def test_every_check_passes_against_the_stand_ins(
        configured: dict[str, str], entra_and_graph: GraphServer, agency: Agency,
        capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])

    status, lines = await doctor(capsys)

    assert status == 0, lines
    assert failures(lines) == {}
    assert lines["production"].startswith("SKIP")  # development
    assert all(line.startswith("OK ") for name, line in lines.items() if name != "production"), lines
    # The bot's own token: its app id, at the Bot Framework's tenant, for the connector's audience.
    bot_sign_in = [t for t in entra_and_graph.tokens_issued if t["tenant"] == "botframework.com"]
    assert [(t["client_id"], t["scope"], t["grant_type"]) for t in bot_sign_in] == [
        (BOT_APP, "https://api.botframework.com/.default", "client_credentials")]
    graph_sign_in = [t for t in entra_and_graph.tokens_issued if t["tenant"] == TENANT]
    assert [t["client_id"] for t in graph_sign_in] == [APP]
    first = agency.counselors[0].id
    calendar_read = entra_and_graph.requests_to("GET", f"^/users/{first}/events$")
    assert [r.query for r in calendar_read] == [{"$top": "1", "$select": "id"}], "one event id at most is read"
    assert entra_and_graph.requests_to("GET", f"^/users/{first}/onlineMeetings$")
    assert not [r for r in entra_and_graph.requests if r.method != "GET" and r.path.startswith("/users")], \
        "the doctor changes nothing"
    _no_personal_data(lines, agency)


@pytest.mark.parametrize("failure, check, expected", [
    ("calendar_permission", "counselor's calendar", ["403 ErrorAccessDenied", "Application Calendars.ReadWrite",
                                                     APP]),
    ("meeting_permission", "Teams online meetings", ["403", "OnlineMeetings.ReadWrite.All"]),
    ("access_policy", "Teams online meetings", ["New-CsApplicationAccessPolicy", "Grant-CsApplicationAccessPolicy",
                                                "-Group", APP]),
])
async def test_a_missing_permission_or_policy_is_named(
        failure: str, check: str, expected: list[str], configured: dict[str, str], entra_and_graph: GraphServer,
        agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])
    entra_and_graph.fail(failure, method="GET", path="/events$" if check == "counselor's calendar"
                         else "/onlineMeetings$")

    status, lines = await doctor(capsys)

    assert status == 1
    assert list(failures(lines)) == [check]
    for words in expected:
        assert words in lines[check]
    _no_personal_data(lines, agency)


async def test_a_wrong_graph_secret_is_named(configured: dict[str, str], entra_and_graph: GraphServer,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])
    monkeypatch.setenv("GUICHET_GRAPH_CLIENT_SECRET", "an-old-secret")

    status, lines = await doctor(capsys)

    assert status == 1
    assert list(failures(lines)) == ["Microsoft Graph token"]
    assert "GUICHET_GRAPH_CLIENT_SECRET" in lines["Microsoft Graph token"]
    assert "AADSTS7000215" in lines["Microsoft Graph token"]
    assert lines["counselor's calendar"].startswith("SKIP") and lines["Teams online meetings"].startswith("SKIP")
    assert "an-old-secret" not in "\n".join(lines.values())


async def test_a_wrong_bot_secret_is_named(configured: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])
    monkeypatch.setenv("MicrosoftAppPassword", "an-old-bot-secret")

    status, lines = await doctor(capsys)

    assert status == 1
    assert list(failures(lines)) == ["Bot Framework token"]
    assert "MicrosoftAppPassword" in lines["Bot Framework token"] and "AADSTS7000215" in lines["Bot Framework token"]
    assert "an-old-bot-secret" not in "\n".join(lines.values())


async def test_a_counselor_unknown_to_the_tenant_is_named(configured: dict[str, str], entra_and_graph: GraphServer,
                                                          agency: Agency, capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])
    entra_and_graph.users = {"someone-else"}

    status, lines = await doctor(capsys)

    assert status == 1
    assert "Entra object id" in lines["counselor's calendar"]
    _no_personal_data(lines, agency)


async def test_a_database_behind_its_migrations_is_named(configured: dict[str, str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = await doctor(capsys)  # never migrated

    assert status == 1
    assert list(failures(lines)) == ["database migrations"]
    assert "guichet db upgrade" in lines["database migrations"]


async def test_production_refusals_and_a_broken_agency_file_are_lines_too(
        configured: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])
    monkeypatch.setenv("GUICHET_ENV", "production")  # on SQLite, without a metrics token, a test sign-in URL
    broken = tmp_path / "agency.toml"
    broken.write_text("id = 'x'\n")
    monkeypatch.setenv("GUICHET_AGENCY", str(broken))
    status = await run_doctor()
    out = capsys.readouterr().out

    assert status == 1
    production = [line for line in out.splitlines() if line.startswith("FAIL  production")]
    assert [any(name in line for line in production) for name in (
        "GUICHET_DATABASE_URL", "GUICHET_METRICS_TOKEN", "GUICHET_BOT_LOGIN_URL")] == [True, True, True]
    assert any(line.startswith("FAIL  agency file") for line in out.splitlines())


def test_invalid_settings_are_the_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GUICHET_DATABASE_URL", "mysql://somewhere/guichet")

    assert bot.cli.main(["doctor"]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("FAIL  settings") and "database_url" in line


@pytest.mark.parametrize("identity_client_id, verdict", [(BOT_APP, "OK"), ("another-identity", "FAIL")])
async def test_a_managed_identity_gets_its_token_from_the_platform(
        identity_client_id: str, verdict: str, configured: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    await upgrade_database(configured["GUICHET_DATABASE_URL"])
    identity = await managed_identity(monkeypatch, identity_client_id)
    try:
        status, lines = await doctor(capsys)
    finally:
        await identity.stop()

    assert lines["Bot Framework token"].startswith(verdict)
    assert status == (0 if verdict == "OK" else 1)
    assert [r.query["resource"] for r in identity.requests] == ["https://api.botframework.com"]
    if verdict == "FAIL":
        assert "client id of the user-assigned managed identity" in lines["Bot Framework token"]
