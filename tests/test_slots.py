"""Slot engine: opening hours, closures, lead time, horizon, busy counselors, filters, DST, fairness."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.agency import Agency, Mode
from bot.domain.slots import (
    CLAIM_STEP_MINUTES,
    Busy,
    BusyIndex,
    SlotEngine,
    claim_grid_problems,
    claim_steps,
    epoch_us,
    order_by_load,
)
from tests.oracles import slots_for_day

BRUSSELS = ZoneInfo("Europe/Brussels")
BE_HOLIDAYS = holidays.country_holidays("BE", years=range(2026, 2029))
CLOSURE_DAY = date(2026, 6, 12)  # a Friday
DST_DAYS = [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
ALL_DAYS = [*WEEKDAYS, "sat", "sun"]

# Hours of the test agency, also the reference the property tests check results against.
VIDEO_GENERAL = [(WEEKDAYS, time(8, 30), time(12, 0)), (WEEKDAYS, time(13, 0), time(16, 0))]
VIDEO_LGE = [(["mon", "tue", "wed", "thu"], time(9, 0), time(12, 0))]
OFFICE_GENERAL = [(["mon", "wed"], time(9, 0), time(12, 0))]
OFFICE_LGE = [(["tue"], time(13, 0), time(15, 0))]
# (mode, office) -> spans; the same windows open seven days a week put DST Sundays to work.
WORK_WEEK = {("video", None): VIDEO_GENERAL, ("video", "lge"): VIDEO_LGE,
             ("office", None): OFFICE_GENERAL, ("office", "lge"): OFFICE_LGE}
EVERY_DAY = {key: [(ALL_DAYS, start, end) for _, start, end in spans] for key, spans in WORK_WEEK.items()}

COUNSELORS = [
    {"id": "c-anna", "display_name": "Anna", "languages": ["fr", "nl"], "offices": ["bxl"],
     "modes": ["video", "office"]},
    {"id": "c-bert", "display_name": "Bert", "languages": ["nl"], "offices": ["bxl"], "modes": ["video"]},
    {"id": "c-chloe", "display_name": "Chloé", "languages": ["fr"], "offices": ["lge"],
     "modes": ["video", "office"]},
    {"id": "c-dirk", "display_name": "Dirk", "languages": ["de", "fr"], "offices": [], "modes": ["video"]},
]


def _hours(mode: str, spans: list[tuple[list[str], time, time]], office: str | None = None) -> list[dict]:
    return [{"mode": mode, "days": days, "start": start.isoformat(), "end": end.isoformat(), "office": office}
            for days, start, end in spans]


def opening_hours(table: dict[tuple[str, str | None], list]) -> list[dict]:
    return [hours for (mode, office), spans in table.items() for hours in _hours(mode, spans, office)]


def make_agency(base_dir: Path, **overrides: Any) -> Agency:
    for name in ("terms.md", "privacy.md"):
        (base_dir / name).write_text(f"# {name}\n", encoding="utf-8")
    languages = ["fr", "nl"]
    both = {"fr": "x", "nl": "x"}
    raw: dict[str, Any] = {
        "id": "test-be",
        "name": both,
        "country": "BE",
        "timezone": "Europe/Brussels",
        "languages": languages,
        "interview_language_rule": "belgian_residence",
        "recording": "forbidden",
        "modes": ["video", "office"],
        "contact": {"phone": "+3220000000", "email": "a@example.org", "website": "https://example.org",
                    "postal_address": "Rue 1, 1000 Bruxelles"},
        "dpo_contact": "dpo@example.org",
        "supervisory_authority": both,
        "offices": [
            {"id": "bxl", "name": both, "street": "Rue 1", "postal_code": "1000", "city": "Bruxelles"},
            {"id": "lge", "name": both, "street": "Rue 2", "postal_code": "4000", "city": "Liège"},
        ],
        "opening_hours": opening_hours(WORK_WEEK),
        "closure_days": [CLOSURE_DAY.isoformat()],
        "subjects": [
            {"id": "claim", "name": both, "duration_minutes": 30, "modes": ["video", "office"]},
            {"id": "long", "name": both, "duration_minutes": 90, "modes": ["video"]},
        ],
        "counselors": COUNSELORS,
        "booking": {"min_lead_minutes": 120, "max_horizon_days": 56, "slot_step_minutes": 15},
        "personal_data_fields": ["first_name", "last_name"],
        "documents": [
            {"kind": "terms", "version": "1", "published": "2026-01-01",
             "files": {lang: "terms.md" for lang in languages}},
            {"kind": "privacy", "version": "1", "published": "2026-01-01",
             "files": {lang: "privacy.md" for lang in languages}},
        ],
        "base_dir": base_dir,
    }
    raw.update(overrides)
    return Agency.model_validate(raw)


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Agency:
    return make_agency(tmp_path_factory.mktemp("agency"))


@pytest.fixture(scope="module")
def engine(agency: Agency) -> SlotEngine:
    return SlotEngine(agency)


@pytest.fixture(scope="module")
def engines(engine: SlotEngine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SlotEngine]:
    every_day = make_agency(tmp_path_factory.mktemp("every-day"), opening_hours=opening_hours(EVERY_DAY))
    return {"work_week": engine, "every_day": SlotEngine(every_day)}


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BRUSSELS)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_times(slots) -> list[time]:
    return [slot.start.astimezone(BRUSSELS).time() for slot in slots]


def grid(start: time, end: time, step: int, duration: int) -> list[time]:
    """Local start times of a window on its grid that end by the window's end."""
    out, minute = [], start.hour * 60 + start.minute
    while minute + duration <= end.hour * 60 + end.minute:
        out.append(time(minute // 60, minute % 60))
        minute += step
    return out


MONDAY_1_JUNE = utc(2026, 6, 1, 6, 0)  # 08:00 in Brussels
TUESDAY = date(2026, 6, 9)


def test_video_slots_follow_opening_hours_and_duration(engine: SlotEngine) -> None:
    slots = slots_for_day(engine, mode=Mode.VIDEO, subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=[])

    expected = grid(time(8, 30), time(12, 0), 15, 30) + grid(time(13, 0), time(16, 0), 15, 30)
    assert local_times(slots) == expected
    assert slots[0].start == utc(2026, 6, 9, 6, 30)
    assert all(slot.end - slot.start == timedelta(minutes=30) for slot in slots)
    assert all(slot.start.tzinfo is UTC and slot.office_id is None for slot in slots)
    # Liège's own video hours (09:00-12:00) apply to its counselor, not the general ones.
    with_chloe = [slot.start.astimezone(BRUSSELS).time() for slot in slots if "c-chloe" in slot.counselor_ids]
    assert with_chloe == grid(time(9, 0), time(12, 0), 15, 30)


def test_long_subject_must_end_by_the_window_end(engine: SlotEngine) -> None:
    slots = slots_for_day(engine, mode="video", subject_id="long", day=TUESDAY, now=MONDAY_1_JUNE, busy=[])

    assert local_times(slots)[-1] == time(14, 30)
    assert max(s.end.astimezone(BRUSSELS).time() for s in slots if s.start.hour < 11) <= time(12, 0)
    assert time(11, 0) not in local_times(slots)


def test_lead_time_hides_slots_starting_too_soon(engine: SlotEngine) -> None:
    now = local(TUESDAY, 9, 20)  # earliest start 11:20
    slots = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=now, busy=[])

    assert local_times(slots)[0] == time(11, 30)
    assert all(slot.start >= now + timedelta(minutes=120) for slot in slots)


def test_lead_time_boundary_is_inclusive(engine: SlotEngine) -> None:
    exactly = local(TUESDAY, 9, 30)  # earliest start 11:30 sharp
    args = {"mode": "video", "subject_id": "claim", "day": TUESDAY, "busy": []}

    assert local_times(slots_for_day(engine, now=exactly, **args))[0] == time(11, 30)
    just_after = exactly + timedelta(microseconds=1)
    assert local_times(slots_for_day(engine, now=just_after, **args))[0] == time(13, 0)


def test_horizon_ends_max_horizon_days_after_today(engine: SlotEngine) -> None:
    last_day = date(2026, 6, 1) + timedelta(days=56)
    args = {"mode": "video", "subject_id": "claim", "now": MONDAY_1_JUNE, "busy": []}

    assert slots_for_day(engine, day=last_day, **args)
    assert slots_for_day(engine, day=last_day + timedelta(days=1), **args) == []
    assert slots_for_day(engine, day=date(2026, 5, 29), **args) == []  # the past


def test_closure_day_and_belgian_national_day_are_closed(engine: SlotEngine) -> None:
    args = {"mode": "video", "subject_id": "claim", "now": MONDAY_1_JUNE, "busy": []}

    assert slots_for_day(engine, day=CLOSURE_DAY, **args) == []
    assert slots_for_day(engine, day=CLOSURE_DAY - timedelta(days=1), **args)
    assert slots_for_day(engine, day=date(2026, 7, 21), **args) == []
    assert slots_for_day(engine, day=date(2026, 7, 22), **args)


def test_busy_counselor_is_not_offered_during_their_appointment(engine: SlotEngine) -> None:
    busy = [Busy("c-anna", local(TUESDAY, 9, 0), local(TUESDAY, 10, 0))]
    slots = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=busy)
    anna = {slot.start.astimezone(BRUSSELS).time() for slot in slots if "c-anna" in slot.counselor_ids}

    assert time(8, 30) in anna  # ends exactly when the appointment begins
    assert not anna & {time(8, 45), time(9, 0), time(9, 15), time(9, 30), time(9, 45)}
    assert time(10, 0) in anna
    during = [slot for slot in slots if time(8, 45) <= slot.start.astimezone(BRUSSELS).time() <= time(9, 45)]
    assert during and all("c-bert" in slot.counselor_ids for slot in during)


