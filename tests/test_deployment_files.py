"""The deployment files pass only settings the bot knows, and everything production needs.

`deployment/compose.yaml` + `deployment/.env.example` (an on-premises install) and the Bicep templates in
`deployment/azure/` (Azure) are read as text: no Docker engine or Bicep compiler runs here.
- compose.yaml is read by a small parser for the block-style YAML subset it uses (mappings, lists, flow
  lists, one anchor and merge keys); anything outside that subset fails the test instead of being skipped.
  PyYAML is not among the project's dependencies, and this one file does not justify adding it.
- Bicep: no compiler installs here. pycep-parser (a Python grammar of Bicep, the one checkov uses) checks that
  every template parses; it does not know the Azure resource types, so property names and API versions stay
  unchecked until `az bicep build`. The container settings are extracted with a regular expression over the
  `{ name: '…' value|secretRef: … }` objects (multi-line, as the templates write them): the required settings
  being found proves the expression still matches how the templates are written. `.bicepparam` files, which
  pycep does not read, are checked by regular expressions too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest
from pycep import BicepParser
from pydantic import AliasChoices

from bot.domain.agency import load_agency
from bot.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from tests.conftest import RunningBot

DEPLOYMENT = PROJECT_ROOT / "deployment"
COMPOSE = DEPLOYMENT / "compose.yaml"
ENV_EXAMPLE = DEPLOYMENT / ".env.example"
DOCKERFILE = DEPLOYMENT / "Dockerfile"
AZURE = DEPLOYMENT / "azure"
BOT_SERVICES = ("migrate", "bot", "worker")


def setting_names() -> set[str]:
    """Every environment name Settings reads (lower-cased: pydantic-settings ignores case)."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).lower() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.lower())
        else:
            names.add(f"guichet_{field_name}")
    return names


def production_problems(env: dict[str, str]) -> list[str]:
    """What production requires that `env` (the settings a process gets) does not give."""
    problems = []
    for name in ("MicrosoftAppId", "MicrosoftAppType", "GUICHET_GRAPH_TENANT_ID", "GUICHET_GRAPH_CLIENT_ID",
                 "GUICHET_METRICS_TOKEN", "GUICHET_DATABASE_URL", "GUICHET_ENV"):
        if name not in env:
            problems.append(f"{name} is not passed")
    credentials = {"MultiTenant": ["MicrosoftAppPassword"],
                   "SingleTenant": ["MicrosoftAppPassword", "MicrosoftAppTenantId"],
                   "UserAssignedMSI": ["MicrosoftAppTenantId"]}
    app_type = env.get("MicrosoftAppType", "")
    if app_type not in credentials:
        problems.append(f"MicrosoftAppType {app_type!r} is not a known type")
    problems += [f"{name} is not passed for {app_type}" for name in credentials.get(app_type, []) if name not in env]
    if "GUICHET_GRAPH_CLIENT_SECRET" not in env and "GUICHET_GRAPH_CERTIFICATE_PATH" not in env:
        problems.append("neither GUICHET_GRAPH_CLIENT_SECRET nor GUICHET_GRAPH_CERTIFICATE_PATH is passed")
    if not env.get("GUICHET_DATABASE_URL", "").startswith("postgresql+asyncpg://"):
        problems.append("GUICHET_DATABASE_URL is not a postgresql+asyncpg:// URL")
    if env.get("GUICHET_ENV") != "production":
        problems.append("GUICHET_ENV is not production")
    return problems


# --- compose.yaml: a parser for the YAML subset it is written in ---------------------------------------------

def _scalar(text: str) -> object:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)  # flow lists are written as JSON arrays of strings
    if text[:1] in "\"'":
        return text[1:-1]
    return text


