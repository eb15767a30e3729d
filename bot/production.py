"""What `GUICHET_ENV=production` refuses to run with: each unsafe setting, as one line naming it.

`guichet serve` and `guichet worker` refuse to start on any of them; `guichet doctor` lists them all.
Development (the default) keeps running without them: local mode on one machine.

Microsoft Graph is checked where the settings load (bot.settings: production needs it for every command).
"""

from __future__ import annotations

from bot.settings import Settings

# Long enough that guessing it is out of reach; `openssl rand -hex 32` gives 64 characters.
MIN_METRICS_TOKEN_LENGTH = 32


def production_refusals(settings: Settings) -> list[str]:
    """Why production must not start with these settings (empty: it may). Never quotes a secret."""
    if settings.env != "production":
        return []
    refusals = _authentication_refusals(settings)
    if settings.database_url.startswith("sqlite"):
        refusals.append("GUICHET_DATABASE_URL is SQLite: production needs PostgreSQL "
                        "(postgresql+asyncpg://…), shared by every replica and worker and backed up")
    if not settings.metrics_token:
        refusals.append("GUICHET_METRICS_TOKEN is empty: /metrics would be open to anyone who reaches the port")
    elif len(settings.metrics_token) < MIN_METRICS_TOKEN_LENGTH:
        refusals.append(f"GUICHET_METRICS_TOKEN is too short: at least {MIN_METRICS_TOKEN_LENGTH} characters "
                        "(e.g. openssl rand -hex 32)")
    # Test endpoints: with them, the bot would trust keys or sign in wherever they point.
    if settings.openid_metadata_url is not None:
        refusals.append("GUICHET_OPENID_METADATA_URL is for tests only: production validates tokens against "
                        "the Bot Framework's own keys")
    if settings.bot_login_url is not None:
        refusals.append("GUICHET_BOT_LOGIN_URL is for tests only: production signs in at login.microsoftonline.com")
    return refusals


def _authentication_refusals(settings: Settings) -> list[str]:
    """Bot Framework authentication is on only with an app id and the credential its type needs."""
    if not settings.app_id:
        return ["MicrosoftAppId is empty: Bot Framework authentication would be off, so anyone reaching "
                "/api/messages could speak as any citizen or counselor"]
    refusals = []
    if settings.app_type != "UserAssignedMSI" and not settings.app_password:
        refusals.append(f"MicrosoftAppPassword is empty: MicrosoftAppType {settings.app_type} signs in with the "
                        "app registration's client secret (or use UserAssignedMSI)")
    if settings.app_type != "MultiTenant" and not settings.app_tenant_id:
        refusals.append(f"MicrosoftAppTenantId is empty: MicrosoftAppType {settings.app_type} needs the "
                        "tenant of the bot's identity")
    return refusals
