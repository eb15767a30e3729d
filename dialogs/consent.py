"""Consent dialogs: the gate before any personal data is asked, reading the documents, withdrawal.

- `consent_gate` (options `{"next", "options", "purpose"}`): shows each document the citizen still
  has to accept (terms, then privacy), then replaces itself with the `next` dialog. Declining ends
  the flow and stores nothing.
- `consent.terms` / `consent.privacy`: the document as it stands for the citizen: read-only with the
  date and version accepted, or to accept.
- `consent.withdraw`: what withdrawing means (upcoming appointments), then withdraw on confirmation.

The checks that make a button count (current version, content hash, the citizen's own card) live in
ConsentService; AwaitCard already refuses buttons of cards we are no longer waiting on.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.dialogs import DialogContext, DialogTurnResult

from bot.commands import Intent
from bot.domain.agency import DocumentKind
from bot.domain.consent import PendingDocument, Purpose
from bot.i18n import LANGUAGES, t
from bot.services.consent import ConsentService, WithdrawResult, citizen_ref
from bot.services.container import Services
from bot.turn import TurnInfo
from cards.booking import when_text
from cards.consent import (
    build_consent_card,
    build_consent_declined_card,
    build_consent_recorded_card,
    build_info_card,
    build_withdraw_confirm_card,
)
from cards.document import escape_markdown
from cards.formatting import to_local
from cards.verbs import Verb
from dialogs.card_flow import Announced, CardFlow
from dialogs.main_dialog import CONSENT_GATE, Entry, Feature
from dialogs.pressed_card import replace_pressed_card

TERMS_DIALOG = "consent.terms"
PRIVACY_DIALOG = "consent.privacy"
WITHDRAW_DIALOG = "consent.withdraw"

_DOCUMENT_VERBS = [Verb.CONSENT_ACCEPT, Verb.CONSENT_DECLINE, Verb.CONSENT_LANGUAGE]
_WITHDRAW_VERBS = [Verb.CONSENT_WITHDRAW_CONFIRM, Verb.CONSENT_WITHDRAW_CANCEL]


def _purpose(value: Any) -> Purpose:
    """The purpose the gate checks; the strictest one (booking) when none or an unknown one is given."""
    try:
        return Purpose(value)
    except ValueError:
        return Purpose.BOOK


async def _answer(context: TurnContext, language: str, title_key: str, text: str) -> None:
    """A short outcome: in the pressed card under a title (Action.Execute), else a chat message."""
    card = build_info_card(t(language, title_key), text, language=language)
    await replace_pressed_card(context, card, else_send=text)


async def _retire_pressed_card(context: TurnContext, language: str) -> None:
    """A card that is shown again (other language, refused answer) must not stay pressable above."""
    card = build_info_card(t(language, "consent_flow.replaced.title"), t(language, "consent_flow.replaced.text"),
                           language=language)
    await replace_pressed_card(context, card, else_send=None)


@dataclass
class DocumentState:
    """The document shown (its kind), the language it is read in, and the options the flow began with
    (the gate's purpose and the dialog it stands in front of), to show it again after an answer."""

    kind: str = ""
    language: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> DocumentState:
        options = stored.get("options")
        return cls(kind=str(stored.get("kind") or ""), language=str(stored.get("language") or ""),
                   options=copy.deepcopy(options) if isinstance(options, dict) else {})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "language": self.language, "options": copy.deepcopy(self.options)}


