"""Privacy dialogs: my data, export, correct, erase, restriction and reminders.

- `privacy.my_data`: the card of what is held, why, how long; its buttons are entry verbs.
- `privacy.export`: the JSON export. In a Teams personal chat Teams must ask the person before a bot
  writes a file to their OneDrive (FileConsentCard); the answer comes back as a `fileConsent/invoke`,
  which TeamsBot routes here as the verb `privacy_export_file` (`privacy.export_file`). Elsewhere
  (Emulator, Web Chat) the file goes inline as a `data:` URL attachment.
- `privacy.rectify`: the consent gate (purpose RECTIFY), then `privacy.rectify_form`, the booking's
  personal-data fields prefilled, checked as at booking, until valid or abandoned.
- `privacy.erase`: what erasure means for this citizen, then erasure on confirmation. The turn then
  asks TeamsBot (FORGET_PERSON) to delete the conversation state instead of saving it and to forget
  the cached identity, so the next message starts afresh as a new person.
- `privacy.restrict` / `privacy.reminders`: set the flag the button names.
"""

from __future__ import annotations

import base64
import hmac
import logging
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.dialogs import (
    DialogContext,
    DialogTurnResult,
)
from botbuilder.schema import Activity, ActivityTypes, Attachment

from bot.commands import Intent
from bot.domain.agency import PersonalField
from bot.domain.channels import file_needs_consent
from bot.domain.consent import Purpose
from bot.domain.json_parts import json_object
from bot.i18n import t
from bot.integrations.file_upload import UploadFailed, upload_file
from bot.replies import card_message
from bot.services.consent import citizen_ref
from bot.services.container import Services
from bot.services.privacy import PrivacyService, export_bytes
from bot.turn import FORGET_PERSON, turn_info
from cards.booking import build_personal_data_card, personal_display_value
from cards.privacy import (
    FILE_CONSENT_CARD,
    FILE_INFO_CARD,
    build_erase_confirm_card,
    build_erased_card,
    build_file_consent,
    build_my_data_card,
    build_notice_card,
    build_rectified_card,
    build_rectify_card,
    export_file_name,
    form_inputs,
)
from cards.verbs import Verb
from dialogs.card_flow import Announced, CardFlow, NoState
from dialogs.main_dialog import CONSENT_GATE, Entry, Feature
from dialogs.pressed_card import replace_pressed_card

log = logging.getLogger(__name__)

MY_DATA = "privacy.my_data"
EXPORT = "privacy.export"
EXPORT_FILE = "privacy.export_file"
RECTIFY = "privacy.rectify"
RECTIFY_FORM = "privacy.rectify_form"
ERASE = "privacy.erase"
RESTRICT = "privacy.restrict"
REMINDERS = "privacy.reminders"


class MyDataDialog(CardFlow[NoState]):
    """The card of what is held about the citizen, why and how long; its buttons start the other flows."""

    def __init__(self, privacy: PrivacyService, services: Services) -> None:
        super().__init__(MY_DATA, services, NoState)
        self._privacy = privacy

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dialog_context)
        overview = await self._privacy.overview(info.citizen_id or "")
        if overview is None:
            await dialog_context.context.send_activity(t(info.language, "privacy.erase.already"))
        else:
            await dialog_context.context.send_activity(card_message(build_my_data_card(self._agency, info.language,
                                                                                       overview)))
        return await dialog_context.end_dialog()


