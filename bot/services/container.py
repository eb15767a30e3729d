"""The services a running bot shares, built once by bot.wiring and handed to every feature and job."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.agency import Agency
from bot.domain.slots import SlotEngine
from bot.services.audit import AuditTrail
from bot.services.emails import EmailChannel
from bot.services.ports import AppInstaller, AvailabilityProvider, Clock, MeetingProvider, Notifier, UnitOfWorkFactory


@dataclass(frozen=True)
class Services:
    agency: Agency
    uow: UnitOfWorkFactory
    clock: Clock
    audit: AuditTrail
    slots: SlotEngine
    # Writes to stored Teams conversations (reminders, counselor prompts); None where nothing is sent.
    notifier: Notifier | None = None
    # Creates the Teams meetings of video appointments; None in local mode (Microsoft Graph not configured).
    meetings: MeetingProvider | None = None
    # Installs the bot for a counselor it has no chat with yet; None when Graph is not configured for it.
    installer: AppInstaller | None = None
    # Counselors' Outlook busy times, when the agency asks for them (agency.outlook_availability).
    availability: AvailabilityProvider | None = None
    # E-mails to citizens the chat may not reach (bot.jobs.email); None when GUICHET_MAIL is off.
    email: EmailChannel | None = None