def test_slot_disappears_when_every_counselor_is_busy(engine: SlotEngine) -> None:
    start, end = local(TUESDAY, 8, 30), local(TUESDAY, 9, 0)
    busy = [Busy(c["id"], start, end) for c in COUNSELORS]
    slots = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=busy)

    assert local_times(slots)[0] == time(9, 0)


def test_language_filter_keeps_counselors_speaking_it(engine: SlotEngine) -> None:
    def counselors(language: str) -> set[str]:
        slots = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE,
                                     busy=[], language=language)
        return {cid for slot in slots for cid in slot.counselor_ids}

    assert counselors("nl") == {"c-anna", "c-bert"}
    assert counselors("de") == {"c-dirk"}
    assert counselors("en") == set()


def test_office_mode_offers_the_office_counselors_in_its_hours(engine: SlotEngine) -> None:
    monday, tuesday = date(2026, 6, 8), TUESDAY
    args = {"mode": "office", "subject_id": "claim", "now": MONDAY_1_JUNE, "busy": []}

    bxl = slots_for_day(engine, day=monday, office_id="bxl", **args)
    assert local_times(bxl) == grid(time(9, 0), time(12, 0), 15, 30)
    assert {slot.counselor_ids for slot in bxl} == {("c-anna",)}
    assert {slot.office_id for slot in bxl} == {"bxl"}
    # Liège has office hours of its own: Tuesday afternoon only.
    assert slots_for_day(engine, day=monday, office_id="lge", **args) == []
    lge = slots_for_day(engine, day=tuesday, office_id="lge", **args)
    assert local_times(lge) == grid(time(13, 0), time(15, 0), 15, 30)
    assert {slot.counselor_ids for slot in lge} == {("c-chloe",)}
    # Without an office, every office's slots come back, each tagged with its office.
    assert {s.office_id for s in slots_for_day(engine, day=tuesday, **args)} == {"lge"}
    # A subject not offered at the office has no office slots.
    assert slots_for_day(engine, day=monday, office_id="bxl", **{**args, "subject_id": "long"}) == []