class ExportDialog(CardFlow[NoState]):
    """The JSON export: offered as a file in a Teams personal chat, sent inline elsewhere."""

    def __init__(self, privacy: PrivacyService, services: Services) -> None:
        super().__init__(EXPORT, services, NoState)
        self._privacy = privacy

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        context = dialog_context.context
        info = turn_info(context)
        citizen_id = info.citizen_id or ""
        document = await self._privacy.export(citizen_id, info.language)
        if document is None:
            await context.send_activity(t(info.language, "privacy.erase.already"))
            return await dialog_context.end_dialog()
        content = export_bytes(document)
        name = export_file_name(self._services.agency, self._services.clock.now())
        conversation = context.activity.conversation
        if file_needs_consent(context.activity.channel_id, conversation.conversation_type if conversation else None):
            # The file is made again when the person allows it: the card carries no data, only who
            # it is for (a digest, not the pseudonym) and the verb its answer is routed by.
            consent = build_file_consent(info.language, size_bytes=len(content), context={
                "verb": str(Verb.PRIVACY_EXPORT_FILE), "citizen_ref": citizen_ref(citizen_id),
            })
            await context.send_activity(t(info.language, "privacy.export.offer"))
            await context.send_activity(Activity(
                type=ActivityTypes.message,
                attachments=[Attachment(content_type=FILE_CONSENT_CARD, name=name, content=consent)],
            ))
            return await dialog_context.end_dialog()
        inline = "data:application/json;base64," + base64.b64encode(content).decode("ascii")
        await context.send_activity(Activity(
            type=ActivityTypes.message, text=t(info.language, "privacy.export.sent"),
            attachments=[Attachment(content_type="application/json", content_url=inline, name=name)],
        ))
        await self._privacy.record_export(citizen_id, delivery="inline", size_bytes=len(content))
        return await dialog_context.end_dialog()


class ExportFileDialog(CardFlow[NoState]):
    """The person's answer to the file consent card: upload the file, or note the refusal."""

    def __init__(self, privacy: PrivacyService, services: Services) -> None:
        super().__init__(EXPORT_FILE, services, NoState)
        self._privacy = privacy

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        context = dialog_context.context
        info = turn_info(context)
        language = info.language
        data = options
        citizen_id = info.citizen_id or ""
        ref = data.get("citizen_ref")
        if not isinstance(ref, str) or not hmac.compare_digest(ref, citizen_ref(citizen_id)):
            await context.send_activity(t(language, "privacy.export.expired"))
            return await dialog_context.end_dialog()
        if data.get("file_action") != "accept":
            await context.send_activity(t(language, "privacy.export.declined"))
            return await dialog_context.end_dialog()
        upload = json_object(data.get("upload_info"))
        upload_url = upload.get("uploadUrl")
        document = await self._privacy.export(citizen_id, language)
        if document is None or not isinstance(upload_url, str):
            await context.send_activity(t(language, "privacy.export.expired"))
            return await dialog_context.end_dialog()
        content = export_bytes(document)
        try:
            await upload_file(upload_url, content)
        except UploadFailed:
            await context.send_activity(t(language, "privacy.export.failed"))
            return await dialog_context.end_dialog()
        file_info = Attachment(
            content_type=FILE_INFO_CARD, name=str(upload.get("name") or "export.json"),
            content_url=str(upload.get("contentUrl") or ""),
            content={"uniqueId": upload.get("uniqueId"), "fileType": upload.get("fileType") or "json"},
        )
        await context.send_activity(Activity(type=ActivityTypes.message, text=t(language, "privacy.export.sent"),
                                             attachments=[file_info]))
        await self._privacy.record_export(citizen_id, delivery="teams_file", size_bytes=len(content))
        return await dialog_context.end_dialog()


class RectifyEntry(CardFlow[NoState]):
    """Correcting processes personal data: the privacy policy must be accepted first (purpose RECTIFY)."""

    def __init__(self, services: Services) -> None:
        super().__init__(RECTIFY, services, NoState)

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        if dialog_context.find_dialog_sync(CONSENT_GATE) is None:
            return await dialog_context.replace_dialog(RECTIFY_FORM)
        return await dialog_context.replace_dialog(
            CONSENT_GATE, {"next": RECTIFY_FORM, "options": {}, "purpose": Purpose.RECTIFY.value}
        )


