"""`GUICHET_ENV=production` refuses to serve or work with unsafe settings: one line naming the setting on
stderr, exit status 2, nothing started. Development keeps starting as it always has."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bot.cli
import bot.jobs_cli
from bot.settings import PROJECT_ROOT, Settings

SAFE_PRODUCTION = {
    "GUICHET_ENV": "production",
    "GUICHET_DATABASE_URL": "postgresql+asyncpg://guichet@db.example/guichet",
    "GUICHET_GRAPH_TENANT_ID": "00000000-0000-0000-0000-00000000cafe",
    "GUICHET_GRAPH_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "GUICHET_GRAPH_CLIENT_SECRET": "not-a-real-graph-secret",
    "MicrosoftAppId": "3f1b8d0e-0000-4000-8000-00000000a11d",
    "MicrosoftAppPassword": "not-a-real-bot-secret",
    "GUICHET_METRICS_TOKEN": "f" * 64,
}

# What is changed from a safe production configuration, and the setting the refusal must name.
REFUSALS: dict[str, tuple[dict[str, str], str]] = {
    "no app id: authentication off": ({"MicrosoftAppId": ""}, "MicrosoftAppId"),
    "multi-tenant app without its secret": ({"MicrosoftAppPassword": ""}, "MicrosoftAppPassword"),
    "single-tenant app without its tenant": ({"MicrosoftAppType": "SingleTenant"}, "MicrosoftAppTenantId"),
    "managed identity without its tenant": ({"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppPassword": ""},
                                            "MicrosoftAppTenantId"),
    "SQLite": ({"GUICHET_DATABASE_URL": "sqlite+aiosqlite:///./guichet.db"}, "GUICHET_DATABASE_URL"),
    "Graph not configured": ({"GUICHET_GRAPH_TENANT_ID": "", "GUICHET_GRAPH_CLIENT_ID": "",
                              "GUICHET_GRAPH_CLIENT_SECRET": ""}, "GUICHET_GRAPH_CLIENT_ID"),
    "/metrics without a token": ({"GUICHET_METRICS_TOKEN": ""}, "GUICHET_METRICS_TOKEN"),
    "/metrics with a guessable token": ({"GUICHET_METRICS_TOKEN": "secret"}, "GUICHET_METRICS_TOKEN"),
    "test key endpoint": ({"GUICHET_OPENID_METADATA_URL": "http://127.0.0.1:9/keys"}, "GUICHET_OPENID_METADATA_URL"),
    "test sign-in endpoint": ({"GUICHET_BOT_LOGIN_URL": "https://localhost:9/botframework.com"},
                              "GUICHET_BOT_LOGIN_URL"),
}


class Started:
    """Stands in for the server and the worker: records that they would have started, and returns."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def __call__(self, settings: Settings, args: argparse.Namespace) -> int:
        self.commands.append(args.command)
        return 0


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith(("GUICHET_", "MICROSOFTAPP")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file
    return monkeypatch


@pytest.fixture
def started(environment: pytest.MonkeyPatch) -> Started:
    recorder = Started()
    environment.setattr(bot.cli, "_serve", recorder)
    environment.setattr(bot.jobs_cli, "_worker_command", recorder)
    return recorder


def _set(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("case", list(REFUSALS))
def test_production_refuses_to_start_naming_the_setting(
        case: str, command: str, environment: pytest.MonkeyPatch, started: Started,
        capsys: pytest.CaptureFixture[str]) -> None:
    change, setting = REFUSALS[case]
    _set(environment, {**SAFE_PRODUCTION, **change})

    status = bot.cli.main([command])

    assert status == 2
    assert started.commands == [], "nothing started"
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert setting in line
    assert captured.out == ""
    for secret in ("not-a-real-bot-secret", "not-a-real-graph-secret", "f" * 64):
        assert secret not in line


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("identity", [
    {},
    {"MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": "00000000-0000-0000-0000-00000000cafe"},
    # A user-assigned managed identity has no secret: its token comes from the platform.
    {"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppPassword": "",
     "MicrosoftAppTenantId": "00000000-0000-0000-0000-00000000cafe"},
])
def test_safe_production_starts(identity: dict[str, str], command: str, environment: pytest.MonkeyPatch,
                                started: Started, capsys: pytest.CaptureFixture[str]) -> None:
    _set(environment, {**SAFE_PRODUCTION, **identity})

    assert bot.cli.main([command]) == 0
    assert started.commands == [command]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_development_still_starts_without_any_of_it(command: str, environment: pytest.MonkeyPatch,
                                                    started: Started) -> None:
    """Local mode as before: no app id, SQLite, no Graph, no metrics token."""
    assert bot.cli.main([command]) == 0
    assert started.commands == [command]


def test_the_measured_hole_is_closed(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The configuration the issue measured (production, Graph, PostgreSQL, no app id), as a process."""
    env = {name: value for name, value in os.environ.items()
           if not name.upper().startswith(("GUICHET_", "MICROSOFTAPP"))}
    env.update({**SAFE_PRODUCTION, "MicrosoftAppId": "", "MicrosoftAppPassword": "",
                "GUICHET_PORT": "9", "PYTHONPATH": str(PROJECT_ROOT)})
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "guichet: production refuses to start: MicrosoftAppId is empty: Bot Framework authentication would be "
        "off, so anyone reaching /api/messages could speak as any citizen or counselor"]
