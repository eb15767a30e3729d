"""An agency's configuration: who it is, what it offers, when, and under which rules.

One TOML file per agency (see `deployment/agencies/<id>/agency.toml`), validated here with
errors that name the field. Pure data and rules: no I/O beyond reading the file and its documents.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LANGUAGES = ("fr", "nl", "de", "en")


class AgencyConfigError(ValueError):
    """The agency file is missing or invalid; the message names the file and the field."""


class Mode(StrEnum):
    VIDEO = "video"
    OFFICE = "office"


class InterviewLanguageRule(StrEnum):
    # Belgium: the official language of the place of residence (postal code); Brussels lets the
    # citizen choose between French and Dutch.
    BELGIAN_RESIDENCE = "belgian_residence"
    # One language for every interview: the agency's first language.
    AGENCY_LANGUAGE = "agency_language"
    # The citizen picks among the agency's languages.
    CITIZEN_CHOICE = "citizen_choice"


class RecordingPolicy(StrEnum):
    FORBIDDEN = "forbidden"
    ALLOWED_WITH_NOTICE = "allowed_with_notice"


class DocumentKind(StrEnum):
    TERMS = "terms"
    PRIVACY = "privacy"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Python's `date.weekday()` number (Monday = 0)."""
        return list(Weekday).index(self)


class PersonalField(StrEnum):
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    BIRTH_DATE = "birth_date"
    EMAIL = "email"
    PHONE = "phone"
    POSTAL_CODE = "postal_code"
    NATIONAL_REGISTER_NUMBER = "national_register_number"
    CLIENT_NUMBER = "client_number"


Localized = dict[str, str]
"""Text per language code; must cover every language of the agency."""


_DEFAULT_IDENTITY_FIELDS = (PersonalField.FIRST_NAME, PersonalField.LAST_NAME, PersonalField.BIRTH_DATE,
                            PersonalField.NATIONAL_REGISTER_NUMBER, PersonalField.CLIENT_NUMBER)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Model):
    # Given to citizens whenever the chat cannot help (no alert reaches the team, too late to change):
    # checked at load time to read as a number of the agency's country, or an international one.
    phone: str = Field(min_length=1, max_length=40)
    email: str
    website: str
    postal_address: str


class Office(_Model):
    id: str
    name: Localized
    street: str
    postal_code: str
    city: str


class OpeningHours(_Model):
    """A weekly window during which appointments of `mode` can start and end."""

    mode: Mode
    days: list[Weekday]
    start: time
    end: time
    # None: every office (or, for video, counselors of every office).
    office: str | None = None

    @model_validator(mode="after")
    def _start_before_end(self) -> OpeningHours:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class Subject(_Model):
    id: str
    name: Localized
    duration_minutes: Annotated[int, Field(gt=0, le=240)]
    modes: list[Mode]
    # Documents the citizen should have at hand, shown in the checklist.
    documents_to_prepare: Localized | None = None


class Counselor(_Model):
    id: str = Field(description="Entra (Azure AD) object id of the counselor")
    display_name: str
    languages: list[str]
    offices: list[str]
    modes: list[Mode]
    email: str | None = None


class Supervisor(_Model):
    """Staff who may act on any counselor's appointment and see the agency's day and statistics."""

    id: str = Field(description="Entra (Azure AD) object id")
    display_name: str


class FallbackChannel(_Model):
    """A Teams channel of the agency where the bot posts what it could not deliver to a counselor."""

    conversation_id: str = Field(description="the channel's id, 19:...@thread.tacv2")
    service_url: str = Field(pattern=r"^https?://", description="the Bot Connector's regional address")
    tenant_id: str


class BookingRules(_Model):
    min_lead_minutes: Annotated[int, Field(ge=0)] = 120
    max_horizon_days: Annotated[int, Field(gt=0, le=366)] = 56
    cancellation_cutoff_minutes: Annotated[int, Field(ge=0)] = 120
    # Appointments start on this grid (minutes from the opening time).
    slot_step_minutes: Annotated[int, Field(gt=0, le=120)] = 15
    max_upcoming_per_citizen: Annotated[int, Field(gt=0)] = 3


class Retention(_Model):
    """How long each kind of data is kept, in months, counted from the event named."""

    # After the appointment's date.
    appointments_months: Annotated[int, Field(gt=0)] = 36
    # After the citizen's last activity (profile and contact data).
    citizen_inactive_months: Annotated[int, Field(gt=0)] = 36
    # After the consent was superseded or withdrawn: kept as proof.
    consent_proof_months: Annotated[int, Field(gt=0)] = 60
    # Audit events, pseudonymised; the hash chain itself is never cut.
    audit_months: Annotated[int, Field(gt=0)] = 60
    # Kept after erasure by law: anonymised appointment statistics.
    keep_anonymised_statistics: bool = True


class Document(_Model):
    """One version of a terms-of-use or privacy document, one Markdown-like file per language."""

    kind: DocumentKind
    version: str
    published: date
    files: dict[str, str]
    change_note: Localized | None = None


