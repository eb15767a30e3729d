"""The import rules of docs/architecture.md, checked on the source: a layer that reaches for the wrong
neighbour fails here, not in review."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

# Pure libraries the domain may use besides the standard library.
DOMAIN_LIBRARIES = {"pydantic", "holidays", "phonenumbers", "regex"}
# What services must never import (they go through bot.services.ports).
SERVICE_FORBIDDEN = ("storage", "sqlalchemy", "cards", "dialogs", "botbuilder", "botframework", "bot.turn", "aiohttp")
# The modules of bot/ that send cards, and so may build them: the turn's handler and the job handlers.
CARD_SENDERS = ("bot/teams_bot.py", "bot/jobs/")
# Where the turn handler may be imported: where the bot is built.
TURN_HANDLER_BUILDERS = ("bot/app.py", "bot/wiring.py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((PROJECT_ROOT / folder).rglob("*.py"))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", _modules("bot/services"), ids=lambda p: p.name)
def test_services_depend_on_ports_and_the_domain_only(path: Path) -> None:
    wrong = sorted(name for name in _imports(path) if any(_under(name, bad) for bad in SERVICE_FORBIDDEN))
    assert wrong == [], f"{path.relative_to(PROJECT_ROOT)} imports {wrong}"


@pytest.mark.parametrize("path", _modules("bot/domain"), ids=lambda p: p.name)
def test_the_domain_imports_the_standard_library_and_pure_libraries_only(path: Path) -> None:
    wrong = sorted(
        name for name in _imports(path)
        if name != "__future__" and not _under(name, "bot.domain")
        and name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] not in DOMAIN_LIBRARIES
    )
    assert wrong == [], f"{path.relative_to(PROJECT_ROOT)} imports {wrong}"


def test_bot_imports_cards_only_where_it_sends_them() -> None:
    users = {
        str(path.relative_to(PROJECT_ROOT)) for path in _modules("bot")
        if any(_under(name, "cards") for name in _imports(path))
    }
    assert [user for user in sorted(users) if not user.startswith(CARD_SENDERS)] == []


def test_only_the_composition_root_imports_the_turn_handler() -> None:
    """Replies come from bot.replies, shared by dialogs and the notifier: the turn handler
    (bot.teams_bot) is built where everything is built, and imported nowhere else."""
    users = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("bot", "cards", "dialogs", "storage", "bench") for path in _modules(folder)
        if "bot.teams_bot" in _imports(path)
    ]
    assert [user for user in users if user not in TURN_HANDLER_BUILDERS] == []


def _use_case_services() -> set[str]:
    """The use-case services: the classes named *Service that bot/services defines."""
    return {
        node.name for path in _modules("bot/services")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Service")
    }


def test_use_case_services_are_built_in_the_composition_root_only() -> None:
    """Each service is built once, in bot/wiring.py, and handed to what calls it."""
    services = _use_case_services()
    assert {"BookingService", "StaffService", "OutcomeService"} <= services
    builders = set()
    for folder in ("bot", "cards", "dialogs", "storage", "bench"):
        for path in _modules(folder):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = node.func.id if isinstance(node.func, ast.Name) \
                        else node.func.attr if isinstance(node.func, ast.Attribute) else None
                    if name in services:
                        builders.add(str(path.relative_to(PROJECT_ROOT)))
    assert sorted(builders - {"bot/wiring.py"}) == []


# The services whose constructor names the few parts they use (issue 19), not the whole Services bag.
NARROW_SERVICES = (
    "bot.services.reminders.ReminderService", "bot.services.meetings.MeetingService",
    "bot.services.people.PeopleService", "bot.services.retention.RetentionService",
    "bot.services.consent.ConsentService", "bot.services.staff.StaffService",
    "bot.services.outcomes.OutcomeService", "bot.services.privacy.PrivacyService",
    "bot.services.booking.BookingService",
)


@pytest.mark.parametrize("name", NARROW_SERVICES)
def test_narrow_services_do_not_take_the_services_bag(name: str) -> None:
    """A service lists what it depends on: its constructor takes no Services parameter."""
    from bot.services.container import Services
    module, _, cls = name.rpartition(".")
    signature = inspect.signature(getattr(__import__(module, fromlist=[cls]), cls).__init__, eval_str=True)
    parameters = signature.parameters.values()
    assert [p.name for p in parameters if p.annotation is Services or p.name == "services"] == []


def test_dialogs_are_not_waterfalls() -> None:
    """One way to write a dialog: a card flow (dialogs/card_flow.py) with its states in one table."""
    users = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("bot", "dialogs") for path in _modules(folder)
        if "WaterfallDialog" in path.read_text(encoding="utf-8")
    ]
    assert users == []


# The dialog machinery itself, not flows: the card-flow base, the card wait, the router and the root.
DIALOG_MACHINERY = {"CardFlow", "AwaitCard", "RouteDialog", "MainDialog"}


def test_every_flow_is_a_card_flow() -> None:
    """No flow written straight on botbuilder's Dialog: only the machinery derives from it."""
    direct = sorted(
        node.name for path in _modules("dialogs") for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id in ("Dialog", "ComponentDialog") for base in node.bases)
    )
    assert [name for name in direct if name not in DIALOG_MACHINERY] == []


def _depth_below_dialog(cls: type) -> int:
    """How many classes deep `cls` is below botbuilder's Dialog: 1 for CardFlow, 2 for a flow on it."""
    from botbuilder.dialogs import Dialog

    if cls is Dialog:
        return 0
    return 1 + max(_depth_below_dialog(base) for base in cls.__bases__ if issubclass(base, Dialog))


