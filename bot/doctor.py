"""`guichet doctor`: the preflight an administrator runs after configuring, and whenever something looks wrong.

One line per check, `OK`, `FAIL` (with the setting, permission or policy to fix) or `SKIP` (why it did not
apply): the settings and what production refuses (bot.production), the agency file, the database and its
migrations, a Bot Framework token for the app id (the bot's own credential: secret or managed identity), a
Microsoft Graph token, and for the agency file's first counselor the calendar (the same mailbox grant that
creating events needs) and the online-meeting call (the Teams application access policy). Exit status 1 on
any FAIL. Nothing secret or personal is printed: app ids and setting names, never a secret, a counselor's
id or name, or Graph's message text.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.item.online_meetings.online_meetings_request_builder import OnlineMeetingsRequestBuilder
from sqlalchemy import text

from bot.adapter import obtain_bot_token
from bot.domain.agency import Agency, AgencyConfigError, load_agency
from bot.integrations.graph_client import GraphClient, build_credential, build_graph_client, graph_scope
from bot.integrations.graph_errors import Access, access_hint, code_of, is_graph_failure, status_of
from bot.production import production_refusals
from bot.settings import Settings, SettingsError
from storage.db import create_engine
from storage.migrate import current_revision, head_revision

Status = Literal["OK", "FAIL", "SKIP"]

# Entra's sign-in error codes an administrator can act on, and what to fix for each.
SIGN_IN_FIXES = {
    "AADSTS7000215": "the client secret is wrong (give the secret's value, not its id)",
    "AADSTS7000222": "the client secret has expired: create a new one",
    "AADSTS700027": "the certificate does not match the app registration",
    "AADSTS700016": "no such application in that tenant: check the client id and the tenant id",
    "AADSTS90002": "no such tenant: check the tenant id",
    "AADSTS90023": "the tenant id is not valid: check it",
}
# Any meeting link: the call only has to be allowed (no meeting is read or changed).
PROBE_JOIN_URL = "https://teams.microsoft.com/l/meetup-join/guichet-doctor"
GRAPH_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Check:
    status: Status
    what: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.what}" + (f": {self.detail}" if self.detail else "")


def run_doctor(load: Callable[[], Settings], write: Callable[[str], object] = print) -> int:
    """Run every check, writing one line each; 1 when any failed."""
    failed = False

    async def run() -> None:
        nonlocal failed
        async for check in checks(load):
            failed |= check.status == "FAIL"
            write(check.line())

    asyncio.run(run())
    return 1 if failed else 0


async def checks(load: Callable[[], Settings]) -> AsyncIterator[Check]:
    try:
        settings = load()
    except SettingsError as error:
        yield Check("FAIL", "settings", str(error))
        return
    yield Check("OK", "settings", f"GUICHET_ENV={settings.env}")
    refusals = production_refusals(settings)
    for refusal in refusals:
        yield Check("FAIL", "production", refusal)
    if settings.env != "production":
        yield Check("SKIP", "production", "GUICHET_ENV=development: what production refuses is not checked")
    elif not refusals:
        yield Check("OK", "production", "authentication on, PostgreSQL, Microsoft Graph, /metrics behind a token")
    agency: Agency | None = None
    try:
        agency = load_agency(settings.agency)
        yield Check("OK", "agency file", f"{agency.id}, {len(agency.counselors)} counselor(s)")
    except AgencyConfigError as error:
        yield Check("FAIL", "agency file", str(error))
    async for check in _database(settings):
        yield check
    yield await _bot_framework_token(settings)
    async for check in _graph(settings, agency):
        yield check


async def _database(settings: Settings) -> AsyncIterator[Check]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach it is the line to show
        # The URL is not printed: it may hold the database password.
        yield Check("FAIL", "database", f"unreachable ({type(error).__name__}): check GUICHET_DATABASE_URL, "
                                        "the server and the network")
        yield Check("SKIP", "database migrations", "the database is unreachable")
        return
    finally:
        await engine.dispose()
    yield Check("OK", "database", f"reachable ({engine.dialect.name})")
    current, head = await current_revision(settings.database_url), head_revision()
    if current == head:
        yield Check("OK", "database migrations", f"current ({head})")
    elif current is None:
        yield Check("FAIL", "database migrations", "no schema yet: run `guichet db upgrade`")
    else:
        yield Check("FAIL", "database migrations", f"at {current}, this version needs {head}: "
                                                   "run `guichet db upgrade`")


async def _bot_framework_token(settings: Settings) -> Check:
    what = "Bot Framework token"
    if not settings.app_id:
        return Check("SKIP", what, "no MicrosoftAppId: authentication is off (local mode only)")
    identity = f"app {settings.app_id} ({settings.app_type})"
    try:
        await obtain_bot_token(settings)
    except PermissionError as error:  # MSAL's answer for a refused client secret
        return Check("FAIL", what, f"sign-in refused for {identity}: " + _sign_in_fix(
            str(error), "MicrosoftAppPassword", "MicrosoftAppId", "MicrosoftAppTenantId"))
    except KeyError:  # the managed identity endpoint answered without a token
        return Check("FAIL", what, f"no token for {identity}: MicrosoftAppId must be the client id of the "
                                   "user-assigned managed identity attached to this container app")
    except Exception as error:  # unreachable endpoints, incomplete configuration
        return Check("FAIL", what, f"no token for {identity} ({type(error).__name__}): check the network to "
                                   "login.microsoftonline.com (or the managed identity endpoint) and "
                                   "MicrosoftAppType, MicrosoftAppTenantId")
    return Check("OK", what, identity)


def _sign_in_fix(message: str, secret: str, client_id: str, tenant: str) -> str:
    found = re.search(r"AADSTS\d+", message)
    code = found.group(0) if found else ""
    fix = SIGN_IN_FIXES.get(code, "the sign-in was refused")
    names = {"AADSTS7000215": secret, "AADSTS7000222": secret, "AADSTS700016": f"{client_id}, {tenant}",
             "AADSTS90002": tenant, "AADSTS90023": tenant}.get(code, f"{client_id}, {secret}, {tenant}")
    return f"{fix} ({code or 'no AADSTS code'}; check {names})"


async def _graph(settings: Settings, agency: Agency | None) -> AsyncIterator[Check]:
    token, calendar, meetings = "Microsoft Graph token", "counselor's calendar", "Teams online meetings"
    if not settings.graph_configured:
        for what in (token, calendar, meetings):
            yield Check("SKIP", what, "Microsoft Graph not configured: local mode, no Teams meetings")
        return
    credential = build_credential(settings)
    try:
        try:
            # As the Graph client asks (continuous access evaluation on), so its calls reuse this token.
            await credential.get_token(graph_scope(settings.graph_base_url), enable_cae=True)
        except ClientAuthenticationError as error:
            secret = ("GUICHET_GRAPH_CERTIFICATE_PATH" if settings.graph_certificate_path
                      else "GUICHET_GRAPH_CLIENT_SECRET")
            yield Check("FAIL", token, f"sign-in refused for app {settings.graph_client_id}: " + _sign_in_fix(
                str(error), secret, "GUICHET_GRAPH_CLIENT_ID", "GUICHET_GRAPH_TENANT_ID"))
            yield Check("SKIP", calendar, "needs a Microsoft Graph token")
            yield Check("SKIP", meetings, "needs a Microsoft Graph token")
            return
        except Exception as error:  # the network, TLS, a wrong authority host
            yield Check("FAIL", token, f"sign-in unreachable ({type(error).__name__}): check "
                                       "GUICHET_GRAPH_AUTHORITY_HOST, the network, and SSL_CERT_FILE behind a "
                                       "TLS-inspecting proxy")
            yield Check("SKIP", calendar, "needs a Microsoft Graph token")
            yield Check("SKIP", meetings, "needs a Microsoft Graph token")
            return
        yield Check("OK", token, f"app {settings.graph_client_id}")
        if agency is None or not agency.counselors:
            yield Check("SKIP", calendar, "needs a valid agency file with a counselor")
            yield Check("SKIP", meetings, "needs a valid agency file with a counselor")
            return
        graph = build_graph_client(settings, credential, timeout=GRAPH_TIMEOUT_SECONDS, max_retries=0)
        try:
            yield await _graph_call(graph, calendar, Access.CALENDAR, lambda: _read_calendar(graph, agency))
            yield await _graph_call(graph, meetings, Access.ONLINE_MEETING, lambda: _find_meeting(graph, agency))
        finally:
            await graph.close()
    finally:
        await credential.close()


async def _read_calendar(graph: GraphClient, agency: Agency) -> None:
    # One event id at most: nothing of the counselor's appointments is read.
    query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters(top=1, select=["id"])
    events = graph.sdk.users.by_user_id(agency.counselors[0].id).events
    await events.get(RequestConfiguration(query_parameters=query))


async def _find_meeting(graph: GraphClient, agency: Agency) -> None:
    # The call the bot makes to set a meeting's options, for a link that matches nothing.
    query = OnlineMeetingsRequestBuilder.OnlineMeetingsRequestBuilderGetQueryParameters(
        filter=f"JoinWebUrl eq '{PROBE_JOIN_URL}'")
    await graph.sdk.users.by_user_id(agency.counselors[0].id).online_meetings.get(
        RequestConfiguration(query_parameters=query))


async def _graph_call(graph: GraphClient, what: str, access: Access, call: Callable[[], Awaitable[None]]) -> Check:
    """OK when Graph allowed the call; else the permission, policy or setting to fix."""
    where = "the agency file's first counselor"
    try:
        await call()
    except Exception as error:
        if not is_graph_failure(error):
            raise
        status, code = status_of(error), code_of(error)
        if status == 404 and access is Access.ONLINE_MEETING and code not in ("ErrorInvalidUser", "UserNotFound"):
            return Check("OK", what, f"allowed for {where} (application access policy)")
        if status == 403:
            fix = access_hint(access, error, graph.client_id)
            return Check("FAIL", what, f"refused for {where} (403 {code}): {fix}")
        if status == 404:
            return Check("FAIL", what, f"{where} is not a user of the tenant (404 {code}): their id in the agency "
                                       "file must be their Entra object id")
        if status == 401:
            return Check("FAIL", what, f"token refused (401 {code}): GUICHET_GRAPH_BASE_URL and "
                                       "GUICHET_GRAPH_AUTHORITY_HOST must name the same cloud")
        detail = f"{status} {code}" if status else type(error).__name__
        return Check("FAIL", what, f"Microsoft Graph failed ({detail}); run `guichet doctor` again later")
    return Check("OK", what, f"reachable for {where}" if access is Access.CALENDAR
                 else f"allowed for {where} (application access policy)")
