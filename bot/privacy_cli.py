"""`guichet retention run` and `guichet audit verify|export|check-proof`: the privacy and audit tools.

Each command opens the configured database, does its work in short transactions and prints a plain
report. Exit codes: 0 done / intact, 1 the audit trail (or proof) is broken or nothing was found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bot.domain.audit import verify_proof
from bot.services.audit import appointment_proof, verify
from bot.services.container import Services
from bot.settings import Settings
from bot.wiring import Wiring, build_services


async def _with_wiring(settings: Settings, work: Any) -> Any:
    wiring = build_services(settings)
    try:
        return await work(wiring)
    finally:
        await wiring.close()


async def _with_services(settings: Settings, work: Any) -> Any:
    async def on_services(wiring: Wiring) -> Any:
        return await work(wiring.services)

    return await _with_wiring(settings, on_services)


async def _retention(wiring: Wiring) -> int:
    report = await wiring.use_cases.retention.run()
    print(f"retention run for {wiring.services.agency.id}:")
    for name, count in report.as_dict().items():
        print(f"  {name.replace('_', ' ')}: {count}")
    return 0


async def _verify(services: Services) -> int:
    report = await verify(services.uow, services.agency.id)
    if report.ok:
        head = f"event {report.head_id}, hash {report.head_hash}" if report.head_id is not None else "empty"
        print(f"audit trail of {services.agency.id} is intact: {report.checked} events; head: {head}")
        return 0
    print(f"audit trail of {services.agency.id} is BROKEN at event {report.broken_id}: {report.reason}")
    print(f"  the {report.checked} events before it are intact")
    return 1


def _export(settings: Settings, appointment_id: str, out: Path | None) -> int:
    async def fetch(services: Services) -> dict[str, Any] | None:
        return await appointment_proof(services.uow, services.agency.id, appointment_id)

    proof = asyncio.run(_with_services(settings, fetch))
    if proof is None:
        print(f"guichet: no audit event about appointment {appointment_id}", file=sys.stderr)
        return 1
    text = json.dumps(proof, ensure_ascii=False, indent=2)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out}: {len(proof['events'])} events, segment verified: {proof['segment_verified']}")
    return 0 if proof["segment_verified"] else 1


def check_proof(path: Path) -> int:
    """Verify an exported proof on its own (no database): links and hashes from its start hash."""
    try:
        proof = json.loads(path.read_text(encoding="utf-8"))
        report = verify_proof(proof["events"], start_hash=proof["start_hash"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"guichet: {path} is not a readable proof: {type(error).__name__}", file=sys.stderr)
        return 1
    if report.ok:
        print(f"proof {path} is intact: {report.checked} linked events, last hash {report.head_hash}")
        return 0
    print(f"proof {path} is BROKEN at event {report.broken_id}: {report.reason}")
    return 1


def _retention_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_with_wiring(settings, _retention))


def _audit_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.audit_command == "verify":
        return asyncio.run(_with_services(settings, _verify))
    if args.audit_command == "export":
        return _export(settings, args.appointment, args.out)
    return check_proof(args.proof)


def add_privacy_commands(sub: Any) -> None:
    """Add `retention` and `audit` to the `guichet` command's subparsers."""
    retention = sub.add_parser("retention", help="apply the agency's retention periods")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser("run", help="anonymise, erase, delete and prune what is past its period")
    run.set_defaults(handler=_retention_command)

    audit = sub.add_parser("audit", help="check or extract the tamper-evident audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify_parser = audit_sub.add_parser("verify", help="check the whole chain (exit 1 and the row if broken)")
    verify_parser.set_defaults(handler=_audit_command)
    export = audit_sub.add_parser("export", help="a verifiable JSON proof for one appointment")
    export.add_argument("--appointment", required=True, help="the appointment id")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.set_defaults(handler=_audit_command)
    check = audit_sub.add_parser("check-proof", help="verify an exported proof file without the database")
    check.add_argument("proof", type=Path)
    check.set_defaults(handler=_audit_command)