class Agency(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Localized
    country: str = Field(pattern=r"^[A-Z]{2}$")
    timezone: str
    languages: list[str] = Field(min_length=1)
    interview_language_rule: InterviewLanguageRule
    recording: RecordingPolicy
    modes: list[Mode] = Field(min_length=1)
    contact: Contact
    dpo_contact: str
    supervisory_authority: Localized
    offices: list[Office]
    opening_hours: list[OpeningHours] = Field(min_length=1)
    closure_days: list[date] = []
    subjects: list[Subject] = Field(min_length=1)
    counselors: list[Counselor] = Field(min_length=1)
    booking: BookingRules = BookingRules()
    reminder_offsets_minutes: list[Annotated[int, Field(gt=0)]] = [1440, 60]
    # A reminder more than this late (an outage) is dropped rather than sent late.
    reminder_late_tolerance_minutes: Annotated[int, Field(gt=0)] = 30
    # The retention run happens once a day at this local hour.
    retention_hour: Annotated[int, Field(ge=0, le=23)] = 3
    counselor_prompt_minutes: Annotated[int, Field(gt=0)] = 5
    no_show_minutes: Annotated[int, Field(gt=0)] = 10
    agency_wait_commitment_minutes: Annotated[int, Field(ge=0)] = 10
    personal_data_fields: list[PersonalField] = Field(min_length=1)
    # What the counselor's prompt shows to check the citizen's identity (masked where sensitive);
    # by default the names, birth date and identity or client number among the fields collected.
    identity_check_fields: list[PersonalField] | None = None
    supervisors: list[Supervisor] = []
    fallback_channel: FallbackChannel | None = None
    # Remove the counselors' Outlook busy times from the times offered (needs Microsoft Graph and their e-mail).
    outlook_availability: bool = False
    retention: Retention = Retention()
    # The agency's mailbox e-mails to citizens are sent from (Microsoft Graph sendMail).
    mailbox: str | None = None
    # Days a manage link sent by e-mail opens the citizen's appointments on the agency's website.
    manage_link_days: Annotated[int, Field(gt=0, le=365)] = 30
    documents: list[Document] = Field(min_length=2)

    # Set by `load_agency`: where the documents live.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("languages")
    @classmethod
    def _supported_languages(cls, value: list[str]) -> list[str]:
        unknown = [lang for lang in value if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"unsupported languages {unknown}; supported: {list(LANGUAGES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Agency:
        office_ids = {office.id for office in self.offices}
        problems: list[str] = []
        # Lookups by id (subject(), office(), counselor()) return the first match: a duplicate
        # would silently shadow the second entry.
        for field_name, ids in (
            ("offices", [o.id for o in self.offices]),
            ("subjects", [s.id for s in self.subjects]),
            ("counselors", [c.id for c in self.counselors]),
        ):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                problems.append(f"{field_name}: duplicate ids {duplicates}")
        for field_name, texts in self._localized_fields():
            missing = [lang for lang in self.languages if lang not in texts]
            if missing:
                problems.append(f"{field_name}: missing languages {missing}")
        for i, hours in enumerate(self.opening_hours):
            if hours.mode not in self.modes:
                problems.append(f"opening_hours[{i}].mode: {hours.mode} is not one of the agency's modes")
            if hours.office is not None and hours.office not in office_ids:
                problems.append(f"opening_hours[{i}].office: unknown office {hours.office!r}")
        for i, counselor in enumerate(self.counselors):
            for office in counselor.offices:
                if office not in office_ids:
                    problems.append(f"counselors[{i}].offices: unknown office {office!r}")
        for field_name in self.identity_check_fields or []:
            if field_name not in self.personal_data_fields:
                problems.append(f"identity_check_fields: {field_name.value} is not collected (personal_data_fields)")
        staff = [c.id for c in self.counselors] + [s.id for s in self.supervisors]
        if len(set(staff)) != len(staff):
            problems.append("supervisors: an id appears twice among counselors and supervisors")
        for i, subject in enumerate(self.subjects):
            if not set(subject.modes) <= set(self.modes):
                problems.append(f"subjects[{i}].modes: {subject.modes} not all offered by the agency")
        if Mode.OFFICE in self.modes and not self.offices:
            problems.append("offices: office mode needs at least one office")
        if not valid_phone_number(self.contact.phone, self.country):
            problems.append(f"contact.phone: {self.contact.phone!r} is not a valid phone number "
                            f"(write it as +<country code> <number>)")
        for kind in DocumentKind:
            if not any(doc.kind == kind for doc in self.documents):
                problems.append(f"documents: no {kind.value} document")
        for i, doc in enumerate(self.documents):
            missing = [lang for lang in self.languages if lang not in doc.files]
            if missing:
                problems.append(f"documents[{i}].files: missing languages {missing}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _localized_fields(self) -> list[tuple[str, Localized]]:
        fields: list[tuple[str, Localized]] = [
            ("name", self.name),
            ("supervisory_authority", self.supervisory_authority),
        ]
        fields += [(f"offices[{i}].name", o.name) for i, o in enumerate(self.offices)]
        fields += [(f"subjects[{i}].name", s.name) for i, s in enumerate(self.subjects)]
        # Optional texts, once given, are shown to every citizen: they need every language too.
        fields += [
            (f"subjects[{i}].documents_to_prepare", s.documents_to_prepare)
            for i, s in enumerate(self.subjects)
            if s.documents_to_prepare is not None
        ]
        fields += [
            (f"documents[{i}].change_note", d.change_note)
            for i, d in enumerate(self.documents)
            if d.change_note is not None
        ]
        return fields

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def display_name(self, language: str) -> str:
        return self.name.get(language) or self.name[self.default_language]

    def subject(self, subject_id: str) -> Subject | None:
        return next((s for s in self.subjects if s.id == subject_id), None)

    def subjects_for(self, mode: Mode | str) -> list[str]:
        """Ids of the subjects that can be handled in `mode`, in the agency's order."""
        return [subject.id for subject in self.subjects if Mode(mode) in subject.modes]

    def office(self, office_id: str) -> Office | None:
        return next((o for o in self.offices if o.id == office_id), None)

    def counselor(self, counselor_id: str) -> Counselor | None:
        return next((c for c in self.counselors if c.id == counselor_id), None)

    @property
    def identity_fields(self) -> list[PersonalField]:
        if self.identity_check_fields is not None:
            return list(self.identity_check_fields)
        return [field for field in _DEFAULT_IDENTITY_FIELDS if field in self.personal_data_fields]

    def supervisor(self, supervisor_id: str) -> Supervisor | None:
        return next((s for s in self.supervisors if s.id == supervisor_id), None)

    def is_staff(self, object_id: str | None) -> bool:
        """Whether this Entra object id is a counselor or a supervisor of the agency."""
        return object_id is not None and (self.counselor(object_id) is not None
                                          or self.supervisor(object_id) is not None)

    def may_act_for(self, object_id: str | None, counselor_id: str) -> bool:
        """Whether this person may report on an appointment of `counselor_id`: that counselor or a supervisor."""
        return object_id is not None and (object_id == counselor_id or self.supervisor(object_id) is not None)

    def current_document(self, kind: DocumentKind) -> Document:
        """The newest published version of a document (by publication date, then version)."""
        candidates = [doc for doc in self.documents if doc.kind == kind]
        return max(candidates, key=lambda doc: (doc.published, doc.version))

    def document_text(self, document: Document, language: str) -> str:
        """The document's source text in `language`, falling back to the agency's first language."""
        name = document.files.get(language) or document.files[self.default_language]
        return (self.base_dir / name).read_text(encoding="utf-8")

    def document_delays(self) -> dict[str, int]:
        """The delays, in minutes, a terms or privacy document may state as `{name}` placeholders: the
        text is filled from this file's rules, so the two cannot disagree."""
        return {
            "no_show_delay": self.no_show_minutes,
            "wait_commitment": self.agency_wait_commitment_minutes,
            "change_cutoff": self.booking.cancellation_cutoff_minutes,
        }


# `{name}` in a document's text: one of `Agency.document_delays`.
DOCUMENT_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _check_placeholders(path: Path, agency: Agency, doc: Document, language: str, text: str) -> None:
    where = f"{path}: documents: {doc.kind.value} {doc.version} {language}"
    delays = agency.document_delays()
    for name in sorted(set(DOCUMENT_PLACEHOLDER.findall(text))):
        if name not in delays:
            raise AgencyConfigError(f"{where}: unknown placeholder {{{name}}} (known: {', '.join(sorted(delays))})")
        if delays[name] == 0:
            # "up to 0 minutes before the start" misleads: such a rule is written out in the text.
            raise AgencyConfigError(f"{where}: {{{name}}} is 0 minutes in this file; write the rule out instead")


def valid_phone_number(text: str, country: str) -> bool:
    """Whether `text` reads as a phone number one can dial: digits of a possible length for the agency's
    country (or the country its +code names). Not stricter: numbering plans change faster than this library."""
    region = country if country in phonenumbers.SUPPORTED_REGIONS else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)


def load_agency(path: Path | str) -> Agency:
    """Read and validate an agency file; raise AgencyConfigError with a one-line message."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AgencyConfigError(f"agency file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AgencyConfigError(f"{path}: invalid TOML: {exc}") from exc
    try:
        agency = Agency.model_validate({**raw, "base_dir": path.parent})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise AgencyConfigError(f"{path}: {where}: {first['msg']}{more}") from exc
    for doc in agency.documents:
        for language, name in doc.files.items():
            if not (agency.base_dir / name).is_file():
                raise AgencyConfigError(f"{path}: documents: {doc.kind.value} {doc.version} "
                                        f"{language}: file {name!r} not found")
            _check_placeholders(path, agency, doc, language, (agency.base_dir / name).read_text(encoding="utf-8"))
    return agency
