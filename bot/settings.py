"""Process settings: environment variables (prefix GUICHET_), a `.env` file, and the agency file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AGENCY = PROJECT_ROOT / "deployment" / "agencies" / "example-be" / "agency.toml"


class SettingsError(ValueError):
    """Invalid settings; the message is one line naming the setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GUICHET_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///./guichet.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///… or postgresql+asyncpg://…",
    )
    agency: Path = Field(DEFAULT_AGENCY, description="Path of the agency's TOML file")
    host: str = "127.0.0.1"
    port: int = Field(3978, ge=1, le=65535)
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    max_body_bytes: int = Field(256 * 1024, gt=0, description="Larger /api/messages bodies get 413")
    jobs: Literal["inline", "off"] = Field(
        "inline", description="inline: `guichet serve` also runs the job runner; off: a `guichet worker` does"
    )
    job_poll_seconds: float = Field(5.0, gt=0, le=60, description="Longest sleep of the job runner between looks")
    job_batch: int = Field(50, gt=0, le=1000, description="Jobs one runner claims at a time")
    tenant_messages_per_second: float = Field(
        48.0, gt=0, le=50,
        description="This process's share of Teams' ~50 messages/s per app and tenant (48: slack for network jitter)",
    )

    # The Bot Framework's standard names, read without the GUICHET_ prefix.
    app_id: str = Field("", validation_alias=AliasChoices("MicrosoftAppId", "GUICHET_APP_ID"))
    app_password: str = Field(
        "", validation_alias=AliasChoices("MicrosoftAppPassword", "GUICHET_APP_PASSWORD"), repr=False
    )
    app_type: str = Field(
        "MultiTenant", validation_alias=AliasChoices("MicrosoftAppType", "GUICHET_APP_TYPE")
    )
    app_tenant_id: str = Field(
        "", validation_alias=AliasChoices("MicrosoftAppTenantId", "GUICHET_APP_TENANT_ID")
    )
    # Tests point token validation at a local OpenID metadata endpoint, and the bot's own token requests
    # (https://login.microsoftonline.com/botframework.com) at a local sign-in stand-in; production refuses both.
    openid_metadata_url: str | None = None
    bot_login_url: str | None = None

    # --- Microsoft Graph: Teams meetings, Outlook availability, installing the app for counselors --------
    # The app registration (client credentials flow, application permissions). Without it the bot runs in
    # local mode: no Teams meetings are created (allowed in development only, see `env`).
    graph_tenant_id: str = Field("", description="Entra tenant (directory) id of the agency's organisation")
    graph_client_id: str = Field("", description="Application (client) id of the app registration calling Graph")
    graph_client_secret: str = Field(
        "", repr=False, description="Client secret of that app registration (or give graph_certificate_path)"
    )
    graph_certificate_path: Path | None = Field(
        None, description="PEM file with the app registration's certificate and private key (instead of a secret)"
    )
    graph_base_url: str = Field(
        "https://graph.microsoft.com/v1.0",
        description="Graph endpoint with its version; national clouds: e.g. https://graph.microsoft.us/v1.0",
    )
    graph_authority_host: str = Field(
        "https://login.microsoftonline.com",
        description="Entra sign-in host of that cloud, e.g. https://login.microsoftonline.us",
    )
    teams_app_id: str = Field(
        "", description="The Teams app's id in the organisation's app catalog, to install the bot for counselors"
    )

    # --- The agency's website: Web Chat over Direct Line, proofs of identity, e-mail -----------------------
    directline_secret: str = Field(
        "", repr=False, description="Direct Line channel secret; used server-side only, to make tokens",
    )
    directline_endpoint: str = Field(
        "https://directline.botframework.com",
        description="Direct Line endpoint, regional if the bot is, e.g. https://europe.directline.botframework.com",
    )
    web_origins: list[str] = Field(
        default_factory=list,
        description='Origins of the agency\'s pages allowed to ask for tokens, JSON: ["https://www.agency.example"]',
    )
    web_tokens_per_minute: float = Field(10.0, gt=0, description="Tokens one client address may ask for a minute")
    forwarded_hops: int = Field(
        0, ge=0, le=5,
        description="Proxies in front of the bot that append the client's address to X-Forwarded-For (Azure "
                    "Container Apps' ingress: 1); 0 takes the peer address (the token endpoint's rate limit)",
    )
    manage_link_secret: str = Field(
        "", repr=False, description="Secret signing the manage links sent by e-mail (32+ random characters)",
    )
    manage_link_url: str = Field(
        "", description="The agency's Web Chat page; a manage link is this address with #manage=<token>",
    )
    signin_public_key_path: Path | None = Field(
        None, description="PEM public key (RSA or EC) the agency's website signs its sign-in assertions with",
    )
    signin_issuer: str = Field("", description="The `iss` of the agency's sign-in assertions")
    signin_audience: str = Field("", description="The `aud` the assertions must name (this bot)")
    mail: Literal["off", "folder", "graph"] = Field(
        "off", description="graph: sendMail from the agency's mailbox; folder: .eml files in mail_folder",
    )
    mail_folder: Path = Field(Path("./mail-outbox"), description="Where the folder mailer writes its .eml files")

    # --- Operations: metrics and tracing ----------------------------------------------------------------
    metrics_token: str = Field(
        "", repr=False,
        description="Bearer token /metrics requires when set (production needs one of 32 characters or more)",
    )
    applicationinsights_connection_string: str = Field(
        "", repr=False,
        validation_alias=AliasChoices("APPLICATIONINSIGHTS_CONNECTION_STRING",
                                      "GUICHET_APPLICATIONINSIGHTS_CONNECTION_STRING"),
        description="When set, traces and metrics also go to Application Insights (Azure Monitor OpenTelemetry)",
    )

    # Last of the block: its check reads the Graph settings above, validated before it.
    env: Literal["development", "production"] = Field(
        "development", validate_default=True,
        description="production refuses to start without Microsoft Graph (no local-mode meetings)",
    )

    @field_validator("graph_certificate_path", mode="before")
    @classmethod
    def _no_certificate_when_empty(cls, value: object) -> object:
        # `GUICHET_GRAPH_CERTIFICATE_PATH=` (an .env line left blank) means no certificate, not the current folder.
        return None if value == "" else value

    @field_validator("graph_base_url")
    @classmethod
    def _graph_endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        # Plain http only to this machine (the local Graph test server), as the SDK itself allows.
        if not parts.hostname or not (parts.scheme == "https" or parts.hostname in ("localhost", "127.0.0.1")):
            raise ValueError("must be an https:// URL")
        if not parts.path.strip("/"):
            raise ValueError("must end with the API version, e.g. https://graph.microsoft.com/v1.0")
        return value.rstrip("/")

    @field_validator("directline_endpoint")
    @classmethod
    def _directline_endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        # Plain http only to this machine (the Direct Line stand-in of the tests).
        if not parts.hostname or not (parts.scheme == "https" or parts.hostname in ("localhost", "127.0.0.1")):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")

    @field_validator("manage_link_secret")
    @classmethod
    def _long_secret(cls, value: str) -> str:
        # Whoever guesses it can sign a link to anyone's appointments.
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("web_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"{origin!r} is not an origin such as https://www.agency.example")
        return [origin.rstrip("/") for origin in value]

    @field_validator("graph_authority_host")
    @classmethod
    def _sign_in_host(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")

    @field_validator("env")
    @classmethod
    def _graph_when_needed(cls, value: str, info: ValidationInfo) -> str:
        data = info.data
        given = {"GUICHET_GRAPH_TENANT_ID": data.get("graph_tenant_id"),
                 "GUICHET_GRAPH_CLIENT_ID": data.get("graph_client_id")}
        missing = [name for name, value_given in given.items() if not value_given]
        secret, certificate = data.get("graph_client_secret"), data.get("graph_certificate_path")
        if not secret and not certificate:
            missing.append("GUICHET_GRAPH_CLIENT_SECRET or GUICHET_GRAPH_CERTIFICATE_PATH")
        if secret and certificate:
            raise ValueError("give GUICHET_GRAPH_CLIENT_SECRET or GUICHET_GRAPH_CERTIFICATE_PATH, not both")
        # Half a configuration is a mistake in any environment; none at all is local mode, for development.
        started = len(missing) < 3
        if missing and (value == "production" or started):
            why = "production needs Microsoft Graph" if value == "production" else "Microsoft Graph half configured"
            raise ValueError(f"{why}: missing {', '.join(missing)}")
        return value

    @property
    def graph_configured(self) -> bool:
        """Whether Teams meetings are created through Microsoft Graph (else local mode)."""
        return bool(self.graph_tenant_id and self.graph_client_id
                    and (self.graph_client_secret or self.graph_certificate_path))

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("app_type")
    @classmethod
    def _known_app_type(cls, value: str) -> str:
        if value not in ("MultiTenant", "SingleTenant", "UserAssignedMSI"):
            raise ValueError("must be MultiTenant, SingleTenant or UserAssignedMSI")
        return value

    @property
    def authentication_enabled(self) -> bool:
        return bool(self.app_id)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; raise SettingsError with a one-line message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from exc