def test_video_search_can_be_limited_to_an_office_counselors(engine: SlotEngine) -> None:
    slots = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=[],
                                 office_id="bxl")

    assert {cid for slot in slots for cid in slot.counselor_ids} == {"c-anna", "c-bert"}
    assert {slot.office_id for slot in slots} == {None}


@pytest.mark.parametrize(("day", "utc_hour"), [(date(2026, 3, 29), 7), (date(2026, 10, 25), 8)])
def test_dst_change_days_keep_local_opening_hours(tmp_path: Path, day: date, utc_hour: int) -> None:
    agency = make_agency(tmp_path, opening_hours=_hours("video", [(ALL_DAYS, time(8, 30), time(12, 0))]))
    engine = SlotEngine(agency)
    now = utc(day.year, day.month, 1)
    slots = slots_for_day(engine, mode="video", subject_id="claim", day=day, now=now, busy=[])

    assert local_times(slots) == grid(time(8, 30), time(12, 0), 15, 30)
    nine = next(slot for slot in slots if slot.start.astimezone(BRUSSELS).time() == time(9, 0))
    assert nine.start == utc(day.year, day.month, day.day, utc_hour, 0)


def test_night_window_skips_missing_hour_and_offers_repeated_hour_once(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, opening_hours=_hours("video", [(ALL_DAYS, time(1, 0), time(4, 0))]),
                         booking={"min_lead_minutes": 0, "slot_step_minutes": 15})
    engine = SlotEngine(agency)

    spring = slots_for_day(engine, mode="video", subject_id="claim", day=date(2026, 3, 29),
                                  now=utc(2026, 3, 20), busy=[])
    assert not [t for t in local_times(spring) if t.hour == 2]  # 02:00-02:59 does not exist that night
    assert spring[-1].end <= local(date(2026, 3, 29), 4, 0)
    autumn = slots_for_day(engine, mode="video", subject_id="claim", day=date(2026, 10, 25),
                                  now=utc(2026, 10, 1), busy=[])
    starts = [slot.start for slot in autumn]
    assert starts == sorted(set(starts))
    assert autumn[-1].end <= local(date(2026, 10, 25), 4, 0)


