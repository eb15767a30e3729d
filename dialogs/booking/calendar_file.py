"""The calendar file of an appointment: as this channel can take it, and its upload in Teams.

Teams refuses message attachments other than cards and images ("Unknown attachment type"), so in
Teams the .ics goes through the file consent card of personal chats: the bot offers the file, the
citizen allows it, Teams gives an upload URL in the citizen's OneDrive, the bot uploads and posts the
file card (`booking.calendar_file`, reached through TeamsBot's routing of `fileConsent/invoke` by the
verb in the card's context). Other channels (Web Chat, the Emulator) accept a data-URL attachment,
which is sent there instead.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import MessageFactory
from botbuilder.dialogs import DialogContext, DialogTurnResult
from botbuilder.schema import Attachment

from bot.i18n import LANGUAGES, t
from bot.integrations.file_upload import UploadFailed, upload_file
from bot.services.booking import BookingService
from bot.services.container import Services
from cards.booking import FILE_INFO_CARD, calendar_file_name
from cards.calendar import build_ics
from dialogs.booking.flow import not_found_text
from dialogs.card_flow import CardFlow, NoState


class CalendarFileDialog(CardFlow[NoState]):
    """The citizen's answer to the calendar file's consent card: upload the file once allowed.

    TeamsBot routes the `fileConsent/invoke` here as the verb `appt_calendar_file`, with the card's
    context plus `file_action` and `upload_info` as data. The appointment must be the citizen's own.
    """

    ID = "booking.calendar_file"

    def __init__(self, services: Services, booking: BookingService) -> None:
        super().__init__(self.ID, services, NoState)
        self._booking = booking

    async def _start(self, dc: DialogContext, options: dict[str, Any]) -> DialogTurnResult:
        info = self._info(dc)
        assert info.citizen_id is not None
        chosen = options.get("language")
        language = chosen if isinstance(chosen, str) and chosen in LANGUAGES else info.language
        if options.get("file_action") != "accept":
            await self._say(dc, t(language, "booking.calendar.declined",
                                  command=t(language, "help.command.my_appointments")))
            return await dc.end_dialog()
        appointment = await self._booking.get_own(info.citizen_id, options.get("appointment_id"))
        if appointment is None:
            await self._say(dc, not_found_text(language))
            return await dc.end_dialog()
        given = options.get("upload_info")
        upload: dict[str, Any] = given if isinstance(given, dict) else {}
        upload_url = upload.get("uploadUrl")
        try:
            if not isinstance(upload_url, str):
                raise UploadFailed("no upload address")
            await upload_file(upload_url, build_ics(self._agency, appointment, language, now=self._now(),
                                                     meetings=self._services.meetings is not None))
        except UploadFailed:
            await self._say(dc, t(language, "booking.calendar.failed"))
            return await dc.end_dialog()
        file_card = Attachment(
            content_type=FILE_INFO_CARD, name=str(upload.get("name") or calendar_file_name(language)),
            content_url=str(upload.get("contentUrl") or ""),
            content={"uniqueId": upload.get("uniqueId"), "fileType": upload.get("fileType") or "ics"},
        )
        await dc.context.send_activity(MessageFactory.attachment(file_card, text=t(language, "booking.calendar.sent")))
        return await dc.end_dialog()
