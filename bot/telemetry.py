"""Application Insights: traces and metrics through the Azure Monitor OpenTelemetry distro, when
APPLICATIONINSIGHTS_CONNECTION_STRING is set (/metrics, bot.metrics, works with or without it).

`start_azure_monitor` configures the process's OpenTelemetry providers once (they are global by
OpenTelemetry's design) with our loggers only (`bot`: log lines carry no personal data); then
`instrument_app` adds, per app, a server span for each HTTP request (aiohttp) and a client span for each
database statement (SQLAlchemy: the statement's text, never its parameters). Microsoft Graph calls
appear through the Graph SDK's own spans, without their URLs (bot.integrations.graph_client);
requests to the Bot Connector are not traced (their URLs name conversations).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings

log = logging.getLogger(__name__)

# Libraries the distro would instrument that the bot does not use.
_NOT_USED = {name: {"enabled": False} for name in ("django", "fastapi", "flask", "psycopg2")}
_configured = False
_aiohttp_ready = False


def start_azure_monitor(settings: Settings, *, configure: Callable[..., None] | None = None) -> bool:
    """Send traces, metrics and our log lines to Application Insights when a connection string is set;
    whether it is on. Once per process. `configure`: the distro's `configure_azure_monitor` (tests pass a
    stand-in)."""
    global _configured
    connection_string = settings.applicationinsights_connection_string
    if not connection_string:
        return False
    if _configured:
        return True
    if configure is None:
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure = configure_azure_monitor
    configure(connection_string=connection_string, logger_name="bot", instrumentation_options=_NOT_USED)
    _configured = True
    log.info("telemetry: traces and metrics go to Application Insights")
    return True


def instrument_app(app: web.Application, engine: AsyncEngine, *, tracer_provider: Any = None,
                   meter_provider: Any = None) -> None:
    """Trace the app's HTTP requests and the engine's statements (through the global providers unless given)."""
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor, create_aiohttp_middleware
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter
    from opentelemetry.semconv.metrics import MetricInstruments
    from opentelemetry.trace import get_tracer

    # For this engine only: SQLAlchemyInstrumentor().instrument() would also patch create_engine for the
    # whole process, which other apps in it (the tests) do not want.
    tracer = get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__, tracer_provider)
    meter = get_meter("opentelemetry.instrumentation.sqlalchemy", __version__, meter_provider)
    usage = meter.create_up_down_counter(name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE, unit="connections",
                                         description="Connections in the state the state attribute names")
    EngineTracer(tracer, engine.sync_engine, usage)

    global _aiohttp_ready
    if not _aiohttp_ready:
        # The middleware reads settings (excluded URLs, its meters) that only the instrumentor sets up; the
        # instrumentor also swaps web.Application for a subclass (for every app built later, which aiohttp
        # discourages): set up, then put web.Application back, and add the middleware to this app alone.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            AioHttpServerInstrumentor().instrument(meter_provider=meter_provider)
        AioHttpServerInstrumentor().uninstrument()
        _aiohttp_ready = True
    app.middlewares.append(create_aiohttp_middleware(tracer_provider))