def test_night_window_keeps_its_wall_clock_grid_across_the_missing_hour(tmp_path: Path) -> None:
    # A 25-minute grid from 01:00: 02:15 and 02:40 do not exist; 03:05 keeps the wall-clock grid.
    agency = make_agency(tmp_path, opening_hours=_hours("video", [(ALL_DAYS, time(1, 0), time(4, 0))]),
                         booking={"min_lead_minutes": 0, "slot_step_minutes": 25})
    spring = slots_for_day(SlotEngine(agency), mode="video", subject_id="claim", day=date(2026, 3, 29),
                                              now=utc(2026, 3, 20), busy=[])

    assert local_times(spring) == [t for t in grid(time(1, 0), time(4, 0), 25, 30) if t.hour != 2]


def test_window_ending_in_the_repeated_hour_ends_at_its_first_occurrence(tmp_path: Path) -> None:
    agency = make_agency(tmp_path, opening_hours=_hours("video", [(ALL_DAYS, time(1, 0), time(2, 30))]),
                         booking={"min_lead_minutes": 0, "slot_step_minutes": 15})
    autumn = slots_for_day(SlotEngine(agency), mode="video", subject_id="claim", day=date(2026, 10, 25),
                                              now=utc(2026, 10, 1), busy=[])

    assert autumn[-1].end == utc(2026, 10, 25, 0, 30)  # 02:30 summer time


def test_days_with_slots_skips_weekends_and_holidays(engine: SlotEngine) -> None:
    now = utc(2026, 7, 15, 6, 0)  # Wednesday 08:00 local: slots from 10:00 still today
    days = engine.days_with_slots(mode="video", subject_id="claim", now=now, busy=[], limit=5)

    # Thursday, Friday, (weekend), Monday, (21 July, national day), Wednesday.
    assert days == [date(2026, 7, 15), date(2026, 7, 16), date(2026, 7, 17), date(2026, 7, 20),
                    date(2026, 7, 22)]
    later = engine.days_with_slots(mode="video", subject_id="claim", now=now, busy=[], limit=2,
                                   from_day=date(2026, 7, 21))
    assert later == [date(2026, 7, 22), date(2026, 7, 23)]


