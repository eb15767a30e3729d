"""The one composition root: settings in, the running parts out (engine, unit of work, clock, services,
the notifier that writes to Teams conversations, the use-case services, the bot and its dialogs, the
job runner's handlers). Nothing else constructs a use-case service.

The web app (`bot.app.create_app`), every CLI command and the job runner build what they need here,
so there is one place that decides which implementation stands behind each port. Tests pass fakes
(a clock, an agency, a notifier) instead of the defaults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from azure.core.credentials_async import AsyncTokenCredential
from botbuilder.integration.aiohttp import CloudAdapter
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapter import ReusingAuthentication, bot_framework_authentication, create_adapter
from bot.connector_http import RetryPolicy
from bot.domain.agency import Agency, load_agency
from bot.domain.clock import SystemClock
from bot.domain.jobs import JobKind
from bot.domain.slots import SlotEngine
from bot.integrations.graph import build_meeting_provider
from bot.integrations.graph_availability import GraphAvailability
from bot.integrations.graph_client import GraphClient
from bot.integrations.graph_install import TeamsAppInstaller
from bot.integrations.mail import FolderMailer, GraphMailer
from bot.jobs.closing import CloseEndedJob
from bot.jobs.email import EmailJob
from bot.jobs.meetings import MeetingCancelJob, MeetingCreateJob, MeetingMoveJob
from bot.jobs.notices import CitizenNoticeJob
from bot.jobs.reminders import ReminderJob
from bot.jobs.retention import RetentionJob
from bot.jobs.runner import JobHandler
from bot.jobs.staff import CounselorPromptJob, NoShowCheckJob, StaffAlertJob
from bot.metrics import Metrics
from bot.proactive import TeamsNotifier
from bot.rate_limit import RateLimiter
from bot.services.audit import AuditTrail
from bot.services.booking import BookingService
from bot.services.consent import ConsentService
from bot.services.container import Services
from bot.services.emails import EmailChannel
from bot.services.meetings import MeetingService
from bot.services.outcomes import OutcomeService
from bot.services.people import PeopleService
from bot.services.ports import AppInstaller, AvailabilityProvider, Clock, Mailer, MeetingProvider, Notifier
from bot.services.ports import UnitOfWorkFactory as UnitOfWorkFactoryPort
from bot.services.privacy import PrivacyService
from bot.services.reminders import ReminderService
from bot.services.retention import RetentionService
from bot.services.staff import StaffService
from bot.services.web_identity import WebIdentityService
from bot.settings import Settings, SettingsError
from bot.teams_bot import TeamsBot
from dialogs.booking import build_booking_feature
from dialogs.consent import build_consent_feature
from dialogs.main_dialog import build_main_dialog
from dialogs.outcomes import build_outcomes_feature
from dialogs.press_answer import PressedCardAnswer
from dialogs.privacy import build_privacy_feature
from dialogs.staff import StaffRootDialog
from storage.bot_state import DatabaseConversationState, DatabaseStorage
from storage.db import create_engine, create_session_factory
from storage.unit_of_work import UnitOfWorkFactory


@dataclass(frozen=True)
class UseCases:
    """The use-case services, each built once (build_use_cases) and handed to the dialogs and job
    handlers that call it: nothing else constructs one."""

    booking: BookingService
    consent: ConsentService
    privacy: PrivacyService
    reminders: ReminderService
    staff: StaffService
    outcomes: OutcomeService
    meetings: MeetingService
    retention: RetentionService
    people: PeopleService
    web_identity: WebIdentityService


def build_use_cases(services: Services, *, link_secret: str | None = None) -> UseCases:
    """`link_secret` signs the manage links (GUICHET_MANAGE_LINK_SECRET); by default the e-mail channel's."""
    # What most services use: the agency, the unit of work, the clock and the audit trail.
    core = (services.agency, services.uow, services.clock, services.audit)
    staff = StaffService(*core, installer=services.installer)
    if link_secret is None:
        link_secret = services.email.link_secret if services.email is not None else ""
    return UseCases(
        booking=BookingService(
            *core, slots=services.slots, availability=services.availability, meetings=services.meetings,
            email=services.email,
        ),
        consent=ConsentService(*core),
        privacy=PrivacyService(*core),
        reminders=ReminderService(*core, email=services.email is not None), staff=staff,
        outcomes=OutcomeService(*core, staff, email=services.email is not None),
        meetings=MeetingService(*core),
        retention=RetentionService(*core),
        people=PeopleService(services.agency, services.uow, services.clock),
        web_identity=WebIdentityService(services, link_secret=link_secret),
    )


