"""Validation and normalisation of the personal data a citizen gives when booking.

Input comes from Adaptive Card submissions, which a client can tamper with: any value may be
missing, of the wrong type or enormous. Validation therefore never raises; each configured field
ends up either normalised in `values` or with a catalog error key in `errors`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import phonenumbers
import regex
from phonenumbers import PhoneMetadata

from bot.domain.agency import PersonalField

_ERROR = "personal_data.error."
ERROR_REQUIRED = _ERROR + "required"
ERROR_NAME_TOO_LONG = _ERROR + "name_too_long"
ERROR_NAME_INVALID = _ERROR + "name_invalid"
ERROR_BIRTH_DATE_INVALID = _ERROR + "birth_date_invalid"
ERROR_BIRTH_DATE_FUTURE = _ERROR + "birth_date_future"
ERROR_BIRTH_DATE_TOO_YOUNG = _ERROR + "birth_date_too_young"
ERROR_BIRTH_DATE_TOO_OLD = _ERROR + "birth_date_too_old"
ERROR_EMAIL_INVALID = _ERROR + "email_invalid"
ERROR_EMAIL_TOO_LONG = _ERROR + "email_too_long"
ERROR_PHONE_INVALID = _ERROR + "phone_invalid"
ERROR_POSTAL_CODE_INVALID = _ERROR + "postal_code_invalid"
ERROR_POSTAL_CODE_INVALID_BE = _ERROR + "postal_code_invalid_be"
ERROR_POSTAL_CODE_INVALID_FR = _ERROR + "postal_code_invalid_fr"
ERROR_NRN_FORMAT = _ERROR + "nrn_format"
ERROR_NRN_CHECKSUM = _ERROR + "nrn_checksum"
ERROR_NRN_BIRTH_DATE_IMPLAUSIBLE = _ERROR + "nrn_birth_date_implausible"
ERROR_NRN_BIRTH_DATE_MISMATCH = _ERROR + "nrn_birth_date_mismatch"
ERROR_CLIENT_NUMBER_INVALID = _ERROR + "client_number_invalid"

ERROR_KEYS = (
    ERROR_REQUIRED,
    ERROR_NAME_TOO_LONG,
    ERROR_NAME_INVALID,
    ERROR_BIRTH_DATE_INVALID,
    ERROR_BIRTH_DATE_FUTURE,
    ERROR_BIRTH_DATE_TOO_YOUNG,
    ERROR_BIRTH_DATE_TOO_OLD,
    ERROR_EMAIL_INVALID,
    ERROR_EMAIL_TOO_LONG,
    ERROR_PHONE_INVALID,
    ERROR_POSTAL_CODE_INVALID,
    ERROR_POSTAL_CODE_INVALID_BE,
    ERROR_POSTAL_CODE_INVALID_FR,
    ERROR_NRN_FORMAT,
    ERROR_NRN_CHECKSUM,
    ERROR_NRN_BIRTH_DATE_IMPLAUSIBLE,
    ERROR_NRN_BIRTH_DATE_MISMATCH,
    ERROR_CLIENT_NUMBER_INVALID,
)
"""Every error key `validate_personal_data` can return; each exists in all four catalogs."""

NAME_MAX_LENGTH = 100
EMAIL_MAX_LENGTH = 254
MIN_AGE = 15
MAX_AGE = 120
# Far above any legitimate value: bounds the work done on tampered input before real parsing.
_MAX_RAW_LENGTH = 1000

_SPACES = regex.compile(r"\s+")
_SPACE_RUNS = regex.compile(r"\p{Zs}+")
_NAME = regex.compile(r"[\p{L}\p{M} .'’\-]+")
_LETTER = regex.compile(r"\p{L}")
_ISO_DATE = regex.compile(r"(\d{4})-(\d{2})-(\d{2})", flags=regex.ASCII)
# Day first, as Belgians and the French write it; `.` and `-` are common in nl and de.
_DAY_FIRST_DATE = regex.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", flags=regex.ASCII)
_EMAIL_LOCAL = regex.compile(r"[^\s\p{C}<>()\[\]\\,;:\"@]{1,64}")
_DOMAIN_LABEL = regex.compile(r"[\p{L}\p{N}](?:[\p{L}\p{N}\-]{0,61}[\p{L}\p{N}])?")
_POSTAL_GENERIC = regex.compile(r"[A-Z0-9]+(?:[ \-][A-Z0-9]+)*", flags=regex.ASCII)
_DIGITS = regex.compile(r"[0-9]+", flags=regex.ASCII)
_NRN_SEPARATORS = regex.compile(r"[.\- ]")
_CLIENT_NUMBER = regex.compile(r"[A-Za-z0-9]{4,20}", flags=regex.ASCII)
# `+`, a calling code and the number, in ASCII digits and spaces only: how the bot stores phone
# numbers (E.164) and how many people type them. `re`'s [0-9] is ASCII, \d would not be.
_PLAIN_INTERNATIONAL = re.compile(r"\+[1-9][0-9 ]*")
_CALLING_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_PHONENUMBERS_MAX_INPUT = 250  # parse refuses longer text (TOO_LONG) before looking at it


@dataclass(frozen=True)
class PersonalDataResult:
    """Normalised values of the fields that passed, catalog error keys for those that did not."""

    values: dict[PersonalField, str | date]
    errors: dict[PersonalField, str]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Invalid(Exception):
    """Internal: carries the error key out of a field validator."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def booking_fields(agency_fields: Sequence[PersonalField], *, on_web: bool) -> list[PersonalField]:
    """The fields a booking asks: the agency's, and on its website (Web Chat) the e-mail address too.

    A visitor of the website is reachable only while the page is open: the confirmation, the meeting
    link, the reminders and the link to manage the appointment later can reach them only by e-mail.
    """
    fields = list(dict.fromkeys(agency_fields))
    if on_web and PersonalField.EMAIL not in fields:
        fields.append(PersonalField.EMAIL)
    return fields