def test_days_with_slots_stops_at_the_horizon(engine: SlotEngine) -> None:
    days = engine.days_with_slots(mode="video", subject_id="claim", now=MONDAY_1_JUNE, busy=[], limit=100)

    assert days[-1] == date(2026, 7, 27)
    assert CLOSURE_DAY not in days and date(2026, 7, 21) not in days
    assert all(day.weekday() < 5 for day in days)


def test_is_bookable_rechecks_a_previously_offered_slot(engine: SlotEngine) -> None:
    slot = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=[])[0]
    args = {"slot_start": slot.start, "mode": "video", "subject_id": "claim", "now": MONDAY_1_JUNE}

    assert engine.is_bookable(counselor_id="c-anna", busy=[], **args)
    taken = [Busy("c-anna", slot.start + timedelta(minutes=15), slot.start + timedelta(minutes=45))]
    assert not engine.is_bookable(counselor_id="c-anna", busy=taken, **args)
    assert engine.is_bookable(counselor_id="c-bert", busy=taken, **args)
    assert not engine.is_bookable(counselor_id="c-bert", busy=[], language="fr", **args)
    assert not engine.is_bookable(counselor_id="c-chloe", busy=[], **args)  # 08:30 is outside Liège hours
    too_late = {**args, "now": slot.start - timedelta(minutes=60)}
    assert not engine.is_bookable(counselor_id="c-anna", busy=[], **too_late)
    off_grid = {**args, "slot_start": slot.start + timedelta(minutes=10)}
    assert not engine.is_bookable(counselor_id="c-anna", busy=[], **off_grid)


def test_least_loaded_counselor_is_offered_first(engine: SlotEngine) -> None:
    # Bert already has three appointments in the horizon; Anna and Dirk none.
    busy = [Busy("c-bert", local(date(2026, 6, d), 14), local(date(2026, 6, d), 14, 30)) for d in (2, 3, 4)]
    slots = slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=busy)

    assert all(slot.counselor_ids[-1] == "c-bert" for slot in slots if len(slot.counselor_ids) > 1)
    firsts = {slot.counselor_ids[0] for slot in slots}
    assert firsts <= {"c-anna", "c-chloe", "c-dirk"}
    assert len(firsts) > 1  # equal loads do not always favour the same counselor


def test_order_by_load_is_deterministic_and_spreads_ties() -> None:
    ids = [f"c{i}" for i in range(5)]
    load = {"c0": 2, "c1": 0, "c2": 0, "c3": 1, "c4": 0}

    ordered = order_by_load(ids, load, salt="2026-06-09T06:30:00+00:00")
    assert ordered == order_by_load(reversed(ids), load, salt="2026-06-09T06:30:00+00:00")
    assert set(ordered[:3]) == {"c1", "c2", "c4"} and ordered[3:] == ("c3", "c0")
    firsts = {order_by_load(ids, load, salt=str(minute))[0] for minute in range(40)}
    assert firsts == {"c1", "c2", "c4"}


def test_busy_index_gives_the_same_answer_as_a_list(engine: SlotEngine) -> None:
    busy = [Busy("c-anna", local(TUESDAY, 9, 0), local(TUESDAY, 10, 0)),
            Busy("c-dirk", local(TUESDAY, 13, 0), local(TUESDAY, 15, 0))]
    args = {"mode": "video", "subject_id": "claim", "day": TUESDAY, "now": MONDAY_1_JUNE}

    from_index = slots_for_day(engine, busy=BusyIndex.from_busy(busy), **args)
    assert from_index == slots_for_day(engine, busy=busy, **args)


def test_busy_index_handles_overlapping_busy_items() -> None:
    day = TUESDAY
    index = BusyIndex.from_busy([Busy("c", local(day, 8, 0), local(day, 12, 0)),
                                 Busy("c", local(day, 9, 0), local(day, 9, 30))])

    assert not index.is_free("c", local(day, 10, 0), local(day, 10, 30))
    assert index.is_free("c", local(day, 12, 0), local(day, 12, 30))
    assert index.is_free("other", local(day, 10, 0), local(day, 10, 30))
    assert index.count_starting("c", local(day, 0, 0), local(day, 9, 0)) == 1