class DocumentFlow(CardFlow[DocumentState]):
    """Shows a document to accept and records the answer.

    With `kind` None this is the gate: it walks the documents the purpose requires and then hands
    over to `next`. With a `kind` it shows that one document, read-only once accepted.
    """

    def __init__(self, dialog_id: str, services: Services, consent: ConsentService,
                 kind: DocumentKind | None = None) -> None:
        super().__init__(dialog_id, services, DocumentState)
        self._consent = consent
        self._kind = kind

    def _reading_language(self, options: dict[str, Any], info: TurnInfo) -> str:
        chosen = options.get("language")
        return chosen if isinstance(chosen, str) and chosen in LANGUAGES else info.language

    def _other_languages(self) -> list[str]:
        # English documents are shipped for citizens who chat in English, even where it is not an
        # official language of the agency.
        return [*self._agency.languages, "en"]

    def _change_note(self, pending: PendingDocument, language: str) -> str | None:
        """What to tell someone who accepted an earlier text of this document, if anyone did."""
        document = pending.document
        if pending.previous_version is None:
            return None
        if pending.previous_version == document.version:
            # Same version label, different text: the agency corrected the text in place.
            return t(language, "consent_flow.change.corrected", version=document.version)
        if document.change_note:
            note = document.change_note
            return note.get(language) or note[self._agency.default_language]
        return t(language, "consent_flow.change.new_version", version=document.version,
                 previous=pending.previous_version)

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        citizen_id = info.citizen_id
        assert citizen_id is not None  # CardFlow.begin_dialog answers a turn without one
        language = self._reading_language(options, info)
        if self._kind is None:
            pending_documents = await self._consent.pending(citizen_id, _purpose(options.get("purpose")))
            if not pending_documents:
                next_dialog = options.get("next")
                if isinstance(next_dialog, str) and next_dialog:
                    next_options = options.get("options")
                    return await dc.replace_dialog(next_dialog, next_options if isinstance(next_options, dict)
                                                   else {})
                return await dc.end_dialog(True)
            pending = pending_documents[0]
        else:
            status = await self._consent.status(citizen_id, self._kind)
            if status.pending is None:
                assert status.accepted_at is not None
                card = build_consent_recorded_card(
                    self._agency, kind=self._kind, document=self._agency.current_document(self._kind),
                    language=language, accepted_at_local=to_local(status.accepted_at, self._agency.zone),
                )
                await self._send_card(dc, card)
                return await dc.end_dialog(True)
            pending = status.pending
        card = build_consent_card(
            self._agency, kind=pending.kind, document=pending.document, language=language,
            citizen_ref=citizen_ref(citizen_id), change_note=self._change_note(pending, language),
            other_languages=self._other_languages(),
        )
        state = DocumentState(kind=pending.kind.value, language=language, options=options)
        return await self._ask(dc, state, "answer", card, list(_DOCUMENT_VERBS))

    async def _on_answer(self, dc: DialogContext, state: DocumentState, verb: str,
                         data: dict[str, Any]) -> DialogTurnResult:
        context = dc.context
        citizen_id = self._info(dc).citizen_id
        assert citizen_id is not None  # checked when the card was shown, same person in the same chat
        kind = DocumentKind(state.kind)
        language = state.language
        options = state.options

        if verb == Verb.CONSENT_LANGUAGE:
            wanted = data.get("language")
            if isinstance(wanted, str) and wanted in LANGUAGES and wanted in self._agency.current_document(kind).files:
                language = wanted
            await _retire_pressed_card(context, language)
            return await dc.replace_dialog(self.id, {**options, "language": language})

        if verb == Verb.CONSENT_DECLINE:
            # Nothing is written: declining is not proof we need to keep, and no data was taken.
            declined = build_consent_declined_card(self._agency, language)
            await replace_pressed_card(context, declined, else_send=declined)
            return await dc.end_dialog(False)

        if data.get("kind") != kind.value:
            # A consent button must answer the document shown, not another one.
            await context.send_activity(t(language, "consent_flow.refused.invalid"))
            await _retire_pressed_card(context, language)
            return await dc.replace_dialog(self.id, {**options, "language": language})
        outcome = await self._consent.accept(
            citizen_id, kind=data.get("kind"), version=data.get("version"), doc_hash=data.get("doc_hash"),
            language=data.get("language"), citizen_ref=data.get("citizen_ref"),
            activity_id=context.activity.id, channel=context.activity.channel_id or "msteams",
        )
        if outcome.refusal is not None:
            await context.send_activity(t(language, f"consent_flow.refused.{outcome.refusal.value}"))
            await _retire_pressed_card(context, language)
            return await dc.replace_dialog(self.id, {**options, "language": language})

        assert outcome.accepted_at is not None
        recorded = build_consent_recorded_card(
            self._agency, kind=kind, document=self._agency.current_document(kind), language=language,
            accepted_at_local=to_local(outcome.accepted_at, self._agency.zone),
        )
        await replace_pressed_card(context, recorded, else_send=t(language, f"consent_flow.accepted.{kind.value}",
                                                                  version=outcome.version))
        if self._kind is None:
            # The next document, or the dialog the gate stands in front of.
            return await dc.replace_dialog(self.id, {**options, "language": language})
        return await dc.end_dialog(True)

    STATES = {"answer": _on_answer}