def held_fields(agency_fields: Sequence[PersonalField], given: Callable[[PersonalField], bool]) -> list[PersonalField]:
    """The fields to show the citizen ("my data"): the agency's, then any other they gave (the e-mail address a
    booking on the website asks even where the agency's own form does not): held data is always shown."""
    fields = list(dict.fromkeys(agency_fields))
    return fields + [f for f in PersonalField if f not in fields and given(f)]


def corrected_fields(agency_fields: Sequence[PersonalField], raw: Mapping[str, object]) -> list[PersonalField]:
    """The fields a correction form sent: the agency's (all required), and any other the form carried (the
    website's e-mail field, see booking_fields); a field the form did not show is left as it is."""
    fields = list(dict.fromkeys(agency_fields))
    return fields + [f for f in PersonalField if f not in fields and f.value in raw]


def validate_personal_data(fields: Sequence[PersonalField], raw: Mapping[str, object], *, country: str,
                           today: date) -> PersonalDataResult:
    """Check every configured field (all are required) and normalise the ones that are valid.

    `raw` is keyed by field name (`PersonalField` values), as an Adaptive Card submits it. `country`
    is the agency's ISO country code: default phone region and postal code format.
    """
    country = country.upper()
    values: dict[PersonalField, str | date] = {}
    errors: dict[PersonalField, str] = {}
    is_mapping = isinstance(raw, Mapping)
    nrn_birth: NrnBirthDate | None = None
    for field in dict.fromkeys(fields):
        value = raw.get(field.value) if is_mapping else None
        if _is_blank(value):
            errors[field] = ERROR_REQUIRED
            continue
        try:
            if field is PersonalField.NATIONAL_REGISTER_NUMBER:
                # Its embedded birth date is kept for the check below instead of being parsed again.
                values[field], nrn_birth = _checked_national_register_number(value, today)
            else:
                values[field] = _VALIDATORS[field](value, country, today)
        except _Invalid as invalid:
            errors[field] = invalid.key
    birth_date = values.get(PersonalField.BIRTH_DATE)
    if (PersonalField.NATIONAL_REGISTER_NUMBER in values and isinstance(birth_date, date)
            and not _nrn_agrees_with(nrn_birth, birth_date)):
        del values[PersonalField.NATIONAL_REGISTER_NUMBER]
        errors[PersonalField.NATIONAL_REGISTER_NUMBER] = ERROR_NRN_BIRTH_DATE_MISMATCH
    return PersonalDataResult(values=values, errors=errors)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object, error: str, max_length: int = _MAX_RAW_LENGTH) -> str:
    """The trimmed string, or `error` for anything that is not a reasonably sized string."""
    if not isinstance(value, str) or len(value) > max_length:
        raise _Invalid(error)
    return value.strip()