def test_bad_input_is_refused(engine: SlotEngine) -> None:
    with pytest.raises(ValueError, match="subject"):
        slots_for_day(engine, mode="video", subject_id="nope", day=TUESDAY, now=MONDAY_1_JUNE, busy=[])
    with pytest.raises(ValueError, match="naive"):
        slots_for_day(engine, mode="video", subject_id="claim", day=TUESDAY, now=datetime(2026, 6, 1), busy=[])
    with pytest.raises(ValueError, match="office"):
        slots_for_day(engine, mode="office", subject_id="claim", day=TUESDAY, now=MONDAY_1_JUNE, busy=[],
                             office_id="nowhere")
    with pytest.raises(ValueError, match="naive"):
        BusyIndex.from_busy([Busy("c-anna", datetime(2026, 6, 9, 9), datetime(2026, 6, 9, 10))])
    with pytest.raises(ValueError):
        claim_steps(utc(2026, 6, 1, 10), utc(2026, 6, 1, 10))


def test_claim_steps_cover_the_appointment_on_the_utc_grid() -> None:
    steps = claim_steps(local(TUESDAY, 9, 0), local(TUESDAY, 9, 30), 15)

    assert steps == [utc(2026, 6, 9, 7, 0), utc(2026, 6, 9, 7, 15)]
    assert claim_steps(utc(2026, 6, 9, 7, 10), utc(2026, 6, 9, 7, 20), 15) == [utc(2026, 6, 9, 7, 0),
                                                                                utc(2026, 6, 9, 7, 15)]


def test_agency_hours_fall_on_the_claim_grid(agency: Agency, tmp_path: Path) -> None:
    assert claim_grid_problems(agency) == []
    odd = make_agency(tmp_path, opening_hours=_hours("video", [(WEEKDAYS, time(8, 32), time(12, 0))]))
    assert len(claim_grid_problems(odd)) == 1


# -- properties ----------------------------------------------------------------------------------

DAYS = st.one_of(st.sampled_from(DST_DAYS), st.dates(date(2026, 1, 1), date(2027, 12, 31)))
LANGUAGES = st.sampled_from([None, "fr", "nl", "de"])
SPECS = st.sampled_from([("video", None, "claim"), ("video", None, "long"), ("video", None, "claim"),
                         ("office", "bxl", "claim"), ("office", "lge", "claim"), ("office", None, "claim")])
TABLES = {"work_week": WORK_WEEK, "every_day": EVERY_DAY}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    day = draw(DAYS)
    # Mostly inside the horizon, sometimes beyond it or in the past.
    now = local(day, 0) - timedelta(minutes=draw(st.integers(-12 * 60, 60 * 24 * 60)))
    busy = []
    for _ in range(draw(st.integers(0, 12))):
        cid = draw(st.sampled_from([c["id"] for c in COUNSELORS]))
        start = local(day, 7) + timedelta(minutes=draw(st.integers(0, 10 * 60)))
        busy.append(Busy(cid, start, start + timedelta(minutes=draw(st.integers(1, 120)))))
    mode, office, subject = draw(SPECS)
    return {"hours": draw(st.sampled_from(sorted(TABLES))), "day": day, "now": now, "busy": busy,
            "mode": mode, "office_id": office, "subject_id": subject, "language": draw(LANGUAGES)}


def reference_windows(
    table: dict, counselor: dict, mode: str, office: str | None, day: date
) -> list[tuple[time, time]]:
    """Hours a counselor follows: Liège has hours of its own, every other place the general ones."""
    weekday = ALL_DAYS[day.weekday()]
    place = office if mode == "office" else (counselor["offices"] or [None])[0]
    spans = table[(mode, "lge")] if place == "lge" else table[(mode, None)]
    return [(start, end) for days, start, end in spans if weekday in days]


