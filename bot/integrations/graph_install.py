"""Installing the bot for a counselor through Microsoft Graph, so the bot can write to them (reminders,
prompts) before they ever opened it: POST /users/{id}/teamwork/installedApps with the Teams app of the
organisation's catalog (GUICHET_TEAMS_APP_ID).

Once installed, Teams sends the bot a conversationUpdate and the bot stores the counselor's conversation
(bot.teams_bot); this module only asks for the installation.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from msgraph.generated.models.user_scope_teams_app_installation import UserScopeTeamsAppInstallation

from bot.integrations.graph_client import GraphClient
from bot.integrations.graph_errors import Access, access_hint, code_of, is_graph_failure, status_of

log = logging.getLogger(__name__)


class TeamsAppInstaller:
    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    async def install_for(self, user_id: str, teams_app_id: str) -> bool:
        """Whether the app is installed for the user now (just installed, or already: Graph's 409).

        False when it is not, with one log line: a missing permission (named), an app not in the
        catalog, or Graph unavailable; asking again later is safe."""
        app = quote(teams_app_id, safe="")
        installation = UserScopeTeamsAppInstallation(
            additional_data={"teamsApp@odata.bind": f"{self._graph.base_url}/appCatalogs/teamsApps/{app}"})
        try:
            await self._graph.sdk.users.by_user_id(user_id).teamwork.installed_apps.post(installation)
        except Exception as error:
            if not is_graph_failure(error):
                raise
            status = status_of(error)
            if status == 409:
                return True  # already installed
            if status == 403:
                log.error("Microsoft Graph refused to install the Teams app (403 %s): %s", code_of(error),
                          access_hint(Access.APP_INSTALL, error, self._graph.client_id))
            elif status == 404:
                log.warning("Teams app installation: the person or the app is unknown (404 %s); check "
                            "GUICHET_TEAMS_APP_ID (the app's id in the organisation's catalog)", code_of(error))
            else:
                what = f"{status} {code_of(error)}" if status is not None else type(error).__name__
                log.warning("Teams app installation failed for now (%s)", what)
            return False
        return True
