"""E-mails to citizens as jobs: planned in the transaction of the change they tell about, sent by the runner
(bot.jobs.email) with the same retries as every job, once per key.

The confirmation is planned with the booking (the job decides whether this citizen gets e-mail). Everything
else the chat would carry (a reminder, the join link, a notice after an outcome) is handed over by the chat's
own job, which has decided the citizen is reached by e-mail (bot.domain.web_identity.reached_by_email): a
citizen of the agency's website, or one whose Teams refused the message for good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.jobs import EmailKind, JobKind
from bot.services.ports import Mailer, UnitOfWork


@dataclass(frozen=True)
class EmailChannel:
    """How this installation e-mails citizens: the mailer, the agency's mailbox, the manage links."""

    mailer: Mailer
    sender: str
    # Signs the manage links (bot.domain.web_identity); without it or without the page, no link is sent.
    link_secret: str = ""
    # The agency's Web Chat page; a manage link is this address with #manage=<token>.
    manage_page: str = ""


def confirmation_key(appointment_id: str, starts_at: datetime) -> str:
    """One confirmation per appointment and start time: a retried booking never sends a second one."""
    return f"{JobKind.EMAIL}:{EmailKind.CONFIRMATION}:{appointment_id}:{starts_at.isoformat()}"


def reminder_key(appointment_id: str, starts_at: datetime, offset_minutes: int | None) -> str:
    """One e-mail per reminder: appointment, start time (a moved appointment is reminded again), offset."""
    return f"{JobKind.EMAIL}:{EmailKind.REMINDER}:{appointment_id}:{starts_at.isoformat()}:{offset_minutes}m"


def notice_key(what: EmailKind, appointment_id: str, join_url: str | None = None) -> str:
    """One e-mail per notice and appointment; a link per link (a changed link is sent again). The key holds a
    digest of the link, not the link itself."""
    key = f"{JobKind.EMAIL}:{what}:{appointment_id}"
    if what in (EmailKind.LINK, EmailKind.LINK_CHANGED) and join_url:
        key += ":" + hashlib.sha256(join_url.encode("utf-8")).hexdigest()[:16]
    return key


async def plan_confirmation_email(uow: UnitOfWork, appointment_id: str, starts_at: datetime, now: datetime) -> None:
    """The booking's confirmation e-mail, due now (the job decides whether this citizen gets e-mail)."""
    await uow.jobs.schedule(str(JobKind.EMAIL), now, {"appointment_id": appointment_id,
                                                      "what": str(EmailKind.CONFIRMATION)},
                            confirmation_key(appointment_id, starts_at), appointment_id=appointment_id, now=now)


async def plan_reminder_email(uow: UnitOfWork, appointment_id: str, starts_at: datetime,
                              offset_minutes: int | None, now: datetime) -> None:
    """A reminder the chat does not carry, due now; withdrawn with the appointment's other jobs."""
    payload: dict[str, Any] = {"appointment_id": appointment_id, "what": str(EmailKind.REMINDER),
                               "offset_minutes": offset_minutes}
    await uow.jobs.schedule(str(JobKind.EMAIL), now, payload, reminder_key(appointment_id, starts_at, offset_minutes),
                            appointment_id=appointment_id, now=now)


async def plan_notice_email(uow: UnitOfWork, what: EmailKind, appointment_id: str, now: datetime, *,
                            join_url: str | None = None, reason: str | None = None) -> None:
    """A notice the chat does not carry (the join link, or what the agency reported), due now.

    Not tied to the appointment's job list: a notice after an outcome follows the cancellation of its jobs."""
    payload: dict[str, Any] = {"appointment_id": appointment_id, "what": str(what)}
    if reason is not None:
        payload["reason"] = reason
    linked = what in (EmailKind.LINK, EmailKind.LINK_CHANGED)
    await uow.jobs.schedule(str(JobKind.EMAIL), now, payload, notice_key(what, appointment_id, join_url),
                            appointment_id=appointment_id if linked else None, now=now)
