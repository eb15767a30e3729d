"""Mailers (bot.services.ports.Mailer): Microsoft Graph sendMail from the agency's mailbox, or .eml files.

Graph: `POST /users/{mailbox}/sendMail` through the bot's Graph client; the app needs Application Mail.Send
on that one mailbox (Exchange RBAC for Applications, see deployment/README.md), never tenant-wide. Log lines
name the status and Graph's error code, never an address or a link.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email.message import EmailMessage
from pathlib import Path

from msgraph.generated.models.attachment import Attachment
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

from bot.integrations.graph_client import GraphClient
from bot.integrations.graph_errors import TRANSIENT_STATUSES, code_of, status_of
from bot.services.ports import MessageRejected, SendFailed

log = logging.getLogger(__name__)


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    return body.get_content() if body is not None else ""


def graph_message(message: EmailMessage) -> Message:
    """The Graph message of an e-mail: its HTML part (Exchange derives the plain text), its attachments."""
    attachments: list[Attachment] = []
    for part in message.iter_attachments():
        content = part.get_payload(decode=True)
        attachments.append(FileAttachment(odata_type="#microsoft.graph.fileAttachment", name=part.get_filename(),
                                          content_type=part.get_content_type(),
                                          content_bytes=content if isinstance(content, bytes) else b""))
    return Message(
        subject=str(message["Subject"]),
        body=ItemBody(content_type=BodyType.Html, content=_part(message, "html") or _part(message, "plain")),
        to_recipients=[Recipient(email_address=EmailAddress(address=address.strip()))
                       for address in str(message["To"]).split(",")],
        attachments=attachments,
    )


class GraphMailer:
    def __init__(self, graph: GraphClient, mailbox: str) -> None:
        self._graph = graph
        self._mailbox = mailbox

    async def send(self, message: EmailMessage, *, key: str) -> None:
        body = SendMailPostRequestBody(message=graph_message(message), save_to_sent_items=True)
        try:
            await self._graph.sdk.users.by_user_id(self._mailbox).send_mail.post(body)
        except Exception as error:  # Graph's, httpx's and the credential's errors all mean "not sent"
            status = status_of(error)
            log.warning("mail: sendMail failed: HTTP %s %s", status or type(error).__name__, code_of(error))
            if status is not None and status not in TRANSIENT_STATUSES:
                raise MessageRejected(f"sendMail HTTP {status} {code_of(error)}") from None
            raise SendFailed(f"sendMail {status or type(error).__name__}") from None


class FolderMailer:
    """Local mode: each e-mail is a .eml file in `folder`, named by its key (sending it twice rewrites it)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def path_of(self, key: str) -> Path:
        return self._folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".eml")

    async def send(self, message: EmailMessage, *, key: str) -> None:
        await asyncio.to_thread(self._write, self.path_of(key), message.as_bytes())

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)
