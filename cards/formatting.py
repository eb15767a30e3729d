"""Dates, times and amounts of time as citizens read them, in French, Dutch, German and English.

Explicit Babel patterns per language, so the output does not drift with CLDR updates, and never a
zone name from Babel: 2.9.1 names zoneinfo zones wrongly. Aware datetimes are converted to the
agency's zone by us, then formatted as plain wall-clock values. When the reader's own clock shows
another time (Teams tells us their zone), `name_zone` says whose time it is: "19:28, Brussels time",
with the city from Babel's exemplar city (right for the zones we serve) or the zone id's last part.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, tzinfo
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import parse_pattern

from bot.i18n import t, tn

# The language's own country when the agency's country has no such locale (de in France…).
_DEFAULT_REGION = {"fr": "FR", "nl": "NL", "de": "DE", "en": "GB"}

# "lundi 23 novembre 2026"
_LONG_DATE = {
    "fr": "EEEE d MMMM y",
    "nl": "EEEE d MMMM y",
    "de": "EEEE, d. MMMM y",
    "en": "EEEE d MMMM y",
}
# "23 novembre 2026", for publication dates.
_DAY_MONTH_YEAR = {
    "fr": "d MMMM y",
    "nl": "d MMMM y",
    "de": "d. MMMM y",
    "en": "d MMMM y",
}
# "lundi 23 novembre 2026 à 14:05"
_LONG_DATETIME = {
    "fr": "EEEE d MMMM y 'à' HH:mm",
    "nl": "EEEE d MMMM y 'om' HH:mm",
    "de": "EEEE, d. MMMM y 'um' HH:mm",
    "en": "EEEE d MMMM y 'at' HH:mm",
}
# "lun. 30 nov.", for choice buttons.
_DAY_SHORT = {
    "fr": "EEE d MMM",
    "nl": "EEE d MMM",
    "de": "EEE, d. MMM",
    "en": "EEE d MMM",
}
# "23/11/2026", for proofs and records.
_NUMERIC_DATE = {
    "fr": "dd/MM/y",
    "nl": "dd/MM/y",
    "de": "dd.MM.y",
    "en": "dd/MM/y",
}
# The Netherlands write dates with hyphens; Belgium uses slashes in both languages.
_NUMERIC_DATE_BY_LOCALE = {"nl_NL": "dd-MM-y"}


@cache
def babel_locale(language: str, country: str | None = None) -> Locale:
    """The Babel locale for a catalog language in the agency's country: fr+BE → fr_BE, en → en_GB."""
    if language == "en":
        # British conventions (day before month, 24-hour clock) read naturally across Europe.
        return Locale.parse("en_GB")
    if country:
        try:
            return Locale.parse(f"{language}_{country.upper()}")
        except (UnknownLocaleError, ValueError):
            pass
    return Locale.parse(f"{language}_{_DEFAULT_REGION.get(language, 'GB')}")


def _pattern(patterns: dict[str, str], language: str, day: int | None = None) -> str:
    pattern = patterns.get(language, patterns["en"])
    if language == "fr" and day == 1:
        # French writes the first of the month as an ordinal: "1er février".
        pattern = pattern.replace("d MMM", "d'er' MMM")
    return pattern


def format_date(
    d: date | datetime, language: str, *, country: str | None = None, weekday: bool = True
) -> str:
    """A long date: "lundi 23 novembre 2026", "Montag, 23. November 2026"; "23 novembre 2026"
    without the weekday."""
    return _long_date(_as_date(d), language, country, weekday)


def format_date_numeric(d: date | datetime, language: str, *, country: str | None = None) -> str:
    """A short numeric date: "23/11/2026", "23.11.2026"."""
    return _numeric_date(_as_date(d), language, country)


def format_day_short(d: date | datetime, language: str, *, country: str | None = None) -> str:
    """A short day for buttons: "lun. 30 nov.", "ma 30 nov.", "Mo., 30. Nov.", "Mon 30 Nov"."""
    return _day_short(_as_date(d), language, country)


def format_time(value: time | datetime, language: str, *, country: str | None = None) -> str:
    """The wall-clock time on a 24-hour clock: "14:05". A datetime is formatted as it stands."""
    babel_locale(language, country)  # an unknown language still fails, as it did through Babel
    # What Babel's "HH:mm" gives in every language we speak (ASCII digits, zero-padded), without
    # building a formatter for each of the dozens of times on a card.
    return f"{value.hour:02d}:{value.minute:02d}"


