"""Jobs that create, move and cancel the Teams meeting of a video appointment (bot.services.meetings).

Graph asking to wait (429, 503, 504, a timeout) is retried, after its Retry-After when it gives one;
after MAX_TRIES the meeting is marked failed and the counselor and the agency's channel are alerted; a move
or a cancellation given up alerts the counselor, to make it by hand. A refusal (a missing permission or
Teams policy) is not retried: the provider has logged what to fix, and an event it left without the
agency's meeting policy is cancelled.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from bot.domain.jobs import Job, JobResult
from bot.jobs.runner import Failed, Finished, Record, Result, RetryLater
from bot.services.meetings import MeetingService
from bot.services.ports import MeetingProvider, MeetingRefused, MeetingUnavailable

# Tries before a meeting counts as failed (with the runner's backoff: about an hour in all).
MAX_TRIES = 6


def _gave_up(job: Job, error: MeetingUnavailable | MeetingRefused,
             record: Record | None = None) -> Result:
    """What a Graph failure means for the job: wait and retry, or give up (recording the failure when asked)."""
    if isinstance(error, MeetingUnavailable) and job.attempts < MAX_TRIES:
        return RetryLater("MeetingUnavailable", timedelta(seconds=error.retry_after) if error.retry_after else None)
    return Failed(type(error).__name__, record=record)


class _MeetingJob:
    def __init__(self, meetings: MeetingService, provider: MeetingProvider) -> None:
        self._meetings = meetings
        self._provider = provider


class MeetingCreateJob(_MeetingJob):
    async def __call__(self, job: Job) -> Result:
        appointment_id = str(job.payload.get("appointment_id"))
        wanted = await self._meetings.to_make(appointment_id)
        if wanted is None:
            return Finished(JobResult.SKIPPED_INACTIVE)
        if wanted.appointment.meeting_id is not None:
            return Finished(JobResult.MEETING_EXISTS)
        try:
            meeting = await self._provider.create(wanted.request)
        except (MeetingUnavailable, MeetingRefused) as error:
            # A meeting that will not come is marked failed, so the counselor and the agency are alerted; an
            # event made without the agency's policy is cancelled, never sent.
            left_event = error.event_id if isinstance(error, MeetingRefused) else None
            return _gave_up(job, error, partial(self._meetings.record_failed, appointment_id=appointment_id,
                                                left_event=left_event))
        return Finished(JobResult.MEETING_CREATED, record=partial(
            self._meetings.record_made, appointment_id=appointment_id, meeting=meeting, moved=False))


class MeetingMoveJob(_MeetingJob):
    async def __call__(self, job: Job) -> Result:
        appointment_id = str(job.payload.get("appointment_id"))
        wanted = await self._meetings.to_make(appointment_id)
        if wanted is None:
            return Finished(JobResult.SKIPPED_INACTIVE)
        appointment = wanted.appointment
        if appointment.meeting_id is None:
            return Finished(JobResult.NO_MEETING)
        try:
            meeting = await self._provider.move(appointment.counselor_id, appointment.meeting_id,
                                                appointment.starts_at, appointment.ends_at)
        except (MeetingUnavailable, MeetingRefused) as error:
            # Given up, the counselor moves it by hand; the citizen's link still works.
            return _gave_up(job, error, partial(self._meetings.record_change_failed, appointment_id=appointment_id,
                                                alert="meeting_move_failed", event_id=appointment.meeting_id))
        return Finished(JobResult.MEETING_MOVED, record=partial(
            self._meetings.record_made, appointment_id=appointment_id, meeting=meeting, moved=True))


class MeetingCancelJob(_MeetingJob):
    async def __call__(self, job: Job) -> Result:
        payload = job.payload
        language = payload.get("language")
        event_id = str(payload.get("event_id"))
        try:
            await self._provider.cancel(str(payload.get("organizer_id")), event_id,
                                        self._meetings.cancel_comment(language if isinstance(language, str) else ""))
        except (MeetingUnavailable, MeetingRefused) as error:
            # Given up, the counselor deletes the event by hand (an erased appointment leaves no one to name).
            return _gave_up(job, error, partial(self._meetings.record_change_failed,
                                                appointment_id=str(payload.get("appointment_id")),
                                                alert="meeting_cancel_failed", event_id=event_id))
        return Finished(JobResult.MEETING_CANCELLED)