def test_every_dialog_is_at_most_two_deep() -> None:
    """A flow subclasses CardFlow directly; what flows share they hold or call (composition), so each
    flow's steps are read in its own class and its STATES table, not up a chain of base classes."""
    from botbuilder.dialogs import Dialog

    too_deep = set()
    for path in _modules("dialogs"):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        module = importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, Dialog) and _depth_below_dialog(cls) > 2:
                too_deep.add(f"{cls.__module__}.{cls.__qualname__}")
    assert sorted(too_deep) == []


def test_nothing_outside_tests_imports_tests() -> None:
    users = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("bot", "cards", "dialogs", "storage", "bench") for path in _modules(folder)
        if any(_under(name, "tests") for name in _imports(path))
    ]
    assert users == []


def test_nothing_reads_beside_the_repository() -> None:
    """A clone with nothing beside it must work: no path names the folder beside the project."""
    marks = ("../", "shared/schemas", '"shared"', "'shared'")
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("bot", "cards", "dialogs", "storage", "bench", "tests") for path in _modules(folder)
        if path != Path(__file__) and any(mark in path.read_text(encoding="utf-8") for mark in marks)
    ]
    assert offenders == []


def _port_members(port: type) -> dict[str, object]:
    return {name: value for name, value in vars(port).items()
            if not name.startswith("_") or name in ("__call__", "__aenter__", "__aexit__")}


def _implementations() -> list[tuple[type, type]]:
    from bot.domain.clock import Clock, SystemClock
    from bot.integrations.graph import GraphMeetingProvider
    from bot.integrations.graph_availability import GraphAvailability
    from bot.proactive import TeamsNotifier
    from bot.services import ports
    from bot.wiring import InstallerForApp
    from storage import unit_of_work
    from storage.repositories.appointments import AppointmentRepository, SlotClaimRepository
    from storage.repositories.audit import AuditRepository
    from storage.repositories.citizens import CitizenRepository
    from storage.repositories.consents import ConsentRepository
    from storage.repositories.counselors import CounselorRepository
    from storage.repositories.jobs import JobRepository
    from storage.repositories.outcomes import OutcomeRepository
    from storage.repositories.privacy import PrivacyRepository

    return [
        (ports.CitizenRepository, CitizenRepository),
        (ports.CounselorRepository, CounselorRepository),
        (ports.ConsentRepository, ConsentRepository),
        (ports.AppointmentRepository, AppointmentRepository),
        (ports.SlotClaimRepository, SlotClaimRepository),
        (ports.JobRepository, JobRepository),
        (ports.AuditRepository, AuditRepository),
        (ports.ErasureRepository, PrivacyRepository),
        (ports.OutcomeRepository, OutcomeRepository),
        (ports.UnitOfWork, unit_of_work.UnitOfWork),
        (ports.UnitOfWorkFactory, unit_of_work.UnitOfWorkFactory),
        (ports.Notifier, TeamsNotifier),
        (ports.MeetingProvider, GraphMeetingProvider),
        (ports.AppInstaller, InstallerForApp),
        (ports.AvailabilityProvider, GraphAvailability),
        (Clock, SystemClock),
    ]


@pytest.mark.parametrize(("port", "implementation"), _implementations(), ids=lambda c: c.__name__)
def test_the_real_adapters_fit_their_ports(port: type, implementation: type) -> None:
    """What a service calls on a port exists on the adapter wiring gives it, with the same parameters
    and the same await-ness (mypy is not in `make test`; this catches a port and its adapter drifting)."""
    for name, member in _port_members(port).items():
        declared = hasattr(implementation, name) or name in inspect.get_annotations(implementation)
        assert declared, f"{implementation.__name__} has no {name}"
        if not callable(member) or isinstance(member, property):
            continue
        real = getattr(implementation, name)
        if isinstance(real, property):
            continue
        wanted = inspect.signature(member)
        got = inspect.signature(real)
        assert list(got.parameters) == list(wanted.parameters), (name, got, wanted)
        assert inspect.iscoroutinefunction(real) == inspect.iscoroutinefunction(member), name


def _status_words() -> set[str]:
    from bot.domain.appointment import AppointmentStatus, MeetingState
    from bot.domain.jobs import JobResult, JobStatus, NoticeKind

    return {member.value for enum in (AppointmentStatus, MeetingState, JobStatus, JobResult, NoticeKind)
            for member in enum}


def _compared_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants on either side of a comparison (`x == "booked"`, `x in ("link", "link_changed")`)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                parts = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                found += [(node.lineno, part.value) for part in parts
                          if isinstance(part, ast.Constant) and isinstance(part.value, str)]
    return found


def test_no_status_is_compared_as_a_string() -> None:
    """Statuses, meeting states, job results and notice kinds are enums (bot/domain): code compares members,
    so a renamed or misspelt value is a type error, not a branch that never runs. Migrations keep their
    literals (they describe the schema as it was), and the Teams stand-in in bot/devtools reads card JSON."""
    words = _status_words()
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} {value!r}"
        for folder in ("bot", "cards", "dialogs", "storage") for path in _modules(folder)
        if "migrations" not in path.parts and "devtools" not in path.parts
        for line, value in _compared_strings(ast.parse(path.read_text(encoding="utf-8")))
        if value in words
    ]
    assert offenders == []