def format_datetime(
    dt: datetime, zone: tzinfo, language: str, *, country: str | None = None
) -> str:
    """An aware moment as local time in `zone`: "lundi 23 novembre 2026 à 14:05"."""
    # Keyed by the naive wall-clock time: aware datetimes compare by instant, so 14:05+01:00 and
    # 13:05+00:00 would share an entry.
    return _long_datetime(to_local(dt, zone).replace(tzinfo=None), language, country)


# Cards show the same few dozen days and times to every citizen: each is formatted once. The keys
# are plain dates and naive datetimes, so the results depend on nothing else.
@lru_cache(maxsize=4096)
def _long_date(day: date, language: str, country: str | None, weekday: bool) -> str:
    pattern = _pattern(_LONG_DATE if weekday else _DAY_MONTH_YEAR, language, day.day)
    return babel_format_date(day, pattern, locale=babel_locale(language, country))


@lru_cache(maxsize=4096)
def _numeric_date(day: date, language: str, country: str | None) -> str:
    locale = babel_locale(language, country)
    pattern = _NUMERIC_DATE_BY_LOCALE.get(str(locale)) or _pattern(_NUMERIC_DATE, language)
    return babel_format_date(day, pattern, locale=locale)


@lru_cache(maxsize=4096)
def _day_short(day: date, language: str, country: str | None) -> str:
    return babel_format_date(day, _pattern(_DAY_SHORT, language, day.day), locale=babel_locale(language, country))


@lru_cache(maxsize=4096)
def _long_datetime(wall: datetime, language: str, country: str | None) -> str:
    return _apply(_pattern(_LONG_DATETIME, language, wall.day), wall, language, country)


def duration_text(language: str, minutes: int) -> str:
    """A delay as people say it, with the language's plural: "1 minute", "30 minutes", "2 heures",
    "24 Stunden", "90 minutes". Zero is no delay: callers say "until the start" instead."""
    if minutes >= 60 and minutes % 60 == 0:
        return tn(language, "common.count.hours", minutes // 60)
    return tn(language, "common.count.minutes", minutes)


def months_text(language: str, months: int) -> str:
    """A retention period: "1 mois", "36 Monate"."""
    return tn(language, "common.count.months", months)


def to_local(dt: datetime, zone: tzinfo) -> datetime:
    """The moment in the agency's zone; refuses naive datetimes, which would silently mean UTC."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return dt.astimezone(zone)


def _as_date(d: date | datetime) -> date:
    return d.date() if isinstance(d, datetime) else d


def _apply(pattern: str, wall: datetime, language: str, country: str | None) -> str:
    # Applying the pattern directly formats the fields as they stand; Babel's format_datetime would
    # run its own time-zone conversion, which 2.9.1 gets wrong for zoneinfo zones.
    return parse_pattern(pattern).apply(wall, babel_locale(language, country))


# The reader's IANA time zone while their cards are built: set for each turn from Teams' clientInfo,
# and around a proactive message from the zone stored with the chat. Unset: nothing is named.
_CLIENT_ZONE: ContextVar[ZoneInfo | None] = ContextVar("guichet_client_zone", default=None)


def set_client_zone(zone: str | None) -> None:
    """The reader of this turn's cards is in `zone` (an IANA id; unknown or None: not said)."""
    _CLIENT_ZONE.set(_zone(zone))


@contextmanager
def client_zone(zone: str | None) -> Iterator[None]:
    """Cards built inside are read in `zone` (a proactive message to a stored chat)."""
    token = _CLIENT_ZONE.set(_zone(zone))
    try:
        yield
    finally:
        _CLIENT_ZONE.reset(token)


@cache
def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@cache
def zone_city(zone_id: str, language: str) -> str:
    """The city that names an IANA zone in `language`: "Bruxelles", "Brüssel", "Brussels"."""
    city = Locale.parse(language).time_zones.get(zone_id, {}).get("city")
    return city or zone_id.rsplit("/", 1)[-1].replace("_", " ")


def shows_other_time(moment: datetime, zone: tzinfo) -> bool:
    """Whether the reader's clock shows `moment` at another time than the agency's `zone` does."""
    client = _CLIENT_ZONE.get()
    return client is not None and moment.astimezone(client).utcoffset() != moment.astimezone(zone).utcoffset()


def name_zone(text: str, moment: datetime, zone: ZoneInfo, language: str) -> str:
    """`text`, a time at `moment` in the agency's `zone`, followed by whose time it is when the reader's
    own clock differs then: "19:28, Brussels time", "19:28, heure de Bruxelles"."""
    if not shows_other_time(moment, zone):
        return text
    return t(language, "common.zone.time", time=text, city=zone_city(zone.key, language))
