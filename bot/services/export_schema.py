"""The structure of the personal-data export, as a JSON Schema shipped inside every export.

A citizen (or the service they move their data to) can read the file without us: every section
and field is described here, and docs/privacy.md explains it in prose.
"""

from __future__ import annotations

from typing import Any

from bot.domain.agency import Agency
from bot.domain.appointment import AppointmentStatus
from bot.i18n import t

EXPORT_FORMAT = "guichet.personal-data-export/1"
EXPORT_SECTIONS = ("pseudonym", "profile", "consents", "appointments", "audit_events", "retention_months", "schema")

_DATETIME = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}

_PERSONAL_DATA = {
    "type": "object",
    "description": "What you told us, as we hold it (only the fields you gave).",
    "properties": {
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "birth_date": {"type": "string", "format": "date"},
        "email": {"type": "string"},
        "phone": {"type": "string", "description": "International format (E.164)."},
        "postal_code": {"type": "string"},
        "national_register_number": {"type": "string", "description": "Belgian national register number."},
        "client_number": {"type": "string", "description": "Your number in the agency's files."},
    },
    "additionalProperties": False,
}

EXPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:guichet:personal-data-export:1",
    "title": "Personal data held by the appointment service",
    "type": "object",
    "required": ["format", "generated_at", "about", "controller", "pseudonym", "profile", "consents",
                 "appointments", "audit_events", "retention_months", "schema"],
    "properties": {
        "format": {"const": EXPORT_FORMAT, "description": "Name and version of this file's structure."},
        "generated_at": {"type": "string", "format": "date-time", "description": "When the file was made (UTC)."},
        "about": {"type": "object", "description": "What each section holds, in your language."},
        "controller": {
            "type": "object",
            "description": "Who is responsible for the data and how to reach them and their data protection officer.",
        },
        "pseudonym": {
            "type": "string",
            "description": "The random identifier that stands for you in our records and in the audit trail.",
        },
        "profile": {
            "type": "object",
            "required": ["personal_data", "teams"],
            "properties": {
                "personal_data": _PERSONAL_DATA,
                "interview_language": {**_TEXT, "description": "Language of your interviews (ISO 639-1)."},
                "locale": {**_TEXT, "description": "Language setting of your Teams client."},
                "teams": {
                    "type": "object",
                    "description": "Teams technical identifiers: your organisation, your account, your chat "
                                   "with the service (what lets it answer and remind you).",
                    "properties": {
                        "tenant_id": _TEXT,
                        "aad_object_id": _TEXT,
                        "teams_user_id": _TEXT,
                        "conversation_reference": {"type": ["object", "null"]},
                    },
                },
                "processing_restricted": {"type": "boolean",
                                          "description": "You asked us to restrict processing (no reminders)."},
                "reminders_opt_out": {"type": "boolean", "description": "You turned reminders off."},
                "first_seen_at": _DATETIME,
                "last_seen_at": _DATETIME,
            },
        },
        "consents": {
            "type": "array",
            "description": "Every acceptance or withdrawal of the terms of use and the privacy policy, oldest first.",
            "items": {
                "type": "object",
                "required": ["document", "version", "content_hash", "action", "occurred_at"],
                "properties": {
                    "document": {"enum": ["terms", "privacy"]},
                    "version": {"type": "string"},
                    "content_hash": {"type": "string",
                                     "description": "SHA-256 of the exact texts you were shown (all languages)."},
                    "language": {"type": "string"},
                    "action": {"enum": ["accepted", "withdrawn"]},
                    "channel": {"type": "string"},
                    "activity_id": _TEXT,
                    "occurred_at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "appointments": {
            "type": "array",
            "description": "Your appointments, with what became of each.",
            "items": {
                "type": "object",
                "required": ["id", "status", "mode", "starts_at", "ends_at"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"enum": [status.value for status in AppointmentStatus],
                               "description": "booked (coming or in progress), cancelled, attended (the interview "
                                              "took place), no_show (you did not appear), not_verified (your "
                                              "identity could not be checked), technical (a technical problem "
                                              "stopped it), no_outcome (nothing was reported)."},
                    "mode": {"enum": ["video", "office"]},
                    "subject": {"type": "object"},
                    "office": {"type": ["object", "null"]},
                    "counselor": _TEXT,
                    "starts_at": {"type": "string", "format": "date-time"},
                    "ends_at": {"type": "string", "format": "date-time"},
                    "interview_language": {"type": "string"},
                    "cancel_reason": _TEXT,
                    "cancel_note": _TEXT,
                    "join_url": _TEXT,
                    "identity_check": _TEXT,
                    "created_at": _DATETIME,
                    "updated_at": _DATETIME,
                },
            },
        },
        "audit_events": {
            "type": "array",
            "description": "Entries of the tamper-evident log about you or your appointments. Each entry's hash "
                           "covers the previous entry's hash; staff are named by role only.",
            "items": {
                "type": "object",
                "required": ["id", "occurred_at", "event_type", "actor", "payload", "prev_hash", "hash"],
                "properties": {
                    "id": {"type": "integer"},
                    "occurred_at": {"type": "string", "format": "date-time"},
                    "event_type": {"type": "string"},
                    "actor": {"enum": ["citizen", "counselor", "system", "pruned"]},
                    "appointment_id": _TEXT,
                    "payload": {"type": "object"},
                    "prev_hash": {"type": "string"},
                    "hash": {"type": "string"},
                },
            },
        },
        "retention_months": {"type": "object", "description": "How long each kind of data is kept, in months."},
        "schema": {"type": "object", "description": "This description of the file (JSON Schema 2020-12)."},
    },
}


def export_about(agency: Agency, language: str) -> dict[str, Any]:
    """The export's "about" section: what the file is and what each section holds, in the citizen's language."""
    return {
        "language": language,
        "summary": t(language, "privacy.export.about.summary", agency=agency.display_name(language)),
        "sections": {name: t(language, f"privacy.export.about.{name}") for name in EXPORT_SECTIONS},
    }
