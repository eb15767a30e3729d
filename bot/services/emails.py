"""E-mails to citizens as jobs: planned in the transaction of the change they tell about, sent by the runner
(bot.jobs.email) with the same retries as every job, once per key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.jobs import JobKind
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
    return f"{JobKind.EMAIL}:confirmation:{appointment_id}:{starts_at.isoformat()}"


async def plan_confirmation_email(uow: UnitOfWork, appointment_id: str, starts_at: datetime, now: datetime) -> None:
    """The booking's confirmation e-mail, due now (the job decides whether this citizen gets e-mail)."""
    await uow.jobs.schedule(str(JobKind.EMAIL), now, {"appointment_id": appointment_id, "what": "confirmation"},
                            confirmation_key(appointment_id, starts_at), appointment_id=appointment_id, now=now)
