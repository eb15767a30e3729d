"""Slot search benchmark: 200 video counselors, 8 weeks of appointments filling half their slots.

Times `SlotEngine.times_for_day` (a day's free times; target: under 50 ms), `slots_at` (a chosen time
re-checked, counselors ordered) and `days_with_slots`, with the busy appointments indexed once per
request as the booking service does, plus the cost of that index.
Run: `python -m bench.slot_search`.
"""

from __future__ import annotations

import random
import statistics
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.domain.agency import Agency
from bot.domain.slots import Busy, BusyIndex, SlotEngine

COUNSELORS = 200
WEEKS = 8
SUBJECT_MINUTES = 30
TARGET_MS = 50.0
NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday; the 8 weeks include a DST change and Easter
WINDOWS = [(time(8, 30), time(12, 0)), (time(13, 0), time(16, 30))]
RUNS = {"times_for_day": 300, "times_for_day_cold": 30, "slots_at": 300, "days_with_slots": 100, "index_build": 10}


def build_agency(counselors: int = COUNSELORS) -> Agency:
    """A Belgian video-only agency; its documents are never read by the engine."""
    text = {"fr": "x"}
    return Agency.model_validate({
        "id": "bench",
        "name": text,
        "country": "BE",
        "timezone": "Europe/Brussels",
        "languages": ["fr"],
        "interview_language_rule": "agency_language",
        "recording": "forbidden",
        "modes": ["video"],
        "contact": {"phone": "+3220000000", "email": "a@example.org", "website": "https://example.org",
                    "postal_address": "Rue 1, 1000 Bruxelles"},
        "dpo_contact": "dpo@example.org",
        "supervisory_authority": text,
        "offices": [],
        "opening_hours": [
            {"mode": "video", "days": ["mon", "tue", "wed", "thu", "fri"], "start": start.isoformat(),
             "end": end.isoformat()}
            for start, end in WINDOWS
        ],
        "subjects": [{"id": "claim", "name": text, "duration_minutes": SUBJECT_MINUTES, "modes": ["video"]}],
        "counselors": [
            {"id": f"counselor-{i:03d}", "display_name": f"C{i}", "languages": ["fr"], "offices": [],
             "modes": ["video"]}
            for i in range(counselors)
        ],
        "booking": {"min_lead_minutes": 120, "max_horizon_days": WEEKS * 7, "slot_step_minutes": 15},
        "personal_data_fields": ["first_name"],
        "documents": [
            {"kind": "terms", "version": "1", "published": "2026-01-01", "files": {"fr": "terms.md"}},
            {"kind": "privacy", "version": "1", "published": "2026-01-01", "files": {"fr": "privacy.md"}},
        ],
    })


def open_days(engine: SlotEngine, agency: Agency) -> list[date]:
    today = NOW.astimezone(agency.zone).date()
    days = (today + timedelta(days=n) for n in range(WEEKS * 7 + 1))
    return [day for day in days if day.weekday() < 5 and not engine.is_closed(day)]


def build_busy(agency: Agency, days: list[date], rng: random.Random) -> list[Busy]:
    """Half of each counselor's half-hour blocks booked, at random, on every open day."""
    zone = agency.zone
    busy: list[Busy] = []
    for counselor in agency.counselors:
        for day in days:
            blocks: list[datetime] = []
            for start, end in WINDOWS:
                wall = datetime.combine(day, start, tzinfo=zone)
                while wall + timedelta(minutes=SUBJECT_MINUTES) <= datetime.combine(day, end, tzinfo=zone):
                    blocks.append(wall)
                    wall += timedelta(minutes=SUBJECT_MINUTES)
            for start in rng.sample(blocks, len(blocks) // 2):
                begin = start.astimezone(UTC)
                busy.append(Busy(counselor.id, begin, begin + timedelta(minutes=SUBJECT_MINUTES)))
    return busy


def _measure(runs: int, call: Callable[[int], Any]) -> tuple[list[float], Any]:
    timings: list[float] = []
    result: Any = None
    for i in range(runs):
        started = clock.perf_counter()
        result = call(i)
        timings.append((clock.perf_counter() - started) * 1000)
    return timings, result


def _summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"runs": len(ordered), "median_ms": statistics.median(ordered), "p95_ms": p95,
            "max_ms": ordered[-1]}


def run() -> dict[str, Any]:
    rng = random.Random(20260302)
    agency = build_agency()
    engine = SlotEngine(agency)
    days = open_days(engine, agency)
    busy = build_busy(agency, days, rng)
    index = BusyIndex.from_busy(busy)
    picks = [rng.choice(days[1:]) for _ in range(max(RUNS.values()))]

    results: dict[str, Any] = {"counselors": COUNSELORS, "weeks": WEEKS, "open_days": len(days),
                               "busy_appointments": len(busy)}
    timings, _ = _measure(RUNS["index_build"], lambda i: BusyIndex.from_busy(busy))
    results["index_build"] = _summary(timings)

    timings, _ = _measure(RUNS["times_for_day_cold"], lambda i: SlotEngine(agency).times_for_day(
        mode="video", subject_id="claim", day=picks[i], now=NOW, busy=index))
    results["times_for_day_cold"] = _summary(timings)

    day_times: list[list[tuple[datetime, datetime, str | None]]] = []

    def search(i: int) -> None:
        day_times.append(engine.times_for_day(mode="video", subject_id="claim", day=picks[i], now=NOW, busy=index))

    timings, _ = _measure(RUNS["times_for_day"], search)
    results["times_for_day"] = _summary(timings)
    results["slots_per_day"] = statistics.median(len(times) for times in day_times)
    # The confirmation's re-check of one chosen time, counselors ordered by their load.
    chosen = [times[len(times) // 2][0] for times in day_times if times]
    timings, _ = _measure(RUNS["slots_at"], lambda i: engine.slots_at(
        mode="video", subject_id="claim", start=chosen[i % len(chosen)], now=NOW, busy=index))
    results["slots_at"] = _summary(timings)

    timings, found = _measure(RUNS["days_with_slots"], lambda i: engine.days_with_slots(
        mode="video", subject_id="claim", now=NOW + timedelta(hours=picks[i].toordinal() % 24), busy=index,
        limit=10))
    results["days_with_slots"] = _summary(timings)
    results["days_found"] = len(found)
    results["target_met"] = results["times_for_day"]["p95_ms"] < TARGET_MS
    return results


def _print(results: dict[str, Any]) -> None:
    print(f"{results['counselors']} counselors, {results['weeks']} weeks ({results['open_days']} open days), "
          f"{results['busy_appointments']} busy appointments, median {results['slots_per_day']} slots/day")
    print(f"{'operation':<38}{'runs':>6}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    labels = {
        "times_for_day": "times_for_day (indexed busy)",
        "times_for_day_cold": "times_for_day (fresh engine)",
        "slots_at": "slots_at (one time, counselors ordered)",
        "days_with_slots": f"days_with_slots (limit 10, {results['days_found']} found)",
        "index_build": "BusyIndex.from_busy (once per request)",
    }
    for key, label in labels.items():
        row = results[key]
        print(f"{label:<38}{row['runs']:>6}{row['median_ms']:>12.2f}{row['p95_ms']:>10.2f}{row['max_ms']:>10.2f}")
    verdict = "met" if results["target_met"] else "MISSED"
    print(f"target: times_for_day p95 < {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    _print(run())