@dataclass
class Wiring:
    """What a process runs on; `close()` releases it (database connections, the connector's session)."""

    settings: Settings
    services: Services
    use_cases: UseCases
    engine: AsyncEngine
    # The concrete factory behind services.uow; Bot Framework state shares its sessions (storage.bot_state).
    uow: UnitOfWorkFactory
    # This process's metrics (its own registry: two wirings in one process never mix their figures).
    metrics: Metrics = field(default_factory=Metrics)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in self._closers:
            await close()
        await self.engine.dispose()


def build_services(
    settings: Settings,
    *,
    agency: Agency | None = None,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    meetings: MeetingProvider | None = None,
    installer: AppInstaller | None = None,
    graph_credential: AsyncTokenCredential | None = None,
    metrics: Metrics | None = None,
    mailer: Mailer | None = None,
) -> Wiring:
    """Everything the services need, built from the settings; the keyword arguments replace the defaults.

    With Microsoft Graph configured: Teams meetings, Outlook availability (when the agency asks for it)
    and installing the bot for counselors (with GUICHET_TEAMS_APP_ID) share one Graph client;
    `graph_credential` replaces the app registration's (tests sign in with a fixed token).
    """
    agency = agency or load_agency(settings.agency)
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    engine = create_engine(settings.database_url)
    uow = UnitOfWorkFactory(create_session_factory(engine))
    closers: list[Callable[[], Awaitable[None]]] = []
    if notifier is None:
        # Proactive messages decide their own retries (bot.proactive): no retry inside the HTTP pipeline.
        auth = ReusingAuthentication(bot_framework_authentication(settings), retry=RetryPolicy(attempts=1),
                                     observe=metrics.connector_observer("proactive"))
        closers.append(auth.connector_session.close)
        notifier = TeamsNotifier(auth, app_id=settings.app_id,
                                 limiter=RateLimiter(tenant_per_second=settings.tenant_messages_per_second))
    availability: AvailabilityProvider | None = None
    graph: GraphClient | None = None
    if meetings is None:
        provider = build_meeting_provider(settings, agency, credential=graph_credential, metrics=metrics)
        if provider is not None:
            closers.append(provider.close)
            meetings = provider
            graph = provider.graph
            if agency.outlook_availability:
                availability = GraphAvailability(provider.graph, clock=clock)
            if installer is None and settings.teams_app_id:
                installer = InstallerForApp(TeamsAppInstaller(provider.graph), settings.teams_app_id)
    email = email_channel(settings, agency, mailer, graph=graph)
    services = assemble_services(agency, uow, clock, notifier=notifier, meetings=meetings, installer=installer,
                                 availability=availability, email=email)
    use_cases = build_use_cases(services, link_secret=settings.manage_link_secret)
    return Wiring(settings=settings, services=services, use_cases=use_cases, engine=engine, uow=uow,
                  metrics=metrics, _closers=closers)


@dataclass(frozen=True)
class InstallerForApp:
    """The Graph installer bound to this bot's Teams app (bot.services.ports.AppInstaller)."""

    installer: TeamsAppInstaller
    teams_app_id: str

    async def install_for(self, user_id: str) -> bool:
        return await self.installer.install_for(user_id, self.teams_app_id)


def assemble_services(agency: Agency, uow: UnitOfWorkFactoryPort, clock: Clock, *, notifier: Notifier | None = None,
                      meetings: MeetingProvider | None = None, installer: AppInstaller | None = None,
                      availability: AvailabilityProvider | None = None, email: EmailChannel | None = None) -> Services:
    """The services over a given unit of work and clock (tests hand in their own)."""
    return Services(agency=agency, uow=uow, clock=clock, audit=AuditTrail(agency.id, clock), slots=SlotEngine(agency),
                    notifier=notifier, meetings=meetings, installer=installer, availability=availability, email=email)