def reference_offers(
    table: dict, scenario: dict[str, Any], agency: Agency
) -> set[tuple[datetime, str, str | None]]:
    """Brute force: every (start, counselor, office) the rules allow, without the engine's shortcuts."""
    duration = agency.subject(scenario["subject_id"]).duration_minutes
    day, now, mode = scenario["day"], scenario["now"], scenario["mode"]
    today = now.astimezone(BRUSSELS).date()
    if (day in BE_HOLIDAYS or day == CLOSURE_DAY or not today <= day <= today + timedelta(days=56)
            or Mode(mode) not in agency.subject(scenario["subject_id"]).modes):
        return set()
    offices = [scenario["office_id"]] if mode == "office" and scenario["office_id"] else ["bxl", "lge"]
    offers = set()
    for counselor in COUNSELORS:
        if mode not in counselor["modes"]:
            continue
        if scenario["language"] and scenario["language"] not in counselor["languages"]:
            continue
        for office in offices if mode == "office" else [None]:
            if office is not None and office not in counselor["offices"]:
                continue
            for w_start, w_end in reference_windows(table, counselor, mode, office, day):
                for t in grid(w_start, w_end, 15, duration):
                    start = local(day, t.hour, t.minute)
                    end = start + timedelta(minutes=duration)
                    if start < now + timedelta(minutes=120):
                        continue
                    if any(b.counselor_id == counselor["id"] and b.start < end and start < b.end
                           for b in scenario["busy"]):
                        continue
                    offers.add((start, counselor["id"], office))
    return offers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_property_slots_respect_every_rule(engines: dict[str, SlotEngine], agency: Agency,
                                           scenario: dict[str, Any]) -> None:
    hours = scenario.pop("hours")
    engine, table = engines[hours], TABLES[hours]
    slots = slots_for_day(engine, **scenario)
    day, now = scenario["day"], scenario["now"]
    duration = timedelta(minutes=agency.subject(scenario["subject_id"]).duration_minutes)

    for slot in slots:
        assert slot.counselor_ids
        assert slot.end - slot.start == duration
        start_local, end_local = slot.start.astimezone(BRUSSELS), slot.end.astimezone(BRUSSELS)
        assert start_local.date() == day == end_local.date()
        assert day not in BE_HOLIDAYS and day != CLOSURE_DAY
        assert slot.start >= now + timedelta(minutes=120)
        assert day <= now.astimezone(BRUSSELS).date() + timedelta(days=56)
        assert slot.start.timestamp() % (CLAIM_STEP_MINUTES * 60) == 0
        for cid in slot.counselor_ids:
            counselor = next(c for c in COUNSELORS if c["id"] == cid)
            windows = reference_windows(table, counselor, scenario["mode"], slot.office_id, day)
            assert any(start <= start_local.time() and end_local.time() <= end for start, end in windows)
            assert not any(b.counselor_id == cid and b.start < slot.end and slot.start < b.end
                           for b in scenario["busy"])
            assert engine.is_bookable(slot_start=slot.start, counselor_id=cid,
                                      **{k: v for k, v in scenario.items() if k not in ("day", "office_id")},
                                      office_id=slot.office_id)
    offered = {(slot.start, cid, slot.office_id) for slot in slots for cid in slot.counselor_ids}
    assert offered == reference_offers(table, scenario, agency)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios(), limit=st.integers(1, 8))
def test_property_days_with_slots_lists_the_first_open_days(engines: dict[str, SlotEngine],
                                                           scenario: dict[str, Any], limit: int) -> None:
    engine = engines[scenario.pop("hours")]
    args = {k: v for k, v in scenario.items() if k != "day"}
    days = engine.days_with_slots(limit=limit, **args)

    today = scenario["now"].astimezone(BRUSSELS).date()
    every_day = (today + timedelta(days=n) for n in range(57))
    expected = [d for d in every_day if slots_for_day(engine, day=d, **args)][:limit]
    assert days == expected


INSTANTS = st.integers(0, 3 * 24 * 60 * 60).map(lambda s: utc(2026, 3, 28) + timedelta(seconds=s))
STEPS = st.sampled_from([1, 5, 10, 15, 20, 30, 60])


