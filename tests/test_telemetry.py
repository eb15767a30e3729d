"""Application Insights, offline: with APPLICATIONINSIGHTS_CONNECTION_STRING set, the app configures the
Azure Monitor distro with it and traces its HTTP requests and database statements; spans reach an
(in-memory) exporter without the person's words; without it nothing is configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import bot.telemetry as telemetry
from bot.app import ENGINE, create_app
from bot.domain.agency import Agency
from bot.settings import Settings
from storage.migrate import upgrade_database
from tests.harness import FakeConnector, TeamsUser, free_port

CONNECTION_STRING = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"


class Configure:
    """Stands in for azure.monitor.opentelemetry.configure_azure_monitor (which would start exporting)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Configure:
    import azure.monitor.opentelemetry

    fake = Configure()
    monkeypatch.setattr(azure.monitor.opentelemetry, "configure_azure_monitor", fake)
    monkeypatch.setattr(telemetry, "_configured", False)
    return fake


async def test_the_connection_string_turns_application_insights_on(tmp_path: Path, agency_path: Path,
                                                                  configure: Configure) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", agency=agency_path,
                        APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION_STRING)
    app = create_app(settings)
    second = create_app(settings)
    try:
        [call] = configure.calls  # once per process, however many apps
        assert call["connection_string"] == CONNECTION_STRING
        assert call["logger_name"] == "bot"
        assert len(app.middlewares) == 1 and len(second.middlewares) == 1  # requests traced
    finally:
        for built in (app, second):
            await built[ENGINE].dispose()


async def test_without_a_connection_string_nothing_is_configured(tmp_path: Path, agency_path: Path,
                                                                 configure: Configure) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", agency=agency_path))
    await app[ENGINE].dispose()
    assert configure.calls == [] and len(app.middlewares) == 0


async def test_requests_and_statements_reach_the_exporter(tmp_path: Path, agency_path: Path, agency: Agency,
                                                          connector: FakeConnector,
                                                          http: aiohttp.ClientSession) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", agency=agency_path)
    await upgrade_database(settings.database_url)
    app = create_app(settings, agency=agency)
    # What create_app does with the distro's providers, here with an in-memory exporter's.
    telemetry.instrument_app(app, app[ENGINE], tracer_provider=provider)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await TeamsUser(bot_url=f"http://127.0.0.1:{port}", connector=connector, http=http).say("Marie-Ève D'Hondt")
    finally:
        await runner.cleanup()
        provider.shutdown()
    spans = exporter.get_finished_spans()
    server = [span for span in spans if span.kind.name == "SERVER"]
    assert [(span.name, span.attributes["http.status_code"]) for span in server] == [("POST /api/messages", 201)]
    statements = [span for span in spans if span.kind.name == "CLIENT" and span.attributes.get("db.system") == "sqlite"]
    assert statements and all("?" in span.attributes["db.statement"] for span in statements)  # parameters stay out
    everything = " ".join(f"{span.name} {dict(span.attributes or {})}" for span in spans)
    assert "Hondt" not in everything and "Marie" not in everything