def email_channel(settings: Settings, agency: Agency, mailer: Mailer | None, *,
                  graph: GraphClient | None) -> EmailChannel | None:
    """E-mail to citizens (GUICHET_MAIL): .eml files in a folder, or Graph sendMail from the agency's mailbox."""
    if settings.mail == "off" and mailer is None:
        return None
    if mailer is None and settings.mail == "folder":
        mailer = FolderMailer(settings.mail_folder)
    elif mailer is None:
        if graph is None or not agency.mailbox:
            raise SettingsError("invalid setting mail: graph needs Microsoft Graph and the agency file's mailbox")
        mailer = GraphMailer(graph, agency.mailbox)
    return EmailChannel(mailer, sender=agency.mailbox or f"no-reply@{agency.id}.invalid",
                        link_secret=settings.manage_link_secret, manage_page=settings.manage_link_url)


def job_handlers(services: Services, use_cases: UseCases | None = None) -> Mapping[str, JobHandler]:
    """The runner's handlers, one per job kind, over the given use cases (else built here: tests)."""
    cases = use_cases or build_use_cases(services)
    handlers: dict[str, JobHandler] = {str(JobKind.RETENTION): RetentionJob(services, cases.retention),
                                       str(JobKind.CLOSE_ENDED): CloseEndedJob(services, cases.outcomes)}
    notifier = services.notifier
    if notifier is not None:
        handlers.update({
            str(JobKind.REMINDER): ReminderJob(services, cases.reminders, notifier,
                                               meetings=services.meetings is not None),
            str(JobKind.COUNSELOR_PROMPT): CounselorPromptJob(services, cases.staff, notifier),
            str(JobKind.NO_SHOW_CHECK): NoShowCheckJob(services, cases.staff, notifier),
            str(JobKind.CITIZEN_NOTICE): CitizenNoticeJob(services, notifier, booking=cases.booking,
                                                          reminders=cases.reminders),
            str(JobKind.STAFF_ALERT): StaffAlertJob(services, cases.staff, notifier),
        })
    if services.meetings is not None:
        handlers.update({
            str(JobKind.MEETING_CREATE): MeetingCreateJob(cases.meetings, services.meetings),
            str(JobKind.MEETING_MOVE): MeetingMoveJob(cases.meetings, services.meetings),
            str(JobKind.MEETING_CANCEL): MeetingCancelJob(cases.meetings, services.meetings),
        })
    if services.email is not None:
        handlers[str(JobKind.EMAIL)] = EmailJob(services, services.email, cases.web_identity, cases.reminders)
    return handlers


@dataclass(frozen=True)
class BotParts:
    """What answers turns: the Bot Framework adapter, the bot's state storage and the turn handler."""

    adapter: CloudAdapter
    state: DatabaseStorage
    bot: TeamsBot


def build_bot(wiring: Wiring) -> BotParts:
    """The adapter, the bot state and the bot with its dialogs, over the wiring's use cases."""
    services, cases = wiring.services, wiring.use_cases
    agency = services.agency
    # The conversation map: each feature brings its dialogs, commands and menu buttons.
    features = [build_consent_feature(services, cases.consent), build_booking_feature(services, cases.booking),
                build_privacy_feature(services, cases.privacy),
                build_outcomes_feature(services, booking=cases.booking, outcomes=cases.outcomes, staff=cases.staff)]
    adapter = create_adapter(wiring.settings, default_language=agency.default_language, metrics=wiring.metrics)
    state = DatabaseStorage(wiring.uow.session_factory)
    bot = TeamsBot(
        agency=agency,
        conversation_state=DatabaseConversationState(state),
        dialog=build_main_dialog(agency, features,
                                 web_sign_in=wiring.settings.signin_public_key_path is not None),
        people=cases.people,
        staff=cases.staff,
        staff_dialog=StaffRootDialog(services, cases.staff, cases.outcomes),
        answer_press=PressedCardAnswer(services, cases.booking),
    )
    return BotParts(adapter=adapter, state=state, bot=bot)