@settings(max_examples=200, deadline=None)
@given(a=INSTANTS, a_len=st.integers(1, 4 * 3600), b=INSTANTS, b_len=st.integers(1, 4 * 3600), step=STEPS)
def test_property_overlapping_appointments_share_a_claim_step(
    a: datetime, a_len: int, b: datetime, b_len: int, step: int
) -> None:
    a_end, b_end = a + timedelta(seconds=a_len), b + timedelta(seconds=b_len)
    a_steps, b_steps = claim_steps(a, a_end, step), claim_steps(b, b_end, step)

    if a < b_end and b < a_end:
        assert set(a_steps) & set(b_steps)
    for s in a_steps:
        assert s.timestamp() % (step * 60) == 0
        assert s < a_end and a < s + timedelta(minutes=step)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 2000), a_len=st.integers(1, 240), gap=st.integers(0, 240), step=STEPS,
       zone=st.sampled_from(["Europe/Brussels", "Europe/Paris"]), day=st.sampled_from(DST_DAYS))
def test_property_back_to_back_local_appointments_claim_distinct_steps(
    a: int, a_len: int, gap: int, step: int, zone: str, day: date
) -> None:
    # A start on a local wall-clock grid from a whole hour, as the engine makes them, around a DST change.
    wall = datetime.combine(day - timedelta(days=1), time(20)) + timedelta(minutes=(a // step) * step)
    first = wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    first_end = first + timedelta(minutes=a_len)
    # The next appointment starts on the grid at or after the first one's end.
    second = first_end + timedelta(minutes=gap)
    second += timedelta(minutes=-second.minute % step)

    assert first.timestamp() % (step * 60) == 0
    assert not set(claim_steps(first, first_end, step)) & set(
        claim_steps(second, second + timedelta(minutes=30), step))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios(), minute=st.integers(0, 24 * 60 - 1), loaded=st.booleans())
def test_property_slots_at_is_slots_for_day_at_that_start(engines: dict[str, SlotEngine],
                                                         scenario: dict[str, Any], minute: int,
                                                         loaded: bool) -> None:
    engine = engines[scenario.pop("hours")]
    load = {"c-anna": 2, "c-dirk": 1} if loaded else None
    whole_day = slots_for_day(engine, load=load, **scenario)
    day = scenario.pop("day")
    # Every start the day offers, and any minute of the day (mostly not a slot start).
    for start in [slot.start for slot in whole_day] + [local(day, 0) + timedelta(minutes=minute)]:
        at = engine.slots_at(start=start, load=load, **scenario)
        assert at == [slot for slot in whole_day if slot.start == start]


def test_busy_index_from_rows_or_microseconds_is_the_one_from_busy_items(engine: SlotEngine) -> None:
    busy = [Busy("c-anna", local(TUESDAY, 9, 0), local(TUESDAY, 10, 0)),
            Busy("c-anna", local(TUESDAY, 9, 30), local(TUESDAY, 9, 45)),
            Busy("c-dirk", local(TUESDAY, 13, 0), local(TUESDAY, 15, 0) + timedelta(microseconds=1)),
            Busy("c-bert", local(TUESDAY, 11, 0), local(TUESDAY, 11, 0))]
    rows = [(item.counselor_id, item.start, item.end) for item in busy]
    micros = [(cid, epoch_us(start), epoch_us(end)) for cid, start, end in rows]
    args = {"mode": "video", "subject_id": "claim", "day": TUESDAY, "now": MONDAY_1_JUNE}

    expected = slots_for_day(engine, busy=BusyIndex.from_busy(busy), **args)
    assert slots_for_day(engine, busy=BusyIndex.from_intervals(rows), **args) == expected
    assert slots_for_day(engine, busy=BusyIndex.from_epoch_us(micros), **args) == expected
    assert epoch_us(utc(1970, 1, 1, 0, 0, 1)) == 1_000_000 and len(BusyIndex.from_epoch_us(micros)) == 3
    with pytest.raises(ValueError, match="naive"):
        BusyIndex.from_intervals([("c-anna", datetime(2026, 6, 9, 9), datetime(2026, 6, 9, 10))])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_property_times_for_day_are_the_times_of_slots_for_day(engines: dict[str, SlotEngine],
                                                              scenario: dict[str, Any]) -> None:
    engine = engines[scenario.pop("hours")]
    slots = slots_for_day(engine, **scenario)
    assert engine.times_for_day(**scenario) == [(slot.start, slot.end, slot.office_id) for slot in slots]
