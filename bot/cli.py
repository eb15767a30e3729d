"""The `guichet` command: serve, worker, chat, db upgrade, jobs, and the privacy and audit tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.domain.agency import AgencyConfigError, load_agency
from bot.production import production_refusals
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("guichet")


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDK logs whole activities (message texts) at INFO in places: keep it quiet.
    for noisy in ("botbuilder", "botframework", "msrest", "aiohttp.access", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    agency = load_agency(settings.agency)
    app = create_app(settings, agency=agency)
    host = args.host or settings.host
    port = args.port or settings.port
    log.info("Guichet for agency %s listening on http://%s:%s/api/messages", agency.id, host, port)
    # run_app stops accepting connections on SIGINT/SIGTERM and lets running turns finish.
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=10, access_log=None)
    return 0


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.devtools.terminal import run_chat_from_args

    if args.role == "counselor" and not args.aad_object_id:
        # A counselor is whoever the agency file lists: by default, play its first one.
        counselor = load_agency(settings.agency).counselors[0]
        args.aad_object_id, args.name = counselor.id, args.name or counselor.display_name
    return run_chat_from_args(args)


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from storage.migrate import upgrade_database

    asyncio.run(upgrade_database(settings.database_url))
    print("database is up to date")
    return 0


def _package_app(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.teams_app import build_package

    app_id = args.app_id or settings.app_id
    if not app_id:
        print("guichet: no app id: pass --app-id or set MicrosoftAppId (the Azure Bot's app id)", file=sys.stderr)
        return 2
    agency = load_agency(settings.agency)
    try:
        package = build_package(agency, app_id=app_id, version=args.version, base_url=args.base_url)
    except ValueError as exc:
        print(f"guichet: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or f"guichet-{agency.id}.zip")
    out.write_bytes(package)
    print(f"wrote {out}: Teams app package for {agency.id}, version {args.version}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guichet", description="Guichet: appointments with a counselor in Teams")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bot's HTTP server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(handler=_serve, production_checked=True)

    chat = sub.add_parser("chat", help="talk to a running bot from the terminal, as Teams would")
    from bot.devtools.terminal import add_chat_arguments

    add_chat_arguments(chat)
    chat.set_defaults(handler=_chat)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="create or migrate the schema")
    upgrade.set_defaults(handler=_db)

    package = sub.add_parser("package-app", help="build the Teams app package (manifest, icons, translations)")
    package.add_argument("--app-id", help="the bot's Microsoft App ID (default: MicrosoftAppId)")
    package.add_argument("--version", default="1.0.0", help="app version, x.y.z; raise it for every upload")
    package.add_argument("--base-url", help="https:// address of the bot, added to validDomains")
    package.add_argument("--out", help="zip file to write (default: guichet-<agency>.zip)")
    package.set_defaults(handler=_package_app)

    doctor = sub.add_parser("doctor", help="check the settings, database, agency file, Bot Framework and Graph access")
    doctor.set_defaults(handler=None)

    from bot.jobs_cli import add_job_commands
    from bot.privacy_cli import add_privacy_commands

    add_privacy_commands(sub)
    add_job_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        from bot.doctor import run_doctor

        # The doctor loads the settings itself: invalid settings are its first line, not a stop.
        return run_doctor(load_settings)
    try:
        settings = load_settings()
        if getattr(args, "production_checked", False):
            refusals = production_refusals(settings)
            for refusal in refusals:
                print(f"guichet: production refuses to start: {refusal}", file=sys.stderr)
            if refusals:
                return 2
        _configure_logging(settings.log_level)
        return int(args.handler(settings, args) or 0)
    except (SettingsError, AgencyConfigError) as exc:
        print(f"guichet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