def _name(value: object) -> str:
    if isinstance(value, str) and len(value) > _MAX_RAW_LENGTH:
        raise _Invalid(ERROR_NAME_TOO_LONG)
    # NFC so that a letter typed as base + combining accent counts as one character.
    text = unicodedata.normalize("NFC", _text(value, ERROR_NAME_INVALID))
    # Collapse only real spaces; tabs, newlines and other control characters are rejected below.
    name = _SPACE_RUNS.sub(" ", text).strip()
    if len(name) > NAME_MAX_LENGTH:
        raise _Invalid(ERROR_NAME_TOO_LONG)
    if not _NAME.fullmatch(name) or not _LETTER.search(name):
        raise _Invalid(ERROR_NAME_INVALID)
    return name


def _parse_date(text: str) -> date | None:
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _DAY_FIRST_DATE.fullmatch(text):
        day, month, year = (int(part) for part in match.groups())
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def age_on(birth_date: date, today: date) -> int:
    """Completed years of age on `today`."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def _birth_date(value: object, today: date) -> date:
    # A datetime (a date subclass) is not a birth date.
    if type(value) is date:
        parsed: date | None = value
    else:
        parsed = _parse_date(_text(value, ERROR_BIRTH_DATE_INVALID, max_length=40))
    if parsed is None:
        raise _Invalid(ERROR_BIRTH_DATE_INVALID)
    if parsed > today:
        raise _Invalid(ERROR_BIRTH_DATE_FUTURE)
    age = age_on(parsed, today)
    if age < MIN_AGE:
        raise _Invalid(ERROR_BIRTH_DATE_TOO_YOUNG)
    if age > MAX_AGE:
        raise _Invalid(ERROR_BIRTH_DATE_TOO_OLD)
    return parsed


def _email(value: object) -> str:
    if isinstance(value, str) and len(value.strip()) > EMAIL_MAX_LENGTH:
        raise _Invalid(ERROR_EMAIL_TOO_LONG)
    text = _text(value, ERROR_EMAIL_INVALID)
    if text.count("@") != 1:
        raise _Invalid(ERROR_EMAIL_INVALID)
    local, domain = text.split("@")
    if not _EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise _Invalid(ERROR_EMAIL_INVALID)
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise _Invalid(ERROR_EMAIL_INVALID)
    # A numeric top-level domain is an IP address or a typo, never a mailbox a citizen reads.
    if len(labels[-1]) < 2 or labels[-1].isdigit():
        raise _Invalid(ERROR_EMAIL_INVALID)
    return f"{local}@{domain}"


def _phone(value: object, country: str) -> str:
    text = _text(value, ERROR_PHONE_INVALID, max_length=50)
    number = _plain_international_number(text)
    if number is None:
        region = country if country in phonenumbers.SUPPORTED_REGIONS else None
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            raise _Invalid(ERROR_PHONE_INVALID) from exc
    if not phonenumbers.is_valid_number(number):
        raise _Invalid(ERROR_PHONE_INVALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.cache
def _national_prefix(calling_code: int) -> tuple[bool, re.Pattern[str] | None]:
    """(metadata known, national prefix pattern) of a calling code: read once per code, not per number."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(
        calling_code, phonenumbers.region_code_for_country_code(calling_code))
    if metadata is None:
        return False, None
    prefix = metadata.national_prefix_for_parsing
    return True, re.compile(prefix) if prefix else None


def _split_plain_international(text: str) -> tuple[int, str] | None:
    """(calling code, national number) exactly as phonenumbers.parse finds them in `+<code><number>`.

    Only for what needs none of parse's general work (separators other than spaces, extensions,
    IDD prefixes, national prefixes to strip, unknown codes, lengths it rejects): None otherwise, and
    the caller parses. phonenumbers.parse, on this plain form, whatever the default region: drops the
    `+` and the spaces, takes the shortest known calling code among the first 1-3 digits, and keeps
    the rest as the national number when the calling code's national prefix does not match its start
    (else it may strip it) and its length is 2 to 17 digits (else it raises).
    """
    if len(text) > _PHONENUMBERS_MAX_INPUT or not _PLAIN_INTERNATIONAL.fullmatch(text):
        return None
    digits = text[1:].replace(" ", "") if " " in text else text[1:]
    if (code := int(digits[0])) in _CALLING_CODES:
        national = digits[1:]
    elif (code := int(digits[:2])) in _CALLING_CODES:
        national = digits[2:]
    elif (code := int(digits[:3])) in _CALLING_CODES:
        national = digits[3:]
    else:
        return None  # unknown calling code: parse tries again without the +
    if not 2 <= len(national) <= 17:
        return None  # parse rejects a shorter one; a longer one might lose a national prefix
    known, national_prefix = _national_prefix(code)
    if not known or (national_prefix is not None and national_prefix.match(national)):
        return None
    return code, national