class WithdrawFlow(CardFlow[Announced]):
    """Explains what withdrawing consent means for this citizen, then withdraws on confirmation."""

    def __init__(self, services: Services, consent: ConsentService) -> None:
        super().__init__(WITHDRAW_DIALOG, services, Announced)
        self._consent = consent

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        citizen_id = info.citizen_id
        assert citizen_id is not None  # CardFlow.begin_dialog answers a turn without one
        upcoming = await self._consent.upcoming_count(citizen_id)
        if upcoming == 0 and not await self._consent.has_consent(citizen_id):
            await self._say(dc, t(info.language, "consent_flow.withdraw.nothing"))
            return await dc.end_dialog(False)
        card = build_withdraw_confirm_card(self._agency, info.language, upcoming)
        return await self._ask(dc, Announced(announced=upcoming), "confirm", card, list(_WITHDRAW_VERBS))

    async def _on_confirm(self, dc: DialogContext, state: Announced, verb: str,
                          data: dict[str, Any]) -> DialogTurnResult:
        context = dc.context
        info = self._info(dc)
        language = info.language
        citizen_id = info.citizen_id
        assert citizen_id is not None
        if verb != Verb.CONSENT_WITHDRAW_CONFIRM:
            await _answer(context, language, "consent_flow.withdraw.kept_title",
                          t(language, "consent_flow.withdraw.kept"))
            return await dc.end_dialog(False)
        outcome = await self._consent.withdraw(
            citizen_id, language=language, activity_id=context.activity.id,
            channel=context.activity.channel_id or "msteams", announced_upcoming=state.announced,
        )
        if outcome.upcoming_changed:
            await context.send_activity(t(language, "consent_flow.withdraw.changed"))
            await _retire_pressed_card(context, language)
            return await dc.replace_dialog(self.id)
        await _answer(context, language, "consent_flow.withdraw.done_title", self._outcome_text(outcome, language))
        return await dc.end_dialog(True)

    def _outcome_text(self, outcome: WithdrawResult, language: str) -> str:
        if not outcome.changed:
            return t(language, "consent_flow.withdraw.nothing")
        paragraphs = [t(language, "consent_flow.withdraw.done")]
        if not outcome.cancelled:
            paragraphs.append(t(language, "consent_flow.withdraw.cancelled_none"))
        else:
            if outcome.cancelled_count == 1:
                paragraphs.append(t(language, "consent_flow.withdraw.cancelled_one"))
            else:
                paragraphs.append(t(language, "consent_flow.withdraw.cancelled_many", count=outcome.cancelled_count))
            for appointment in outcome.cancelled:
                subject = self._agency.subject(appointment.subject_id)
                name = (subject.name.get(language) or subject.name[self._agency.default_language]) if subject else ""
                when = when_text(self._agency, language, appointment.starts_at)
                paragraphs.append(f"- {when} – {escape_markdown(name)}" if name else f"- {when}")
        paragraphs.append(t(language, "consent.withdraw.again"))
        return "\n\n".join(paragraphs)

    STATES = {"confirm": _on_confirm}


def build_consent_feature(services: Services, consent: ConsentService) -> Feature:
    return Feature(
        dialogs=[
            DocumentFlow(CONSENT_GATE, services, consent),
            DocumentFlow(TERMS_DIALOG, services, consent, DocumentKind.TERMS),
            DocumentFlow(PRIVACY_DIALOG, services, consent, DocumentKind.PRIVACY),
            WithdrawFlow(services, consent),
        ],
        intents={
            Intent.TERMS: Entry(TERMS_DIALOG),
            Intent.PRIVACY: Entry(PRIVACY_DIALOG),
            Intent.WITHDRAW_CONSENT: Entry(WITHDRAW_DIALOG, needs_proof=True),  # a privacy right
        },
        verbs={
            Verb.SHOW_TERMS: Entry(TERMS_DIALOG),
            Verb.SHOW_PRIVACY: Entry(PRIVACY_DIALOG),
        },
    )
