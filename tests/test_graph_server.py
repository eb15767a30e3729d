"""The Graph stand-in refuses what Graph refuses: without this, the provider's tests would pass against a
server that accepts anything."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.graph_server import GraphServer

AUTH = {"Authorization": "Bearer t"}
START = {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"}
END = {"dateTime": "2026-03-02T09:30:00", "timeZone": "UTC"}


async def call(server: GraphServer, method: str, path: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, \
            session.request(method, server.url + path, json=body, headers=AUTH if headers is None else headers) \
            as response:
        return response.status, await response.json(content_type=None)


async def created_meeting(server: GraphServer) -> str:
    status, event = await call(server, "POST", "/users/u/events",
                               {"start": START, "end": END, "isOnlineMeeting": True,
                                "onlineMeetingProvider": "teamsForBusiness"})
    assert status == 201
    return server.meeting_of(server.events[event["id"]])["id"]


@pytest.mark.parametrize("body, complaint", [
    ({"start": START, "end": END, "organiser": "x"}, "organiser"),
    ({"start": {"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "UTC"}, "end": END}, "no offset"),
    ({"start": {"dateTime": "2026-03-02T09:00:00"}, "end": END}, "timeZone"),
    ({"start": START, "end": END, "showAs": "away"}, "away"),
    ({"start": START, "end": END, "onlineMeetingProvider": "teams"}, "teams"),
    ({"end": END}, "start"),
])
async def test_event_bodies_graph_would_refuse_get_400(graph_server: GraphServer, body: dict[str, Any],
                                                      complaint: str) -> None:
    status, answer = await call(graph_server, "POST", "/users/u/events", body)

    assert status == 400 and answer["error"]["code"] == "invalidRequest"
    assert complaint in answer["error"]["message"]
    assert graph_server.events == {}


@pytest.mark.parametrize("body", [
    {"lobbyBypassSettings": {"scope": "organiserOnly"}},
    {"lobbyBypassSettings": {"scope": "organizer", "bypass": True}},
    {"allowedPresenters": "counselor"},
    {"allowRecording": "no"},
    {"recordingAllowed": False},
])
async def test_meeting_options_graph_would_refuse_get_400(graph_server: GraphServer, body: dict[str, Any]) -> None:
    meeting = await created_meeting(graph_server)

    status, answer = await call(graph_server, "PATCH", f"/users/u/onlineMeetings/{meeting}", body)

    assert status == 400 and answer["error"]["code"] == "invalidRequest"


async def test_transaction_id_cannot_change_after_creation(graph_server: GraphServer) -> None:
    _, event = await call(graph_server, "POST", "/users/u/events", {"start": START, "end": END, "transactionId": "a"})

    status, _ = await call(graph_server, "PATCH", f"/users/u/events/{event['id']}", {"transactionId": "b"})

    assert status == 400


@pytest.mark.parametrize("bind", [
    "https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/app",  # another host than the one called
    "{url}/appCatalogs/apps/app",
    "app",
])
async def test_an_odata_bind_must_name_a_catalog_app_on_this_endpoint(graph_server: GraphServer, bind: str) -> None:
    graph_server.catalog_apps = {"app"}

    status, _ = await call(graph_server, "POST", "/users/u/teamwork/installedApps",
                           {"teamsApp@odata.bind": bind.format(url=graph_server.url)})

    assert status == 400 and graph_server.installed == set()


async def test_a_request_without_a_bearer_token_gets_401(graph_server: GraphServer) -> None:
    status, answer = await call(graph_server, "POST", "/users/u/events", {"start": START, "end": END}, headers={})

    assert status == 401 and answer["error"]["code"] == "InvalidAuthenticationToken"
    assert graph_server.events == {} and graph_server.requests[0].authorized is False


async def test_failures_look_like_graphs_errors(graph_server: GraphServer) -> None:
    graph_server.fail("access_policy", path=r"/onlineMeetings")
    graph_server.fail("throttled", path=r"/events$", retry_after="3")

    status, answer = await call(graph_server, "GET", "/users/u/onlineMeetings?$filter=JoinWebUrl eq 'x'")
    assert (status, answer["error"]["message"]) == (403, "No application access policy found for this app.")
    async with aiohttp.ClientSession() as session, \
            session.post(graph_server.url + "/users/u/events", json={"start": START, "end": END},
                         headers=AUTH) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "3"
        assert (await response.json())["error"]["code"] == "ApplicationThrottled"
    # Each failure was asked for once.
    assert (await call(graph_server, "POST", "/users/u/events", {"start": START, "end": END}))[0] == 201
