"""Installing the bot for a counselor (bot.integrations.graph_install) against the local Graph stand-in."""

from __future__ import annotations

import logging

import pytest

from bot.integrations.graph_client import GraphClient
from bot.integrations.graph_install import TeamsAppInstaller
from tests.fixtures.graph import APP
from tests.graph_server import GraphServer

COUNSELOR = "09f16cfb-d20e-427d-a50e-e70ab4c9b4f5"
TEAMS_APP = "e5b8a0a4-6f0d-4c1e-9b7a-2d3c4e5f6a7b"


@pytest.fixture
def installer(graph_client: GraphClient, graph_server: GraphServer) -> TeamsAppInstaller:
    graph_server.catalog_apps = {TEAMS_APP}
    return TeamsAppInstaller(graph_client)


async def test_installing_binds_the_catalog_app_and_a_second_time_is_already_done(
        installer: TeamsAppInstaller, graph_server: GraphServer) -> None:
    assert await installer.install_for(COUNSELOR, TEAMS_APP) is True
    assert await installer.install_for(COUNSELOR, TEAMS_APP) is True  # Graph's 409: already installed

    assert graph_server.installed == {(COUNSELOR, TEAMS_APP)}
    first, second = graph_server.requests_to("POST", r"/installedApps$")
    assert (first.status, second.status) == (201, 409)
    assert first.path == f"/users/{COUNSELOR}/teamwork/installedApps"
    assert first.body["teamsApp@odata.bind"] == f"{graph_server.url}/appCatalogs/teamsApps/{TEAMS_APP}"


async def test_a_missing_permission_is_false_and_named(installer: TeamsAppInstaller, graph_server: GraphServer,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    graph_server.fail("install_permission", path=r"/installedApps$")

    with caplog.at_level(logging.WARNING):
        assert await installer.install_for(COUNSELOR, TEAMS_APP) is False

    [line] = caplog.records
    message = line.getMessage()
    assert "TeamsAppInstallation.ReadWriteSelfForUser.All" in message
    assert "TeamsAppInstallation.ReadWriteForUser.All" in message and APP in message
    assert COUNSELOR not in message
    assert graph_server.installed == set()


async def test_an_app_missing_from_the_catalog_is_false_and_points_at_the_setting(
        installer: TeamsAppInstaller, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert await installer.install_for(COUNSELOR, "not-in-the-catalog") is False

    assert "GUICHET_TEAMS_APP_ID" in caplog.records[0].getMessage()


async def test_graph_unavailable_is_false_for_now(installer: TeamsAppInstaller, graph_server: GraphServer) -> None:
    graph_server.fail("unavailable", path=r"/installedApps$", retry_after="0", times=3)

    assert await installer.install_for(COUNSELOR, TEAMS_APP) is False
    assert await installer.install_for(COUNSELOR, TEAMS_APP) is True  # asking again later is safe