def _plain_international_number(text: str) -> phonenumbers.PhoneNumber | None:
    """phonenumbers.parse(text, any region) for the plain international form, else None."""
    split = _split_plain_international(text)
    if split is None:
        return None
    code, national = split
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    if national[0] == "0":
        # As parse records them (its _set_italian_leading_zeros_for_phone_number): the zeros are
        # part of the number in Italy and a few other countries; all zeros keep their last one.
        number.italian_leading_zero = True
        zeros = len(national) - len(national.lstrip("0"))
        zeros = min(zeros, len(national) - 1)
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


def _postal_code(value: object, country: str) -> str:
    if country == "BE":
        code = _text(value, ERROR_POSTAL_CODE_INVALID_BE, max_length=40).replace(" ", "")
        if not (_DIGITS.fullmatch(code) and len(code) == 4 and 1000 <= int(code) <= 9999):
            raise _Invalid(ERROR_POSTAL_CODE_INVALID_BE)
        return code
    if country == "FR":
        code = _text(value, ERROR_POSTAL_CODE_INVALID_FR, max_length=40).replace(" ", "")
        # 20xxx (Corsica) is inside the range; 99xxx is not used for addresses in France.
        if not (_DIGITS.fullmatch(code) and len(code) == 5 and 1000 <= int(code) <= 98999):
            raise _Invalid(ERROR_POSTAL_CODE_INVALID_FR)
        return code
    code = _SPACES.sub(" ", _text(value, ERROR_POSTAL_CODE_INVALID, max_length=40).upper())
    alphanumerics = sum(char.isalnum() for char in code)
    if not (_POSTAL_GENERIC.fullmatch(code) and 3 <= alphanumerics <= 10):
        raise _Invalid(ERROR_POSTAL_CODE_INVALID)
    return code


@dataclass(frozen=True)
class NrnBirthDate:
    """The birth date embedded in a national register number; month or day 0 means unknown."""

    year: int
    month: int
    day: int


def nrn_birth_date(nrn: str) -> NrnBirthDate | None:
    """The embedded birth date of a valid 11-digit number (century from the checksum), else None."""
    if not (_DIGITS.fullmatch(nrn) and len(nrn) == 11):
        return None
    base, check = int(nrn[:9]), int(nrn[9:])
    if 97 - base % 97 == check:
        century = 1900
    elif 97 - (2_000_000_000 + base) % 97 == check:
        century = 2000
    else:
        return None
    month = int(nrn[2:4])
    # BIS numbers (people not in the national register, e.g. cross-border workers) add 20 or 40
    # to the month; they are used as the same social-security identifier.
    if month >= 40:
        month -= 40
    elif month >= 20:
        month -= 20
    return NrnBirthDate(year=century + int(nrn[:2]), month=month, day=int(nrn[4:6]))


def _plausible(birth: NrnBirthDate, today: date) -> bool:
    """A real date (when known) of someone the agency can serve: the same age bounds as birth_date.

    The age bound also catches typos that a mod-97 checksum cannot: a digit change can make the
    number valid under the other century's rule, which moves the birth year by a hundred.
    """
    if not (0 <= birth.month <= 12 and 0 <= birth.day <= 31):
        return False
    if birth.month and birth.day:
        try:
            born = date(birth.year, birth.month, birth.day)
        except ValueError:
            return False
        return born <= today and MIN_AGE <= age_on(born, today) <= MAX_AGE
    return MIN_AGE - 1 <= today.year - birth.year <= MAX_AGE + 1


