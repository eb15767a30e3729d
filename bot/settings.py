"""Process settings: environment variables (prefix GUICHET_), a `.env` file, and the agency file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
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
        50.0, gt=0, le=50, description="This process's share of Teams' ~50 messages/s per app and tenant"
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
    # Tests point token validation at a local OpenID metadata endpoint.
    openid_metadata_url: str | None = None

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