class RectifyForm(CardFlow[NoState]):
    """The form, again with the errors under the fields until the values are valid.

    Typed values are never kept in the dialog state: each form card is sent at once and only its
    id is remembered (AwaitCard), so no personal data sits in the bot state between turns.
    """

    def __init__(self, privacy: PrivacyService, services: Services) -> None:
        super().__init__(RECTIFY_FORM, services, NoState)
        self._privacy = privacy

    def _form(self, language: str, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
        booking_form = build_personal_data_card(self._agency, language, values=values, errors=errors)
        return build_rectify_card(language, form_inputs(booking_form), has_errors=bool(errors))

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dialog_context)
        stored = await self._privacy.stored_personal_data(info.citizen_id or "")
        if not stored:
            await dialog_context.context.send_activity(t(info.language, "privacy.rectify.nothing_stored"))
            return await dialog_context.end_dialog(False)
        values = {f.value: personal_display_value(self._agency, info.language, value) for f, value in stored.items()}
        return await self._ask(dialog_context, NoState(), "form", self._form(info.language, values, {}),
                               [Verb.PRIVACY_RECTIFY_SUBMIT])

    async def _on_form(self, dialog_context: DialogContext, state: NoState, verb: str,
                       data: dict[str, Any]) -> DialogTurnResult:
        context = dialog_context.context
        info = self._info(dialog_context)
        language = info.language
        citizen_id = info.citizen_id or ""
        # Every field the form carried (on the website it also asks the e-mail address, see booking_fields).
        typed: dict[str, Any] = {f.value: data.get(f.value) for f in PersonalField if f.value in data}
        outcome = await self._privacy.rectify(citizen_id, typed)
        if outcome.errors:
            shown = {name: value for name, value in typed.items() if isinstance(value, str)}
            errors = {f.value: key for f, key in outcome.errors.items()}
            notice = build_notice_card(language, t(language, "privacy.rectify.title"),
                                       t(language, "privacy.rectify.errors"), good=False)
            await replace_pressed_card(context, notice, else_send=None)
            return await self._ask(dialog_context, state, "form", self._form(language, shown, errors),
                                   [Verb.PRIVACY_RECTIFY_SUBMIT])
        if outcome.nothing_stored:
            await context.send_activity(t(language, "privacy.rectify.nothing_stored"))
            return await dialog_context.end_dialog(False)
        if not outcome.changed:
            card = build_notice_card(language, t(language, "privacy.rectify.title"),
                                     t(language, "privacy.rectify.unchanged"))
            await replace_pressed_card(context, card, else_send=card)
            return await dialog_context.end_dialog(False)
        stored = await self._privacy.stored_personal_data(citizen_id)
        upcoming = await self._privacy.upcoming_count(citizen_id)
        card = build_rectified_card(self._agency, language, {f: stored[f] for f in outcome.changed if f in stored},
                                    upcoming=upcoming, language_changed=outcome.interview_language_changed)
        await replace_pressed_card(context, card, else_send=card)
        return await dialog_context.end_dialog(True)

    STATES = {"form": _on_form}


class EraseDialog(CardFlow[Announced]):
    """What erasure means for this citizen (their upcoming appointments), then erasure on confirmation."""

    def __init__(self, privacy: PrivacyService, services: Services) -> None:
        super().__init__(ERASE, services, Announced)
        self._privacy = privacy

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        upcoming = await self._privacy.upcoming_count(info.citizen_id or "")
        card = build_erase_confirm_card(self._agency, info.language, upcoming)
        return await self._ask(dc, Announced(announced=upcoming), "confirm", card,
                               [Verb.PRIVACY_ERASE_CONFIRM, Verb.PRIVACY_ERASE_CANCEL])

    async def _on_confirm(self, dc: DialogContext, state: Announced, verb: str,
                          data: dict[str, Any]) -> DialogTurnResult:
        context = dc.context
        info = self._info(dc)
        language = info.language
        if verb != Verb.PRIVACY_ERASE_CONFIRM:
            card = build_notice_card(language, t(language, "privacy.erase.kept_title"),
                                     t(language, "privacy.erase.kept_text"))
            await replace_pressed_card(context, card, else_send=card)
            return await dc.end_dialog(False)
        activity = context.activity
        here = TurnContext.get_conversation_reference(activity).serialize()
        outcome = await self._privacy.erase(
            info.citizen_id or "", language=language, conversations=[here], activity_id=activity.id,
            channel=activity.channel_id or "msteams", announced_upcoming=state.announced,
        )
        if outcome.upcoming_changed:
            await context.send_activity(t(language, "privacy.erase.changed"))
            return await dc.replace_dialog(self.id)
        if outcome.already_erased:
            await context.send_activity(t(language, "privacy.erase.already"))
            return await dc.end_dialog(False)
        # The conversation state goes with the data; TeamsBot deletes it at the end of the turn.
        info.extras[FORGET_PERSON] = True
        card = build_erased_card(language, cancelled=len(outcome.cancelled))
        await replace_pressed_card(context, card, else_send=card)
        log.info("privacy: erasure done in this turn")
        return await dc.end_dialog(True)

    STATES = {"confirm": _on_confirm}