def _checked_national_register_number(value: object, today: date) -> tuple[str, NrnBirthDate]:
    nrn = _NRN_SEPARATORS.sub("", _text(value, ERROR_NRN_FORMAT, max_length=40))
    if not (_DIGITS.fullmatch(nrn) and len(nrn) == 11):
        raise _Invalid(ERROR_NRN_FORMAT)
    birth = nrn_birth_date(nrn)
    if birth is None:
        raise _Invalid(ERROR_NRN_CHECKSUM)
    if not _plausible(birth, today):
        raise _Invalid(ERROR_NRN_BIRTH_DATE_IMPLAUSIBLE)
    return nrn, birth


def _nrn_agrees_with(birth: NrnBirthDate | None, birth_date: date) -> bool:
    if birth is None:
        return False
    return (birth.year == birth_date.year
            and birth.month in (0, birth_date.month)
            and birth.day in (0, birth_date.day))


def _client_number(value: object) -> str:
    # Spaces are never significant in a file number; people copy them from letters.
    number = _SPACES.sub("", _text(value, ERROR_CLIENT_NUMBER_INVALID, max_length=100))
    if not _CLIENT_NUMBER.fullmatch(number):
        raise _Invalid(ERROR_CLIENT_NUMBER_INVALID)
    return number


# Field -> validator(value, country, today): one lookup instead of a match over the enum. The
# national register number is not here: validate_personal_data keeps its birth date too.
_VALIDATORS: dict[PersonalField, Callable[[object, str, date], str | date]] = {
    PersonalField.FIRST_NAME: lambda value, _country, _today: _name(value),
    PersonalField.LAST_NAME: lambda value, _country, _today: _name(value),
    PersonalField.BIRTH_DATE: lambda value, _country, today: _birth_date(value, today),
    PersonalField.EMAIL: lambda value, _country, _today: _email(value),
    PersonalField.PHONE: lambda value, country, _today: _phone(value, country),
    PersonalField.POSTAL_CODE: lambda value, country, _today: _postal_code(value, country),
    PersonalField.CLIENT_NUMBER: lambda value, _country, _today: _client_number(value),
}


def phone_example(country: str) -> str:
    """A sample mobile number of `country` in international format, for the phone hint."""
    example = phonenumbers.example_number_for_type(country.upper(), phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "+32 470 12 34 56"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# A masked identifier never shows enough to rebuild it: at least half of its characters, and never
# fewer than three, stay hidden; a check digit counts as shown when every digit it checks is shown
# (anyone can compute it), so it is hidden whenever one of them is.
MASK_MIN_HIDDEN = 3


def shown_characters(length: int, wanted: int) -> int:
    """How many of an identifier's `length` characters a mask may show, `wanted` at most."""
    hidden = max((length + 1) // 2, MASK_MIN_HIDDEN)
    return max(0, min(wanted, length - hidden))


def mask(field: PersonalField, value: str | date) -> str:
    """A normalised value as it may be shown back in a chat or a card: identifiers partly hidden, so
    that what is shown never rebuilds them (the rule above). Only the citizen's own export shows them
    whole."""
    if isinstance(value, date):
        return value.isoformat()
    match field:
        case PersonalField.NATIONAL_REGISTER_NUMBER:
            if len(value) != 11:
                return "•" * len(value)
            # Only the birth-date part, which the birth date shows anyway. The serial number is hidden,
            # and so are the check digits: they check it, and would narrow it down to a few values.
            return f"{value[0:2]}.{value[2:4]}.{value[4:6]}-***.**"
        case PersonalField.PHONE:
            split = _split_plain_international(value)
            if split is not None:  # a stored (E.164) number: its calling code without a full parse
                prefix = f"+{split[0]}"
            else:
                try:
                    prefix = f"+{phonenumbers.parse(value).country_code}"
                except phonenumbers.NumberParseException:
                    prefix = ""
            # The calling code says only the country; the number is what identifies.
            number = len(value) - len(prefix)
            shown = shown_characters(number, 3)
            return prefix + "•" * (number - shown) + value[len(value) - shown:]
        case PersonalField.EMAIL:
            local, _, domain = value.rpartition("@")
            # A fixed run of dots: the length of the hidden part is not shown either.
            return f"{local[:shown_characters(len(local), 1)]}•••@{domain}"
        case PersonalField.CLIENT_NUMBER:
            shown = shown_characters(len(value), 4)
            return "•" * (len(value) - shown) + value[len(value) - shown:]
    return value
