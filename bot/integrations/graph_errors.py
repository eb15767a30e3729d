"""What a Microsoft Graph failure means: transient (MeetingUnavailable, with Graph's Retry-After) or
permanent (MeetingRefused), and the one log line that tells an administrator what to fix.

The log lines and exception texts carry the HTTP status, Graph's error code and the operation, never
Graph's message text, a person's id, name, address or an event subject: Graph's messages can quote the
mailbox they are about.
"""

from __future__ import annotations

import logging
import re
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from bot.services.ports import MeetingRefused, MeetingUnavailable

log = logging.getLogger("bot.integrations.graph")

# Throttled, or a server or gateway that may answer later; 409 is Exchange's concurrent-update conflict.
TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

ACCESS_POLICY_FIX = (
    "no Teams application access policy covers app {app}: in Teams PowerShell run "
    "New-CsApplicationAccessPolicy -Identity Guichet-Meetings -AppIds {app} then "
    "Grant-CsApplicationAccessPolicy -PolicyName Guichet-Meetings -Group <the counselors' group id> "
    "(not -Global: only the counselors' meetings); it takes effect within 30 minutes"
)
# Least privilege for mailboxes: Exchange Online's RBAC for Applications, scoped to the counselors.
CALENDAR_SCOPE_FIX = (
    "give app {app} Calendars.ReadWrite on the counselors' mailboxes: Exchange Online RBAC for Applications "
    "(New-ManagementRoleAssignment -Role \"Application Calendars.ReadWrite\" with a management scope that "
    "includes this counselor; check with Test-ServicePrincipalAuthorization), or the Microsoft Graph "
    "application permission Calendars.ReadWrite with admin consent (Entra admin center > App registrations > "
    "API permissions: every mailbox of the tenant, so never beside the scoped role)"
)


class Access(StrEnum):
    """What a call touches, and so which application permission it needs."""

    CALENDAR = "calendar events"
    ONLINE_MEETING = "Teams meeting options"
    SCHEDULE = "calendar availability"
    APP_INSTALL = "Teams app installation"

    @property
    def permission(self) -> str:
        return {
            Access.CALENDAR: "Calendars.ReadWrite",
            Access.ONLINE_MEETING: "OnlineMeetings.ReadWrite.All",
            Access.SCHEDULE: "Calendars.ReadWrite (or Calendars.ReadBasic.All for availability alone)",
            Access.APP_INSTALL: "TeamsAppInstallation.ReadWriteSelfForUser.All "
                                "(or TeamsAppInstallation.ReadWriteForUser.All)",
        }[self]


def status_of(error: BaseException) -> int | None:
    return error.response_status_code if isinstance(error, APIError) else None


def code_of(error: BaseException) -> str:
    if isinstance(error, ODataError) and error.error is not None and error.error.code:
        # Graph's codes are identifiers (ErrorAccessDenied, ResourceNotFound); keep it one short token.
        return re.sub(r"[^A-Za-z0-9_.-]", "", error.error.code)[:60]
    return "-"


def _message_of(error: BaseException) -> str:
    if isinstance(error, ODataError) and error.error is not None:
        return error.error.message or ""
    return ""


def retry_after_of(error: BaseException) -> float | None:
    """Graph's Retry-After (seconds or an HTTP date), None when it gave none."""
    headers = error.response_headers if isinstance(error, APIError) else None
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _certificate_problem(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or type(seen).__name__.endswith("CertificateError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def access_hint(access: Access, error: BaseException, app: str) -> str:
    """What the administrator must add for a 403: the Teams access policy or the application permission."""
    if access is Access.ONLINE_MEETING and "application access policy" in _message_of(error).lower():
        return ACCESS_POLICY_FIX.format(app=app or "<client id>")
    if access in (Access.CALENDAR, Access.SCHEDULE):
        return CALENDAR_SCOPE_FIX.format(app=app or "<client id>")
    return (f"grant app {app or '<client id>'} the Microsoft Graph application permission {access.permission} "
            "with admin consent (Entra admin center > App registrations > API permissions)")


def is_graph_failure(error: BaseException) -> bool:
    """Whether `error` is Graph, the network or the sign-in failing (not a bug of ours)."""
    return isinstance(error, APIError | httpx.TransportError | ClientAuthenticationError | ServiceRequestError
                      | ServiceResponseError)


def meeting_error(error: BaseException, access: Access, app: str, *,
                  event_id: str | None = None) -> MeetingUnavailable | MeetingRefused:
    """The port's exception for a Graph failure, after logging it once."""
    if isinstance(error, httpx.TimeoutException):
        log.warning("Microsoft Graph did not answer in time (%s)", access.value)
        return MeetingUnavailable(f"Graph timed out ({access.value})")
    if isinstance(error, httpx.TransportError | ServiceRequestError | ServiceResponseError):
        if _certificate_problem(error):
            log.error("TLS certificate not trusted on the way to Microsoft Graph or sign-in (%s): if a proxy "
                      "inspects TLS, set SSL_CERT_FILE to a CA bundle that includes its certificate", access.value)
        else:
            log.warning("Microsoft Graph unreachable (%s): %s", access.value, type(error).__name__)
        return MeetingUnavailable(f"Graph unreachable ({access.value}): {type(error).__name__}")
    if isinstance(error, ClientAuthenticationError):
        token_status = getattr(error.response, "status_code", None)
        if token_status is not None and (token_status == 429 or token_status >= 500):
            log.warning("Microsoft sign-in unavailable (HTTP %s)", token_status)
            return MeetingUnavailable(f"sign-in unavailable (HTTP {token_status})")
        found = re.search(r"AADSTS\d+", str(error))
        log.error("Microsoft sign-in refused the app's credential (%s): check GUICHET_GRAPH_TENANT_ID, "
                  "GUICHET_GRAPH_CLIENT_ID, the secret or certificate, and GUICHET_GRAPH_AUTHORITY_HOST",
                  found.group(0) if found else "no AADSTS code")
        return MeetingRefused("sign-in refused the app's credential", event_id=event_id)
    status, code = status_of(error), code_of(error)
    reason = f"Graph {status} {code} ({access.value})"
    if status in TRANSIENT_STATUSES:
        wait = retry_after_of(error)
        log.warning("Microsoft Graph busy for %s (%s %s), retry after %s s", access.value, status, code,
                    "?" if wait is None else f"{wait:g}")
        return MeetingUnavailable(reason, wait)
    if status == 403:
        log.error("Microsoft Graph refused access to %s (403 %s): %s", access.value, code,
                  access_hint(access, error, app))
    elif status == 401:
        log.error("Microsoft Graph refused the token (401 %s): check that GUICHET_GRAPH_BASE_URL and "
                  "GUICHET_GRAPH_AUTHORITY_HOST name the same cloud and the tenant is right", code)
    else:
        log.warning("Microsoft Graph refused the request on %s (%s %s)", access.value, status, code)
    return MeetingRefused(reason, event_id=event_id)
