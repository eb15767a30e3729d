"""Which documents a citizen must have accepted before which action, and whether their consent is current.

A consent is current when the citizen's latest record for a document is an acceptance of the
agency's current version with the same content hash: a new version, or a silent edit of the text,
asks again. Withdrawal ends consent until the citizen accepts anew.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import NamedTuple

from bot.domain.agency import DOCUMENT_PLACEHOLDER, Agency, Document, DocumentKind


class ConsentAction(StrEnum):
    ACCEPTED = "accepted"
    WITHDRAWN = "withdrawn"


class Purpose(StrEnum):
    """Actions that process personal data, each needing some documents accepted first."""

    BOOK = "book"
    RESCHEDULE = "reschedule"
    RECTIFY = "rectify"


REQUIRED: dict[Purpose, tuple[DocumentKind, ...]] = {
    Purpose.BOOK: (DocumentKind.TERMS, DocumentKind.PRIVACY),
    Purpose.RESCHEDULE: (DocumentKind.TERMS, DocumentKind.PRIVACY),
    Purpose.RECTIFY: (DocumentKind.PRIVACY,),
}


@dataclass(frozen=True)
class LatestConsent:
    """The citizen's most recent record for one document kind."""

    version: str
    content_hash: str
    action: ConsentAction


@dataclass(eq=False)
class ConsentRecord:
    """Append-only proof of one acceptance or withdrawal of one document version (storage maps it)."""

    citizen_id: str
    agency_id: str
    document_kind: str
    version: str
    # SHA-256 over every language file of the version: a silent edit of the text is a new content.
    content_hash: str
    language: str
    action: str  # ConsentAction
    channel: str
    occurred_at: datetime
    activity_id: str | None = None
    id: int | None = None


class LatestConsentRecord(NamedTuple):
    """What the newest consent record of one document kind says."""

    id: int
    document_kind: str
    version: str
    content_hash: str
    action: str
    occurred_at: datetime


@dataclass(frozen=True)
class PendingDocument:
    """A document the citizen must (re)read and accept."""

    kind: DocumentKind
    document: Document
    content_hash: str
    # The version accepted before, if any: then the change note explains what is new.
    previous_version: str | None


@cache
def _hash_files(base_dir: Path, files: tuple[tuple[str, str], ...], delays: tuple[tuple[str, int], ...]) -> str:
    digest = hashlib.sha256()
    used: set[str] = set()
    for language, name in sorted(files):
        text = (base_dir / name).read_bytes()
        used.update(DOCUMENT_PLACEHOLDER.findall(text.decode("utf-8")))
        digest.update(language.encode() + b"\0")
        digest.update(text + b"\0")
    # The delays the text states come from the agency file: a changed delay is a changed text, which
    # the citizen accepts again. A document without placeholders keeps the hash it always had.
    for placeholder, minutes in delays:
        if placeholder in used:
            digest.update(f"{placeholder}={minutes}".encode() + b"\0")
    return digest.hexdigest()


def content_hash(agency: Agency, document: Document) -> str:
    """SHA-256 over every language of the document and the delays it states (cached: documents do not
    change while running)."""
    return _hash_files(agency.base_dir, tuple(document.files.items()), tuple(sorted(agency.document_delays().items())))


def is_current(agency: Agency, kind: DocumentKind, latest: LatestConsent | None) -> bool:
    if latest is None or latest.action is not ConsentAction.ACCEPTED:
        return False
    document = agency.current_document(kind)
    return latest.version == document.version and latest.content_hash == content_hash(agency, document)


def pending_documents(
    agency: Agency, purpose: Purpose, latest: dict[DocumentKind, LatestConsent]
) -> list[PendingDocument]:
    """The documents still to accept before `purpose`, in reading order (terms, then privacy)."""
    pending: list[PendingDocument] = []
    for kind in REQUIRED[purpose]:
        record = latest.get(kind)
        if is_current(agency, kind, record):
            continue
        document = agency.current_document(kind)
        previous = record.version if record and record.action is ConsentAction.ACCEPTED else None
        pending.append(PendingDocument(kind, document, content_hash(agency, document), previous))
    return pending
