"""Retention periods as instants: "N months before now", the cut-offs a retention run applies."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from bot.domain.agency import Retention


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment `months` calendar months earlier (31 March − 1 month = 28/29 February)."""
    if months < 0:
        raise ValueError("months must not be negative")
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Cutoffs:
    """Anything older than these instants is past its retention period."""

    appointments: datetime
    citizens: datetime
    consents: datetime
    audit: datetime


def cutoffs(retention: Retention, now: datetime) -> Cutoffs:
    return Cutoffs(
        appointments=months_before(now, retention.appointments_months),
        citizens=months_before(now, retention.citizen_inactive_months),
        consents=months_before(now, retention.consent_proof_months),
        audit=months_before(now, retention.audit_months),
    )
