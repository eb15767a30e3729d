"""/metrics as an operator's Prometheus sees it: after a whole video booking over HTTP (the job runner
talking to the Graph stand-in), the turns, the connector's answers, the Graph calls, the job queue and the
database pool are counted; nothing in any label or value names the citizen, the counselor or an id; in
production only the bearer token opens it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import SERVICES
from bot.domain.agency import Agency
from bot.domain.clock import FixedClock
from bot.domain.jobs import JobKind
from bot.jobs.runner import JobRunner
from bot.jobs.worker import build_runner
from bot.metrics import graph_operation
from bot.services.container import Services
from bot.settings import Settings
from bot.wiring import build_services
from tests.fixtures.graph import FixedToken, graph_settings_for
from tests.graph_server import GraphServer
from tests.harness import FakeConnector, RunningBot, TeamsUser, start_bot
from tests.test_booking_flow import BE_DETAILS, MONDAY_MORNING, Chat, book

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(exposition: str) -> Samples:
    """Every sample of the exposition by (name, sorted labels); parsing also checks the text format."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def value(figures: Samples, name: str, **labels: str) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


@dataclass
class World:
    bot: RunningBot
    chat: Chat
    services: Services
    runner: JobRunner
    clock: FixedClock
    graph: GraphServer
    http: aiohttp.ClientSession

    async def scrape(self, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        async with self.http.get(f"{self.bot.url}/metrics", headers=headers or {}) as response:
            return response.status, response.headers.get("Content-Type", ""), await response.text()


@pytest.fixture
async def world(tmp_path: Path, agency_path: Path, agency: Agency, graph_server: GraphServer,
                connector: FakeConnector, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    settings = graph_settings_for(graph_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/metrics.db",
                                  agency=agency_path)
    clock = FixedClock(MONDAY_MORNING)
    wiring = build_services(settings, agency=agency, clock=clock, graph_credential=FixedToken())
    async with start_bot(settings, agency, clock, wiring=wiring) as bot:
        chat = Chat(TeamsUser(bot_url=bot.url, connector=connector, http=http))
        yield World(bot, chat, bot.app[SERVICES], build_runner(wiring), clock, graph_server, http)


async def test_a_whole_booking_shows_in_the_metrics_without_personal_data(world: World) -> None:
    await world.chat.user.say("bonjour")
    await book(world.chat, mode="video", details={**BE_DETAILS, "postal_code": "4000"})
    await world.runner.drain()  # the Teams meeting is created through Graph, its link sent to the chat

    status, content_type, text = await world.scrape()
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    figures = samples(text)

    presses = value(figures, "guichet_turns_total", kind="card_action")
    assert value(figures, "guichet_turns_total", kind="message") >= 1
    assert presses >= 8  # consent, mode, subject, day, time, form, confirm...
    assert value(figures, "guichet_turn_duration_seconds_count", kind="card_action") == presses
    assert value(figures, "guichet_turn_duration_seconds_bucket", kind="card_action", le="+Inf") == presses
    assert value(figures, "guichet_turn_errors_total", kind="card_action") == 0
    # Replies went out (the stand-in answers 200); the link to the meeting as a proactive message.
    assert value(figures, "guichet_connector_requests_total", path="reply", status="200") >= presses
    assert value(figures, "guichet_connector_requests_total", path="proactive", status="200") >= 1
    # The meeting: one event created, its online meeting found and set.
    assert value(figures, "guichet_graph_requests_total", operation="POST /users/{id}/events", status="201") == 1
    assert value(figures, "guichet_graph_requests_total", operation="PATCH /users/{id}/onlineMeetings/{id}",
                 status="200") == 1
    assert value(figures, "guichet_graph_request_duration_seconds_count", operation="POST /users/{id}/events") == 1
    assert value(figures, "guichet_job_runs_total", kind="meeting_create", result="created") == 1
    assert value(figures, "guichet_database_up") == 1
    assert ("guichet_database_connections_in_use", ()) in figures

    # Nothing ran late yet; a day later the reminder is due and, with no runner, late.
    assert value(figures, "guichet_jobs", kind="reminder", state="due") == 0
    world.clock.advance(timedelta(days=30))
    figures = samples((await world.scrape())[2])
    assert value(figures, "guichet_jobs", kind="reminder", state="due") >= 1
    assert value(figures, "guichet_jobs", kind="reminder", state="late") >= 1

    # No label or value names the person, the counselor, the chat or any record.
    async with world.services.uow.read() as uow:
        [appointment] = await uow.appointments.of_counselors_between(
            world.services.agency.id, MONDAY_MORNING, MONDAY_MORNING + timedelta(days=120))
    user = world.chat.user
    secrets = [BE_DETAILS["first_name"], "Hondt", BE_DETAILS["phone"], "470", BE_DETAILS["national_register_number"],
               BE_DETAILS["email"], "example.org", user.aad_object_id, user.user_id, user.conversation_id,
               appointment.id, appointment.citizen_id, appointment.counselor_id, appointment.join_url or "no link",
               *world.graph.events, *world.graph.meetings, *(event["_user"] for event in world.graph.events.values())]
    # Names, labels and help texts, not the sample values: a figure such as 0.0470 is no phone number.
    page = (await world.scrape())[2]
    text = "\n".join(line if line.startswith("#") else line.rsplit(" ", 1)[0] for line in page.splitlines())
    found = [secret for secret in secrets if secret and secret.lower() in text.lower()]
    assert found == []


async def test_failed_turns_and_refused_requests_are_counted(world: World) -> None:
    await world.chat.user.say("bonjour")
    world.chat.user.connector.fail_next.append(403)  # the reply cannot be sent: the turn fails
    await world.chat.user.post(world.chat.user.activity(text="bonjour"))
    async with world.http.post(f"{world.bot.url}/api/messages", data="{", headers={
            "Content-Type": "application/json"}) as response:
        assert response.status == 400
    figures = samples((await world.scrape())[2])
    assert value(figures, "guichet_connector_requests_total", path="reply", status="403") == 1
    assert value(figures, "guichet_turn_errors_total", kind="message") == 1
    assert value(figures, "guichet_activities_refused_total", status="400") == 1
    assert value(figures, "guichet_turns_total", kind="message") == 2


def production(settings: Settings, token: str) -> Settings:
    return settings.model_copy(update={"env": "production", "metrics_token": token})


async def test_production_opens_the_metrics_only_to_the_bearer_token(
        tmp_path: Path, agency_path: Path, agency: Agency, graph_server: GraphServer,
        http: aiohttp.ClientSession) -> None:
    settings = graph_settings_for(graph_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/prod.db",
                                  agency=agency_path, env="production", metrics_token="s3cret-metrics-token")
    wiring = build_services(settings, agency=agency, graph_credential=FixedToken())
    async with start_bot(settings, agency, wiring=wiring) as bot:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-metrics-token"},
                        {"Authorization": "Bearer s3cret-metrics-toke"}, {"Authorization": "s3cret-metrics-token"}):
            async with http.get(f"{bot.url}/metrics", headers=headers) as response:
                assert response.status == 401, headers
                assert "guichet_" not in await response.text()
        async with http.get(f"{bot.url}/metrics",
                            headers={"Authorization": "Bearer s3cret-metrics-token"}) as response:
            assert response.status == 200
            assert "guichet_turns_total" in await response.text()


async def test_development_opens_the_metrics_without_a_token(running_bot: RunningBot,
                                                              http: aiohttp.ClientSession) -> None:
    async with http.get(f"{running_bot.url}/metrics") as response:
        assert response.status == 200
        assert "guichet_jobs" in await response.text()


async def test_each_app_counts_only_its_own_turns(bot_settings: Settings, agency: Agency, connector: FakeConnector,
                                                  http: aiohttp.ClientSession) -> None:
    async with start_bot(bot_settings, agency) as first, start_bot(bot_settings, agency) as second:
        await TeamsUser(bot_url=first.url, connector=connector, http=http).say("bonjour")
        for bot, expected in ((first, 1), (second, 0)):
            async with http.get(f"{bot.url}/metrics") as response:
                figures = samples(await response.text())
            assert value(figures, "guichet_turns_total", kind="message") == expected


def test_graph_operations_keep_only_the_fixed_segments() -> None:
    assert graph_operation("post", "/v1.0/users/0b7e-guid/events/AAMkAG=/cancel") \
        == "POST /users/{id}/events/{id}/cancel"
    assert graph_operation("GET", "/v1.0/users/marie.dhondt@example.org/onlineMeetings") \
        == "GET /users/{id}/onlineMeetings"
    assert graph_operation("POST", "/beta/users/x/calendar/getSchedule") == "POST /users/{id}/calendar/getSchedule"


def test_job_kinds_are_all_reported() -> None:
    from bot.metrics import Metrics

    metrics = Metrics()
    metrics.set_jobs({})
    figures = samples(metrics.exposition().decode())
    assert {labels for name, labels in figures if name == "guichet_jobs"} >= {
        (("kind", str(kind)), ("state", "late")) for kind in JobKind}