def parse_compose(text: str) -> dict:
    """Block mappings and lists with 2-space indents, `&anchor` on a mapping and `<<: *anchor` merges."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))
    anchors: dict[str, dict] = {}

    def block(index: int, indent: int) -> tuple[object, int]:
        if lines[index][1].startswith("- "):
            items = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                items.append(_scalar(lines[index][1][2:]))
                index += 1
            return items, index
        mapping: dict = {}
        while index < len(lines) and lines[index][0] == indent:
            line = lines[index][1]
            match = re.fullmatch(r"([\w.<-]+):(?:\s+(.*))?", line)
            assert match, f"compose.yaml: unsupported line {line!r}"
            key, rest = match.group(1), (match.group(2) or "")
            index += 1
            if key == "<<":
                assert rest.startswith("*") and rest[1:] in anchors, f"compose.yaml: unknown merge {rest!r}"
                mapping = {**anchors[rest[1:]], **mapping}
                continue
            anchor = rest[1:] if rest.startswith("&") else None
            if rest and not anchor:
                mapping[key] = _scalar(rest)
            elif index < len(lines) and lines[index][0] > indent:
                mapping[key], index = block(index, lines[index][0])
            else:
                mapping[key] = {}
            if anchor:
                anchors[anchor] = mapping[key]
        return mapping, index

    parsed, end = block(0, 0)
    assert end == len(lines), f"compose.yaml: could not read from line {lines[end][1]!r}"
    assert isinstance(parsed, dict)
    return parsed


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines; comments and blank lines skipped (commented-out settings are not passed)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def compose_interpolations(text: str) -> set[str]:
    """Variables compose itself substitutes (`${NAME}`, `${NAME:-default}`, `${NAME:?message}`)."""
    return set(re.findall(r"\$\{(\w+)", text))


@pytest.fixture(scope="module")
def compose() -> dict:
    return parse_compose(COMPOSE.read_text(encoding="utf-8"))


def service_env(compose: dict, service: str) -> dict[str, str]:
    """What one service's process gets: its env_file (the filled-in copy of .env.example), then `environment`."""
    spec = compose["services"][service]
    assert spec["env_file"] == ".env", f"{service} reads its settings from deployment/.env"
    environment = {name: str(value) for name, value in spec.get("environment", {}).items()}
    password = read_env_file(ENV_EXAMPLE)["POSTGRES_PASSWORD"]
    environment = {name: value.replace("${POSTGRES_PASSWORD}", password) for name, value in environment.items()}
    return {**read_env_file(ENV_EXAMPLE), **environment}


