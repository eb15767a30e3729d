"""Reminders through the job runner, on SQLite and PostgreSQL, with the injectable clock: the right moment
in the right language, moved with the appointment, gone with it, dropped when late, stopped when the
citizen opts out or blocks the bot; retried, then failed for an operator to see."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.agency import Agency, Mode
from bot.domain.audit import EventType
from bot.domain.clock import FixedClock
from bot.domain.jobs import JobKind
from bot.i18n import t
from bot.jobs.runner import JobRunner, RunnerSettings
from bot.jobs.worker import job_handlers
from bot.services.booking import Booked
from bot.services.container import Services
from bot.services.ports import OutgoingMessage, RecipientUnreachable, SendFailed
from bot.services.privacy import PrivacyService
from bot.wiring import assemble_services
from storage.unit_of_work import UnitOfWorkFactory
from tests.booking_support import booking_over, personal_data
from tests.harness import card_text

BRUSSELS = ZoneInfo("Europe/Brussels")
VIDEO_SUBJECT = "temporary-unemployment"
REFERENCE = {"serviceUrl": "http://127.0.0.1:1/", "channelId": "msteams",
             "conversation": {"id": "a:reminded", "tenantId": "tenant-1"}, "user": {"id": "29:citizen"},
             "bot": {"id": "28:bot"}}


class FakeNotifier:
    """Records what would reach Teams; `failures` are raised first, one per send."""

    def __init__(self) -> None:
        self.sent: list[tuple[Mapping[str, Any], OutgoingMessage]] = []
        self.failures: list[Exception] = []

    async def send(self, reference: Mapping[str, Any], message: OutgoingMessage) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((reference, message))
        return f"activity-{len(self.sent)}"

    def texts(self) -> list[str]:
        return [card_text(message.card) for _, message in self.sent if message.card is not None]


class World:
    def __init__(self, agency: Agency, uow: UnitOfWorkFactory, now: datetime) -> None:
        self.clock = FixedClock(now)
        self.notifier = FakeNotifier()
        self.uow = uow
        self.services: Services = assemble_services(agency, uow, self.clock, notifier=self.notifier)
        self.booking = booking_over(self.services)
        self.runner = JobRunner(uow, job_handlers(self.services), self.clock)

    async def citizen(self, locale: str = "nl-BE") -> str:
        async with self.uow() as uow:
            citizen = await uow.citizens.upsert_identity(
                agency_id=self.services.agency.id, tenant_id="tenant-1", aad_object_id=f"object-{locale}",
                teams_user_id="29:citizen", conversation_reference=REFERENCE, locale=locale, now=self.clock.now())
            await uow.commit()
        return citizen.id

    async def book(self, citizen_id: str, start: datetime) -> Booked:
        outcome = await self.booking.book(citizen_id=citizen_id, mode=Mode.VIDEO, subject_id=VIDEO_SUBJECT,
                                          office_id=None, start=start, personal_data=personal_data("1000"),
                                          interview_language="fr")
        assert isinstance(outcome, Booked), outcome
        return outcome

    async def at(self, moment: datetime) -> int:
        """Move the clock to `moment` and run whatever is due."""
        self.clock.set(moment)
        return await self.runner.drain()

    async def jobs(self, kind: str = JobKind.REMINDER) -> list[Any]:
        async with self.uow() as uow:
            return await uow.jobs.listing(kind=kind, limit=1000)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BRUSSELS)


@pytest.fixture
def world(agency: Agency, uow_factory: UnitOfWorkFactory) -> World:
    return World(agency, uow_factory, local(date(2026, 11, 23), 10))  # a Monday


async def test_each_reminder_arrives_at_its_moment_in_the_citizens_language(world: World) -> None:
    citizen = await world.citizen("nl-BE")
    booked = await world.book(citizen, local(date(2026, 11, 25), 10))  # Wednesday 10:00
    assert booked.reminders == (local(date(2026, 11, 24), 10).astimezone(UTC),
                                local(date(2026, 11, 25), 9).astimezone(UTC))

    assert await world.at(local(date(2026, 11, 24), 9, 59)) == 0
    assert world.notifier.sent == []
    await world.at(local(date(2026, 11, 24), 10))
    assert len(world.notifier.sent) == 1
    reference, message = world.notifier.sent[0]
    assert reference == REFERENCE
    text = card_text(message.card or {})
    assert t("nl", "reminders.title_day") in text
    assert "woensdag 25 november 2026" in text and "10:00" in text
    assert t("nl", "booking.confirmation.link_local_mode") in text  # no meeting provider here: said plainly
    assert t("nl", "booking.confirmation.access_mobile") not in text  # no link to open
    assert t("nl", "booking.confirmation.access_local_mode", phone=world.services.agency.contact.phone) in text
    assert t("nl", "booking.confirmation.camera_rule") in text
    assert t("nl", "reminders.technical_problem") in text
    assert t("nl", "booking.list.reschedule") in text  # a day ahead, still changeable in the chat

    await world.at(local(date(2026, 11, 25), 9))
    assert len(world.notifier.sent) == 2
    soon = world.notifier.texts()[1]
    assert t("nl", "reminders.title_soon", duration="1 uur") in soon
    # An hour before, the cut-off (two hours) has passed: the chat sends to the phone instead.
    assert t("nl", "booking.list.reschedule") not in soon
    assert t("nl", "reminders.too_late_to_change", phone=world.services.agency.contact.phone) in soon

    jobs = await world.jobs()
    assert sorted((job.status, job.outcome) for job in jobs) == [("done", "sent"), ("done", "sent")]
    async with world.uow() as uow:
        events = [event async for event in uow.audit.iterate(world.services.agency.id)]
    sent = [event for event in events if event.event_type == EventType.REMINDER_SENT]
    assert [event.payload for event in sent] == [{"offset_minutes": 1440}, {"offset_minutes": 60}]
    assert all(event.appointment_id == booked.appointment.id for event in sent)


async def test_reminders_keep_local_wall_clock_times_across_the_autumn_clock_change(
    world: World,
) -> None:
    world.clock.set(local(date(2026, 10, 19), 10))
    citizen = await world.citizen("fr-BE")
    # Monday 26 October 09:00, the day after summer time ends (25 October 03:00 → 02:00).
    booked = await world.book(citizen, local(date(2026, 10, 26), 9))
    day_before = booked.reminders[0]
    # A day before in real time, 24 hours: Sunday 25 October 09:00 local, 08:00 UTC (winter time).
    assert day_before == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    await world.at(datetime(2026, 10, 25, 7, 59, tzinfo=UTC))
    assert world.notifier.sent == []
    await world.at(day_before)
    text = world.notifier.texts()[0]
    assert "lundi 26 octobre 2026" in text and "09:00" in text and "08:00" not in text


async def test_rescheduling_moves_the_reminders_and_cancelling_removes_them(world: World) -> None:
    citizen = await world.citizen("fr-BE")
    booked = await world.book(citizen, local(date(2026, 11, 25), 10))
    moved = await world.booking.reschedule(citizen_id=citizen, appointment_id=booked.appointment.id,
                                           start=local(date(2026, 11, 27), 14))
    assert isinstance(moved, Booked)
    assert moved.reminders == (local(date(2026, 11, 26), 14).astimezone(UTC),
                               local(date(2026, 11, 27), 13).astimezone(UTC))
    await world.at(local(date(2026, 11, 25), 10))  # the old times pass: nothing
    assert world.notifier.sent == []
    await world.at(local(date(2026, 11, 26), 14))
    assert len(world.notifier.sent) == 1 and "vendredi 27 novembre 2026" in world.notifier.texts()[0]

    cancelled = await world.booking.cancel(citizen_id=citizen, appointment_id=booked.appointment.id)
    assert not isinstance(cancelled, Booked)
    await world.at(local(date(2026, 11, 27), 13))
    assert len(world.notifier.sent) == 1
    assert {job.status for job in await world.jobs()} == {"done", "cancelled"}


async def test_a_late_reminder_is_dropped_not_sent_and_counted(world: World) -> None:
    citizen = await world.citizen("fr-BE")
    await world.book(citizen, local(date(2026, 11, 25), 10))
    # The runner was down: it comes back three hours after the first reminder was due.
    await world.at(local(date(2026, 11, 24), 13))
    assert world.notifier.sent == []
    jobs = await world.jobs()
    assert [(job.status, job.outcome) for job in jobs if job.outcome] == [("done", "dropped_late")]
    # Within the tolerance (30 minutes) it still goes.
    await world.at(local(date(2026, 11, 25), 9, 20))
    assert len(world.notifier.sent) == 1
    async with world.uow() as uow:
        counts = await uow.jobs.outcome_counts(kind=JobKind.REMINDER)
    assert counts == {("done", "dropped_late"): 1, ("done", "sent"): 1}


async def test_turning_reminders_off_or_erasing_stops_them(world: World) -> None:
    first = await world.citizen("fr-BE")
    await world.book(first, local(date(2026, 11, 25), 10))
    privacy = PrivacyService(world.services.agency, world.services.uow, world.services.clock, world.services.audit)
    assert await privacy.set_reminders(first, False)
    await world.at(local(date(2026, 11, 24), 10))
    assert world.notifier.sent == []

    assert await privacy.set_reminders(first, True)
    await world.at(local(date(2026, 11, 25), 9))
    assert len(world.notifier.sent) == 1  # turned back on: the next one comes

    world.clock.set(local(date(2026, 11, 25), 12))
    await world.book(first, local(date(2026, 11, 27), 10))
    await privacy.erase(first, language="fr")
    await world.at(local(date(2026, 11, 27), 9))
    assert len(world.notifier.sent) == 1


async def test_a_citizen_who_blocked_the_bot_is_marked_unreachable_until_they_write_again(world: World) -> None:
    citizen = await world.citizen("fr-BE")
    await world.book(citizen, local(date(2026, 11, 25), 10))
    world.notifier.failures.append(RecipientUnreachable("MessageWritesBlocked"))
    await world.at(local(date(2026, 11, 24), 10))
    jobs = await world.jobs()
    failed = [job for job in jobs if job.status == "failed"]
    assert len(failed) == 1 and failed[0].last_error == "RecipientUnreachable: MessageWritesBlocked"
    assert failed[0].attempts == 1  # not retried
    async with world.uow() as uow:
        stored = await uow.citizens.get(citizen)
        listed = await uow.jobs.listing(status="failed")
    assert stored is not None and stored.unreachable_since == local(date(2026, 11, 24), 10).astimezone(UTC)
    assert [job.id for job in listed] == [failed[0].id]

    await world.at(local(date(2026, 11, 25), 9))
    assert world.notifier.sent == []  # the second reminder is not even tried
    assert {job.outcome for job in await world.jobs()} == {"failed", "skipped_unreachable"}

    await world.citizen("fr-BE")  # they write to the bot again
    async with world.uow() as uow:
        stored = await uow.citizens.get(citizen)
    assert stored is not None and stored.unreachable_since is None


async def test_a_throttled_send_waits_for_retry_after_then_fails_for_good_and_an_operator_can_retry_it(
    world: World,
) -> None:
    citizen = await world.citizen("fr-BE")
    await world.book(citizen, local(date(2026, 11, 25), 10))
    due = local(date(2026, 11, 24), 10)
    world.notifier.failures.append(SendFailed("throttled (429)", retry_after=20))
    await world.at(due)
    [job] = [job for job in await world.jobs() if job.run_at <= due.astimezone(UTC) + timedelta(seconds=20)]
    assert (job.status, job.attempts, job.last_error) == ("pending", 1, "SendFailed")
    assert job.run_at == due.astimezone(UTC) + timedelta(seconds=20)
    await world.at(due + timedelta(seconds=20))
    assert len(world.notifier.sent) == 1

    # The connector stays down: backoff with jitter between attempts, then failed for good.
    world.runner.settings = RunnerSettings(max_attempts=5)
    world.clock.set(local(date(2026, 11, 25), 9))
    world.notifier.failures.extend(SendFailed("connector answered 503") for _ in range(20))
    waits: list[float] = []
    for _ in range(world.runner.settings.max_attempts + 2):
        await world.runner.drain()
        pending = [job for job in await world.jobs() if job.status in ("pending", "failed") and job.outcome != "sent"
                   and job.run_at > local(date(2026, 11, 25), 8).astimezone(UTC)]
        if not pending or pending[0].status == "failed":
            break
        waits.append((pending[0].run_at - world.clock.now()).total_seconds())
        world.clock.set(pending[0].run_at)
    final = [job for job in await world.jobs() if job.status == "failed"]
    assert len(final) == 1 and final[0].attempts == world.runner.settings.max_attempts
    assert all(later >= earlier for earlier, later in zip(waits, waits[1:], strict=False))  # exponential
    assert 15 <= waits[0] <= 30  # the first retry after about half a minute
    assert len(waits) == 4

    async with world.uow() as uow:
        assert await uow.jobs.retry(final[0].id, world.clock.now())
        await uow.commit()
    world.notifier.failures.clear()
    await world.runner.drain()
    assert len(world.notifier.sent) == 2


async def test_a_reminder_retried_past_its_tolerance_is_dropped_rather_than_sent_late(world: World) -> None:
    citizen = await world.citizen("fr-BE")
    await world.book(citizen, local(date(2026, 11, 25), 10))
    due = local(date(2026, 11, 24), 10)
    world.notifier.failures.append(SendFailed("throttled (429)", retry_after=45 * 60))
    await world.at(due)
    await world.at(due + timedelta(minutes=45))
    assert world.notifier.sent == []
    assert [job.outcome for job in await world.jobs() if job.outcome] == ["dropped_late"]
