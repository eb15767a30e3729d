"""The Teams meetings of video appointments, through Microsoft Graph: `GraphMeetingProvider` implements
bot.services.ports.MeetingProvider over msgraph-sdk; `build_meeting_provider` builds it from the settings.

A meeting is an event in the counselor's calendar with a Teams meeting (no attendees: the citizen joins
as a guest through the link), then the meeting's options are set so the citizen waits in the lobby until
the counselor admits them, only the counselor presents, and, where the agency forbids it, nobody records
or transcribes. Requests, in order (organizer = the counselor's Entra object id):

- create: POST /users/{organizer}/events (transactionId = the request's: a retried creation gets the
  same event back); GET the event while its Teams link is not there yet (bounded); GET
  /users/{organizer}/onlineMeetings?$filter=JoinWebUrl eq '<link>'; PATCH /users/{organizer}/onlineMeetings/{id}.
- move: GET the event's link, PATCH /users/{organizer}/events/{id} (start, end); if the link changed,
  the new Teams meeting gets the same options.
- cancel: POST /users/{organizer}/events/{id}/cancel with the comment (an event already gone is cancelled).

Failures become MeetingUnavailable (retry later) or MeetingRefused (an administrator must act), logged
once, without personal data (see bot.integrations.graph_errors).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.free_busy_status import FreeBusyStatus
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.lobby_bypass_scope import LobbyBypassScope
from msgraph.generated.models.lobby_bypass_settings import LobbyBypassSettings
from msgraph.generated.models.online_meeting import OnlineMeeting
from msgraph.generated.models.online_meeting_presenters import OnlineMeetingPresenters
from msgraph.generated.models.online_meeting_provider_type import OnlineMeetingProviderType
from msgraph.generated.users.item.events.item.cancel.cancel_post_request_body import CancelPostRequestBody
from msgraph.generated.users.item.events.item.event_item_request_builder import EventItemRequestBuilder
from msgraph.generated.users.item.online_meetings.online_meetings_request_builder import OnlineMeetingsRequestBuilder

from bot.domain.agency import Agency, RecordingPolicy
from bot.integrations.graph_client import GraphClient, build_graph_client
from bot.integrations.graph_errors import Access, code_of, is_graph_failure, meeting_error, status_of
from bot.metrics import Metrics
from bot.services.ports import Meeting, MeetingRefused, MeetingRequest, MeetingUnavailable
from bot.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
EventQuery = EventItemRequestBuilder.EventItemRequestBuilderGetQueryParameters
MeetingQuery = OnlineMeetingsRequestBuilder.OnlineMeetingsRequestBuilderGetQueryParameters

# Graph may answer the creation before the Teams link exists: read the event again after these pauses.
LINK_WAITS = (0.5, 1.0, 2.0)


def graph_time(moment: datetime) -> DateTimeTimeZone:
    """A Graph dateTimeTimeZone in UTC: the local time without offset, the zone beside."""
    if moment.tzinfo is None:
        raise ValueError("meeting times must be timezone-aware")
    return DateTimeTimeZone(date_time=moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")


def odata_string(value: str) -> str:
    """`value` as an OData string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class GraphMeetingProvider:
    """MeetingProvider over Microsoft Graph.

    `recording_allowed`: the agency's rule; where it forbids recording, no request can turn it on.
    `sleep`: how the provider waits for a Teams link (tests pass one that does not wait)."""

    def __init__(self, graph: GraphClient, *, recording_allowed: bool = False,
                 link_waits: Sequence[float] = LINK_WAITS,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._graph = graph
        self._recording_allowed = recording_allowed
        self._link_waits = tuple(link_waits)
        self._sleep = sleep

    @property
    def graph(self) -> GraphClient:
        """Its Graph client, to share with GraphAvailability and TeamsAppInstaller."""
        return self._graph

    async def close(self) -> None:
        await self._graph.close()

    # --- the port --------------------------------------------------------------------------------------

    async def create(self, request: MeetingRequest) -> Meeting:
        user = self._graph.sdk.users.by_user_id(request.organizer_id)
        event = Event(
            subject=request.subject,
            body=ItemBody(content_type=BodyType.Html if request.body_html else BodyType.Text, content=request.body),
            start=graph_time(request.starts_at),
            end=graph_time(request.ends_at),
            is_online_meeting=True,
            online_meeting_provider=OnlineMeetingProviderType.TeamsForBusiness,
            transaction_id=request.transaction_id,
            # The time is agreed with the citizen in the chat, not by counter-proposals in Outlook.
            allow_new_time_proposals=False,
            show_as=FreeBusyStatus.Busy,
        )
        created = await self._call(Access.CALENDAR, lambda: user.events.post(event))
        if created is None or not created.id:
            raise MeetingUnavailable("Graph answered the event creation without an event")
        join_url = await self._join_url(request.organizer_id, created.id, created)
        allow_recording = request.allow_recording and self._recording_allowed
        await self._apply_policy(request.organizer_id, join_url, allow_recording=allow_recording, event_id=created.id)
        return Meeting(event_id=created.id, join_url=join_url)

    async def move(self, organizer_id: str, event_id: str, starts_at: datetime, ends_at: datetime) -> Meeting:
        event = self._graph.sdk.users.by_user_id(organizer_id).events.by_event_id(event_id)
        before = await self._call(Access.CALENDAR, lambda: event.get(self._select_link()))
        patch = Event(start=graph_time(starts_at), end=graph_time(ends_at))
        moved = await self._call(Access.CALENDAR, lambda: event.patch(patch))
        join_url = await self._join_url(organizer_id, event_id, moved)
        if join_url != _link_of(before):
            # A new Teams meeting came with the move: it has the tenant's defaults, not ours.
            await self._apply_policy(organizer_id, join_url, allow_recording=self._recording_allowed,
                                     event_id=event_id)
        return Meeting(event_id=event_id, join_url=join_url)

    async def cancel(self, organizer_id: str, event_id: str, comment: str) -> None:
        event = self._graph.sdk.users.by_user_id(organizer_id).events.by_event_id(event_id)
        try:
            await event.cancel.post(CancelPostRequestBody(comment=comment))
            return
        except Exception as error:
            if not is_graph_failure(error):
                raise
            if status_of(error) == 404:
                return  # already gone: cancelled as far as anyone can tell
            if (status_of(error), code_of(error)) != (400, "ErrorInvalidRequest"):
                raise self._failure(error, Access.CALENDAR) from error
        # Exchange may refuse `cancel` for an event it does not count as a meeting (no attendees);
        # deleting it takes it out of the calendar all the same (there is nobody to send the comment to).
        log.warning("Microsoft Graph refused to cancel the event (400 ErrorInvalidRequest): deleting it instead")
        try:
            await event.delete()
        except Exception as error:
            if not is_graph_failure(error):
                raise
            if status_of(error) != 404:
                raise self._failure(error, Access.CALENDAR) from error

    # --- steps -----------------------------------------------------------------------------------------

    async def _join_url(self, organizer_id: str, event_id: str, event: Event | None) -> str:
        """The event's Teams link; read again a few times while Graph has not added it yet."""
        link = _link_of(event)
        item = self._graph.sdk.users.by_user_id(organizer_id).events.by_event_id(event_id)
        for wait in self._link_waits:
            if link:
                return link
            await self._sleep(wait)
            fresh = await self._call(Access.CALENDAR, lambda: item.get(self._select_link()))
            link = _link_of(fresh)
        if link:
            return link
        raise MeetingUnavailable("the event has no Teams link yet")

    async def _apply_policy(self, organizer_id: str, join_url: str, *, allow_recording: bool, event_id: str) -> None:
        """Lobby for everyone but the counselor, the counselor alone presents, no recording where forbidden."""
        meetings = self._graph.sdk.users.by_user_id(organizer_id).online_meetings
        query = RequestConfiguration(query_parameters=MeetingQuery(filter=f"JoinWebUrl eq {odata_string(join_url)}"))
        found = await self._call(Access.ONLINE_MEETING, lambda: meetings.get(query), event_id=event_id)
        meeting = next((m for m in (found.value if found and found.value else []) if m.id), None)
        if meeting is None or meeting.id is None:
            # Teams registers the meeting shortly after the event; the retried creation finds the same event.
            raise MeetingUnavailable("the Teams meeting is not findable by its link yet")
        options = OnlineMeeting(
            lobby_bypass_settings=LobbyBypassSettings(scope=LobbyBypassScope.Organizer,
                                                      is_dial_in_bypass_enabled=False),
            allowed_presenters=OnlineMeetingPresenters.Organizer,
        )
        if not allow_recording:
            options.allow_recording = False
            options.allow_transcription = False
            options.record_automatically = False
        meeting_id = meeting.id
        await self._call(Access.ONLINE_MEETING, lambda: meetings.by_online_meeting_id(meeting_id).patch(options),
                         event_id=event_id)

    @staticmethod
    def _select_link() -> RequestConfiguration[EventQuery]:
        return RequestConfiguration(query_parameters=EventQuery(select=["onlineMeeting"]))

    async def _call(self, access: Access, call: Callable[[], Awaitable[T]], *, event_id: str | None = None) -> T:
        try:
            return await call()
        except Exception as error:
            if not is_graph_failure(error):
                raise
            raise self._failure(error, access, event_id=event_id) from error

    def _failure(self, error: Exception, access: Access, *,
                 event_id: str | None = None) -> MeetingUnavailable | MeetingRefused:
        return meeting_error(error, access, self._graph.client_id, event_id=event_id)


def _link_of(event: Event | None) -> str | None:
    if event is None or event.online_meeting is None:
        return None
    return event.online_meeting.join_url or None


def build_meeting_provider(settings: Settings, agency: Agency, *, credential: AsyncTokenCredential | None = None,
                           metrics: Metrics | None = None) -> GraphMeetingProvider | None:
    """The Graph meeting provider for this agency, None when Graph is not configured (local mode).
    `credential`: by default the app registration's (tests pass a fixed token). `close()` it at the end."""
    if not settings.graph_configured:
        return None
    return GraphMeetingProvider(build_graph_client(settings, credential, metrics=metrics),
                                recording_allowed=agency.recording is not RecordingPolicy.FORBIDDEN)