def test_the_compose_parser_reads_the_shape_the_issue_asks_for(compose: dict) -> None:
    services = compose["services"]
    assert services["db"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services["db"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["bot"]["command"] == ["serve"] and services["bot"]["environment"]["GUICHET_JOBS"] == "off"
    assert services["worker"]["command"] == ["worker"]
    for service in ("bot", "worker"):
        assert services[service]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The image's /healthz check is for the web process only.
    assert services["worker"]["healthcheck"] == {"disable": "true"}
    assert services["migrate"]["healthcheck"] == {"disable": "true"}


def test_compose_and_env_example_pass_only_settings_the_bot_knows(compose: dict) -> None:
    known = setting_names()
    compose_own = compose_interpolations(COMPOSE.read_text(encoding="utf-8"))
    assert not {name for name in compose_own if name.lower() in known or name.startswith(("GUICHET_", "Microsoft"))}, \
        "compose's own variables must not look like the bot's settings"
    for service in BOT_SERVICES:
        unknown = {name for name in service_env(compose, service) if name.lower() not in known} - compose_own
        assert not unknown, f"{service} is passed names bot/settings.py does not read: {sorted(unknown)}"


def test_compose_passes_every_setting_production_requires(compose: dict) -> None:
    for service in BOT_SERVICES:
        assert production_problems(service_env(compose, service)) == [], service


def test_the_env_example_as_shipped_refuses_to_start_until_filled_in(compose: dict,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = service_env(compose, "bot")
    for name in env:
        monkeypatch.setenv(name, env[name])
    with pytest.raises(SettingsError, match="^invalid setting"):
        load_settings(_env_file=None)
    # The trial the file describes: development, Microsoft settings left empty.
    monkeypatch.setenv("GUICHET_ENV", "development")
    settings = load_settings(_env_file=None)
    assert settings.database_url.startswith("postgresql+asyncpg://guichet:")
    assert settings.jobs == "off" and settings.agency.name == "agency.toml"


def test_the_dockerfile_sets_only_settings_and_points_at_a_shipped_agency() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    blocks = re.findall(r"^ENV (.*?)(?<!\\)\n", text, flags=re.MULTILINE | re.DOTALL)
    env = dict(re.findall(r"(\w+)=(\S+)", "\n".join(blocks)))
    settings = {name: value for name, value in env.items() if name.startswith("GUICHET_")}
    assert set(settings) == {"GUICHET_HOST", "GUICHET_PORT", "GUICHET_AGENCY"}
    assert {name.lower() for name in settings} <= setting_names()
    agency = settings["GUICHET_AGENCY"].removeprefix("/app/")
    assert (PROJECT_ROOT / agency).is_file()
    assert 'ENTRYPOINT ["guichet"]' in text and 'CMD ["serve"]' in text


# --- Bicep: regular expressions over the templates -----------------------------------------------------------

BICEP_ENV = re.compile(r"\{\s*name:\s*'(?P<name>[^']+)'\s*(?P<kind>value|secretRef):\s*(?P<value>[^\n]+)")


def bicep_env() -> dict[str, str]:
    """Container settings across the templates: name -> literal value, `(expression)` or `secret:name`."""
    env: dict[str, str] = {}
    for path in sorted(AZURE.rglob("*.bicep")):
        for match in BICEP_ENV.finditer(path.read_text(encoding="utf-8")):
            value = match["value"].strip()
            if match["kind"] == "secretRef":
                env[match["name"]] = f"secret:{value.strip(chr(39))}"
            else:
                env[match["name"]] = value.strip("'") if value.startswith("'") else f"({value})"
    return env


def bicep_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(AZURE.rglob("*.bicep")))


@pytest.mark.parametrize("template", sorted(path.relative_to(AZURE).as_posix() for path in AZURE.rglob("*.bicep")))
def test_each_bicep_template_parses(template: str) -> None:
    tree = BicepParser().parse(file_path=AZURE / template)
    assert tree.get("resources") or tree.get("modules"), f"{template} declares nothing"


def test_the_bicep_templates_pass_only_settings_the_bot_knows() -> None:
    env = bicep_env()
    unknown = {name for name in env if name.lower() not in setting_names()}
    assert not unknown, f"the templates pass names bot/settings.py does not read: {sorted(unknown)}"


def test_the_bicep_templates_pass_every_setting_production_requires() -> None:
    env = bicep_env()
    assert env["GUICHET_ENV"] == "production"
    assert env["MicrosoftAppType"] == "UserAssignedMSI"
    # The database address is a Key Vault secret; its value is built in main.bicep.
    assert env["GUICHET_DATABASE_URL"] == "secret:database-url"
    built = re.search(r"databaseUrl:\s*'([^'\n]*)'", (AZURE / "main.bicep").read_text(encoding="utf-8"))
    assert built and built.group(1).startswith("postgresql+asyncpg://")
    assert production_problems({**env, "GUICHET_ENV": "production", "GUICHET_DATABASE_URL": built.group(1)}) == []
    # The web replicas leave the jobs to the worker.
    assert env["GUICHET_JOBS"] == "off"


def test_the_container_apps_probe_the_health_routes() -> None:
    text = (AZURE / "modules" / "containerapps.bicep").read_text(encoding="utf-8")
    probes = re.findall(r"type: '(Startup|Liveness|Readiness)'\s*httpGet: \{\s*path: '([^']+)'", text)
    assert dict(probes) == {"Startup": "/healthz", "Liveness": "/healthz", "Readiness": "/readyz"}
    assert "param webMinReplicas int" in text and "@minValue(2)\nparam webMinReplicas" in text
    assert "@minValue(1)\nparam workerReplicas" in text
    assert "minReplicas: workerReplicas" in text, "the worker is never scaled to zero"
    assert "triggerType: 'Manual'" in text and "'db'\n            'upgrade'" in text


async def test_the_health_routes_the_image_and_templates_probe_answer(running_bot: RunningBot,
                                                                      http: aiohttp.ClientSession) -> None:
    paths = set(re.findall(r"path: '(/[a-z]+)'", bicep_text()))
    paths |= set(re.findall(r"127\.0\.0\.1:%s(/[a-z]+)", DOCKERFILE.read_text(encoding="utf-8")))
    assert paths == {"/healthz", "/readyz"}
    base = running_bot.url.removesuffix("/api/messages")
    for path in sorted(paths):
        async with http.get(base + path) as response:
            assert response.status == 200, path


WEBSITE_SETTINGS = ("GUICHET_WEB_ORIGINS", "GUICHET_DIRECTLINE_ENDPOINT", "GUICHET_WEB_TOKENS_PER_MINUTE",
                    "GUICHET_MANAGE_LINK_URL", "GUICHET_MAIL")


def bicep_resource_text(template: str, symbol: str) -> str:
    """One `resource <symbol> …` block of a template, up to the next top-level declaration."""
    text = (AZURE / template).read_text(encoding="utf-8")
    found = re.search(rf"^resource {symbol} .*?(?=^(?:resource|output|var|param|module) )", text,
                      flags=re.MULTILINE | re.DOTALL)
    assert found, f"{template}: no resource {symbol}"
    return found.group(0)


def test_the_bicep_templates_pass_the_website_settings_to_web_and_worker() -> None:
    env = bicep_env()
    # The secrets come from Key Vault; the rest are plain values built from main.bicep's parameters.
    assert env["GUICHET_DIRECTLINE_SECRET"] == "secret:directline-secret"
    assert env["GUICHET_MANAGE_LINK_SECRET"] == "secret:manage-link-secret"
    assert env["GUICHET_WEB_ORIGINS"] == "(string(webOrigins))", "a JSON list, as bot/settings.py reads it"
    for name in WEBSITE_SETTINGS:
        assert name in env, f"{name} is not passed"
    # The worker sends the e-mails and their manage links: it gets the shared settings and the link secret;
    # the Direct Line secret (the token endpoint's) stays with the web app.
    web, worker = (bicep_resource_text("modules/containerapps.bicep", app) for app in ("web", "worker"))
    assert "env: concat(allSettings," in web and "env: concat(allSettings," in worker
    assert "secrets: allSecrets" in worker and "directline" not in worker
    assert "secrets: concat(allSecrets, directLineSecrets)" in web and "'directline-secret'" in web
    containerapps = (AZURE / "modules" / "containerapps.bicep").read_text(encoding="utf-8")
    shared = re.search(r"^var settings = \[(.*?)^\]", containerapps, flags=re.MULTILINE | re.DOTALL)
    assert shared and all(f"'{name}'" in shared.group(1) for name in WEBSITE_SETTINGS)
    assert "var allSettings = concat(settings, websiteSecretSettings)" in containerapps
    # The secrets are read from the vault the template writes them to.
    vault = (AZURE / "modules" / "keyvault.bicep").read_text(encoding="utf-8")
    assert "name: 'directline-secret'" in vault and "name: 'manage-link-secret'" in vault


def test_the_direct_line_site_has_enhanced_authentication_for_the_websites_origins_only() -> None:
    resource = BicepParser().parse(file_path=AZURE / "modules" / "bot.bicep")["resources"]["directLine"]
    assert resource["type"] == "Microsoft.BotService/botServices/channels"
    # Only when the website's origins are given: a Teams-only deployment has no Direct Line channel.
    assert resource["config"]["condition"]["operator"]["type"] == "not"
    assert resource["config"]["condition"]["operator"]["operands"]["bool_value"]["function"] == {
        "type": "empty", "parameters": {"item_to_test": "webOrigins"}}
    channel = resource["config"]["config"]["properties"]
    assert channel["channelName"] == "DirectLineChannel"
    [site] = channel["properties"]["sites"]
    assert site["isSecureSiteEnabled"] is True and site["trustedOrigins"] == "webOrigins"
    assert site["isV3Enabled"] is True and site["isV1Enabled"] is False
    main = (AZURE / "main.bicep").read_text(encoding="utf-8")
    assert "param webOrigins array = []" in main and re.search(r"^\s+webOrigins: webOrigins$", main, re.MULTILINE)


def test_the_example_websites_give_valid_origins_and_a_mailbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in sorted(AZURE.glob("*.bicepparam")):
        text = path.read_text(encoding="utf-8")
        given = dict(re.findall(r"^param (\w+) = (.+)$", text, flags=re.MULTILINE))
        origins = re.search(r"^param webOrigins = \[(.*?)\]", text, flags=re.MULTILINE | re.DOTALL)
        assert origins, path.name
        values = re.findall(r"'([^']+)'", origins.group(1))
        assert values, f"{path.name}: the example shows the website on"
        # What the containers get (`string(webOrigins)`): a JSON list the settings accept as origins.
        monkeypatch.setenv("GUICHET_WEB_ORIGINS", json.dumps(values))
        monkeypatch.setenv("GUICHET_MANAGE_LINK_URL", given["manageLinkUrl"].strip("'"))
        settings = load_settings(_env_file=None)
        assert settings.web_origins == values and settings.manage_link_url.startswith(values[0] + "/")
        for secret in ("directLineSecret", "manageLinkSecret"):
            assert given[secret].startswith("readEnvironmentVariable("), f"{path.name}: {secret}"
        # GUICHET_MAIL=graph refuses to start without the agency file's mailbox.
        if given.get("citizenMail") == "'graph'":
            agency = load_agency(DEPLOYMENT / "agencies" / path.stem / "agency.toml")
            assert agency.mailbox, f"{path.stem}: mail by Graph needs a mailbox in the agency file"


def test_one_parameter_file_per_example_agency_sets_every_required_parameter() -> None:
    main = (AZURE / "main.bicep").read_text(encoding="utf-8")
    declared = dict(re.findall(r"^param (\w+) \w+( = )?", main, flags=re.MULTILINE))
    required = {name for name, default in declared.items() if not default}
    agencies = {path.parent.name for path in (DEPLOYMENT / "agencies").glob("*/agency.toml")}
    files = sorted(AZURE.glob("*.bicepparam"))
    assert {path.stem for path in files} == agencies
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "using 'main.bicep'" in text
        given = dict(re.findall(r"^param (\w+) = (.+)$", text, flags=re.MULTILINE))
        assert set(given) <= set(declared), f"{path.name} sets parameters main.bicep does not declare"
        assert required <= set(given), f"{path.name} misses {sorted(required - set(given))}"
        assert given["agencyId"] == f"'{path.stem}'"
        # Secrets come from the deploying person's environment, never from the file.
        for secret in ("graphClientSecret", "metricsToken", "postgresAdminPassword"):
            assert given[secret].startswith("readEnvironmentVariable("), f"{path.name}: {secret}"


def test_the_it_guide_links_only_files_that_exist() -> None:
    for guide in (DEPLOYMENT / "README.md", DEPLOYMENT / "teams" / "README.md", PROJECT_ROOT / "README.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", guide.read_text(encoding="utf-8")):
            if not target.startswith("https://"):
                assert (guide.parent / target).exists(), f"{guide.name} links {target}"
