"""Dates and times on cards: each language's conventions, the agency's zone, daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel import UnknownLocaleError
from babel.dates import parse_pattern

from bot.i18n import tn
from cards.formatting import (
    babel_locale,
    client_zone,
    duration_text,
    format_date,
    format_date_numeric,
    format_datetime,
    format_day_short,
    format_time,
    name_zone,
    zone_city,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
LANGUAGES = ("fr", "nl", "de", "en")
# The days around both 2026 daylight-saving changes in Europe.
DST_DAYS = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30),
            date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "lundi 23 novembre 2026 à 14:05"),
        ("nl", "maandag 23 november 2026 om 14:05"),
        ("de", "Montag, 23. November 2026 um 14:05"),
        ("en", "Monday 23 November 2026 at 14:05"),
    ],
)
def test_datetime_reads_naturally_in_each_language(language: str, expected: str) -> None:
    moment = datetime(2026, 11, 23, 13, 5, tzinfo=UTC)  # 14:05 in Brussels (winter time)
    assert format_datetime(moment, BRUSSELS, language, country="BE") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("fr", "lun. 30 nov."), ("nl", "ma 30 nov."), ("de", "Mo., 30. Nov."), ("en", "Mon 30 Nov")],
)
def test_short_day_for_buttons(language: str, expected: str) -> None:
    assert format_day_short(date(2026, 11, 30), language, country="BE") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("fr", "23/11/2026"), ("nl", "23/11/2026"), ("de", "23.11.2026"), ("en", "23/11/2026")],
)
def test_numeric_date_in_belgium(language: str, expected: str) -> None:
    assert format_date_numeric(date(2026, 11, 23), language, country="BE") == expected


def test_dutch_numeric_date_in_the_netherlands_uses_hyphens() -> None:
    assert format_date_numeric(date(2026, 11, 3), "nl", country="NL") == "03-11-2026"


def test_long_date_names_the_weekday() -> None:
    assert format_date(date(2026, 1, 15), "fr", country="BE") == "jeudi 15 janvier 2026"
    assert format_date(date(2026, 1, 15), "de", country="BE") == "Donnerstag, 15. Januar 2026"
    assert format_date(date(2026, 1, 15), "de", country="BE", weekday=False) == "15. Januar 2026"
    assert format_date(date(2026, 1, 15), "nl", country="BE", weekday=False) == "15 januari 2026"


def test_french_first_of_the_month_is_an_ordinal() -> None:
    assert format_date(date(2026, 2, 1), "fr", weekday=False) == "1er février 2026"
    assert format_day_short(date(2026, 2, 1), "fr") == "dim. 1er févr."
    first_of_june = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert format_datetime(first_of_june, BRUSSELS, "fr") == "lundi 1er juin 2026 à 10:00"
    assert format_date(date(2026, 2, 1), "en", weekday=False) == "1 February 2026"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("day", DST_DAYS, ids=str)
def test_ten_oclock_local_prints_ten_across_dst(language: str, day: date) -> None:
    local = datetime.combine(day, time(10, 0), tzinfo=BRUSSELS)
    stored = local.astimezone(UTC)  # as the database holds it
    assert "10:00" in format_datetime(stored, BRUSSELS, language, country="BE")
    assert format_time(local, language, country="BE") == "10:00"
    assert format_time(time(10, 0), language) == "10:00"
    assert format_day_short(local, language, country="BE") == format_day_short(day, language, country="BE")


def test_utc_offset_changes_but_local_time_does_not() -> None:
    # 10:00 in Brussels is 09:00 UTC before the spring change and 08:00 UTC after it.
    before = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    after = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert after - before == timedelta(hours=23)
    assert format_datetime(before, BRUSSELS, "en").endswith("at 10:00")
    assert format_datetime(after, BRUSSELS, "en").endswith("at 10:00")
    # And back in autumn: 10:00 is 08:00 UTC the day before, 09:00 UTC on the day of the change.
    assert format_datetime(datetime(2026, 10, 24, 8, 0, tzinfo=UTC), BRUSSELS, "fr").endswith("à 10:00")
    assert format_datetime(datetime(2026, 10, 25, 9, 0, tzinfo=UTC), BRUSSELS, "fr").endswith("à 10:00")


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_zone_name_is_printed(language: str) -> None:
    text = format_datetime(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), BRUSSELS, language, country="BE")
    for zone_word in ("UTC", "GMT", "CET", "CEST", "Europe", "+0"):
        assert zone_word not in text


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_datetime(datetime(2026, 7, 1, 12, 0), BRUSSELS, "fr")


def test_babel_locale_follows_the_agency_country() -> None:
    assert str(babel_locale("fr", "BE")) == "fr_BE"
    assert str(babel_locale("nl", "BE")) == "nl_BE"
    assert str(babel_locale("de", "BE")) == "de_BE"
    assert str(babel_locale("en", "BE")) == "en_GB"
    assert str(babel_locale("fr", "FR")) == "fr_FR"
    # No German locale for France: the language's own country.
    assert str(babel_locale("de", "FR")) == "de_DE"
    assert str(babel_locale("fr")) == "fr_FR"


# --- Formatted once: the cached and quick paths give what Babel gives -----------------------------

COUNTRIES = (None, "BE", "FR", "NL")
# Every first of the month (French ordinals) and days spread over a year, both DST changes included.
SAMPLE_DAYS = sorted({date(2026, month, 1) for month in range(1, 13)}
                     | {date(2026, 1, 2) + timedelta(days=5 * i) for i in range(75)} | set(DST_DAYS))


def _babel_apply(pattern: str, value: date | datetime, language: str, country: str | None) -> str:
    return parse_pattern(pattern).apply(value, babel_locale(language, country))


def _first_ordinal(pattern: str, language: str, day: int) -> str:
    return pattern.replace("d MMM", "d'er' MMM") if language == "fr" and day == 1 else pattern


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("country", COUNTRIES)
def test_time_is_what_babel_gives_for_every_minute(language: str, country: str | None) -> None:
    for minute in range(24 * 60):
        value = time(minute // 60, minute % 60)
        expected = _babel_apply("HH:mm", datetime.combine(date(2000, 1, 1), value), language, country)
        assert format_time(value, language, country=country) == expected
        aware = datetime.combine(date(2026, 3, 29), value, tzinfo=BRUSSELS)
        assert format_time(aware, language, country=country) == expected


def test_time_in_an_unknown_language_still_fails() -> None:
    with pytest.raises(UnknownLocaleError):
        format_time(time(10, 0), "xx")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("country", COUNTRIES)
def test_cached_dates_are_what_babel_gives(language: str, country: str | None) -> None:
    locale = babel_locale(language, country)
    long_pattern = {"de": "EEEE, d. MMMM y"}.get(language, "EEEE d MMMM y")
    plain_pattern = {"de": "d. MMMM y"}.get(language, "d MMMM y")
    short_pattern = {"de": "EEE, d. MMM"}.get(language, "EEE d MMM")
    numeric_pattern = "dd-MM-y" if str(locale) == "nl_NL" else {"de": "dd.MM.y"}.get(language, "dd/MM/y")
    # Twice: the second answer comes from the cache.
    for _ in range(2):
        for day in SAMPLE_DAYS:
            moment = datetime.combine(day, time(23, 30))
            for value in (day, moment):
                assert format_date(value, language, country=country) == _babel_apply(
                    _first_ordinal(long_pattern, language, day.day), day, language, country)
                assert format_date(value, language, country=country, weekday=False) == _babel_apply(
                    _first_ordinal(plain_pattern, language, day.day), day, language, country)
                assert format_day_short(value, language, country=country) == _babel_apply(
                    _first_ordinal(short_pattern, language, day.day), day, language, country)
                assert format_date_numeric(value, language, country=country) == _babel_apply(
                    numeric_pattern, day, language, country)


def test_the_same_instant_reads_in_each_zone_own_time() -> None:
    # Aware datetimes of one instant are equal to each other: a cache keyed by them would answer
    # Brussels time to a London agency.
    london, utc_zone = ZoneInfo("Europe/London"), ZoneInfo("UTC")
    for hour in range(0, 24, 5):
        instant = datetime(2026, 7, 1, hour, 10, tzinfo=UTC)
        texts = {}
        for zone in (BRUSSELS, london, utc_zone, BRUSSELS):
            local = instant.astimezone(zone)
            pattern = _first_ordinal("EEEE d MMMM y 'à' HH:mm", "fr", local.day)
            expected = _babel_apply(pattern, local, "fr", "BE")
            assert format_datetime(instant, zone, "fr", country="BE") == expected
            assert format_datetime(local, zone, "fr", country="BE") == expected
            texts[str(zone)] = expected
        assert len(set(texts.values())) == 3


# --- The agency's zone named for a reader whose clock differs ----------------------------------------


@pytest.mark.parametrize(
    ("zone_id", "language", "city"),
    [("Europe/Brussels", "fr", "Bruxelles"), ("Europe/Brussels", "nl", "Brussel"),
     ("Europe/Brussels", "de", "Brüssel"), ("Europe/Brussels", "en", "Brussels"),
     ("Europe/Paris", "nl", "Parijs"), ("America/New_York", "en", "New York")],
)
def test_a_zone_is_named_by_its_city_in_each_language(zone_id: str, language: str, city: str) -> None:
    assert zone_city(zone_id, language) == city


@pytest.mark.parametrize(
    ("day", "named"),
    # Lagos keeps UTC+1 all year: Brussels' clock agrees in winter only.
    [(date(2026, 3, 28), False), (date(2026, 3, 30), True), (date(2026, 10, 24), True), (date(2026, 10, 26), False)],
)
def test_the_zone_is_named_only_when_the_readers_clock_shows_another_time_across_dst(day: date, named: bool) -> None:
    moment = datetime(day.year, day.month, day.day, 10, 0, tzinfo=BRUSSELS)
    shown = format_datetime(moment, BRUSSELS, "en", country="BE")
    with client_zone("Africa/Lagos"):
        text = name_zone(shown, moment, BRUSSELS, "en")
    assert text.startswith(shown) and "10:00" in text
    assert (text == f"{shown}, Brussels time") is named
    assert (text == shown) is not named


def test_no_zone_is_named_without_a_client_zone_or_with_an_unknown_one() -> None:
    moment = datetime(2026, 7, 1, 10, 0, tzinfo=BRUSSELS)
    assert name_zone("10:00", moment, BRUSSELS, "fr") == "10:00"
    with client_zone("Mars/Olympus_Mons"):
        assert name_zone("10:00", moment, BRUSSELS, "fr") == "10:00"
    with client_zone("America/New_York"):
        assert name_zone("10:00", moment, BRUSSELS, "fr") == "10:00, heure de Bruxelles"
        assert name_zone("10:00", moment, BRUSSELS, "de") == "10:00, Ortszeit Brüssel"


@pytest.mark.parametrize(
    ("language", "counts"),
    [("fr", ["0 minute", "1 minute", "2 minutes"]), ("en", ["0 minutes", "1 minute", "2 minutes"]),
     ("nl", ["0 minuten", "1 minuut", "2 minuten"]), ("de", ["0 Minuten", "1 Minute", "2 Minuten"])],
)
def test_counts_follow_each_languages_plural_rule(language: str, counts: list[str]) -> None:
    assert [duration_text(language, n) for n in (0, 1, 2)] == counts
    assert duration_text(language, 60) == tn(language, "common.count.hours", 1)
    assert duration_text(language, 90) == tn(language, "common.count.minutes", 90)