class FlagDialog(CardFlow[NoState]):
    """Restriction or reminders: set what the pressed button says (a command toggles)."""

    def __init__(self, dialog_id: str, privacy: PrivacyService, services: Services, *, restriction: bool) -> None:
        super().__init__(dialog_id, services, NoState)
        self._privacy = privacy
        self._restriction = restriction

    async def _start(self, dialog_context: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        context = dialog_context.context
        info = self._info(dialog_context)
        language = info.language
        citizen_id = info.citizen_id or ""
        data = options
        overview = await self._privacy.overview(citizen_id)
        if overview is None:
            await context.send_activity(t(language, "privacy.erase.already"))
            return await dialog_context.end_dialog()
        if self._restriction:
            wanted = data.get("restricted")
            restricted = wanted if isinstance(wanted, bool) else not overview.processing_restricted
            await self._privacy.set_restricted(citizen_id, restricted)
            prefix = "privacy.restrict.on" if restricted else "privacy.restrict.off"
            text = t(language, prefix)
        else:
            wanted = data.get("enabled")
            enabled = wanted if isinstance(wanted, bool) else overview.reminders_opt_out
            await self._privacy.set_reminders(citizen_id, enabled)
            prefix = "privacy.reminders.on" if enabled else "privacy.reminders.off"
            text = t(language, prefix)
            if enabled and overview.processing_restricted:
                text += "\n\n" + t(language, "privacy.reminders.restricted_note")
        card = build_notice_card(language, t(language, f"{prefix}_title"), text)
        await replace_pressed_card(context, card, else_send=card)
        return await dialog_context.end_dialog()


def build_privacy_feature(services: Services, privacy: PrivacyService) -> Feature:
    return Feature(
        dialogs=[
            MyDataDialog(privacy, services),
            ExportDialog(privacy, services),
            ExportFileDialog(privacy, services),
            RectifyEntry(services),
            RectifyForm(privacy, services),
            EraseDialog(privacy, services),
            FlagDialog(RESTRICT, privacy, services, restriction=True),
            FlagDialog(REMINDERS, privacy, services, restriction=False),
        ],
        # A privacy right asked for by name concerns all the citizen's data: on the agency's website, a
        # conversation that proved nothing is told how to reach it all first (its own citizen holds only what
        # it gave there). The buttons act on what a card of this conversation showed.
        intents={
            Intent.MY_DATA: Entry(MY_DATA, needs_proof=True),
            Intent.EXPORT: Entry(EXPORT, needs_proof=True),
            Intent.RECTIFY: Entry(RECTIFY, needs_proof=True),
            Intent.ERASE: Entry(ERASE, needs_proof=True),
        },
        verbs={
            Verb.MENU_MY_DATA: Entry(MY_DATA, needs_proof=True),
            Verb.PRIVACY_EXPORT: Entry(EXPORT),
            Verb.PRIVACY_EXPORT_FILE: Entry(EXPORT_FILE),
            Verb.PRIVACY_RECTIFY: Entry(RECTIFY),
            Verb.PRIVACY_ERASE: Entry(ERASE),
            Verb.PRIVACY_RESTRICT: Entry(RESTRICT),
            Verb.PRIVACY_REMINDERS: Entry(REMINDERS),
        },
    )
