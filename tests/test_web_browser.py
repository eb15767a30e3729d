"""A person on the agency's website, in headless Chromium, books a video appointment in Web Chat by clicking
the cards, gets the confirmation e-mail, opens its "manage my appointment" link and cancels by clicking.

Everything but the network boundary is real: the example page of deployment/webchat served as the agency's
site, Web Chat 4.18.1 talking through the Direct Line stand-in, the bot's HTTP app with its in-process job
runner (which writes the e-mail as an .eml file), SQLite. Screenshots of every step land in
$GUICHET_BROWSER_SHOTS (default: the test's tmp folder) for a person to look at.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import UOW
from bot.domain.agency import Agency
from bot.domain.appointment import Appointment
from tests.web_support import CHROMIUM, Site, WebChat, needs_browser, open_site, serve_page

# A valid Belgian national register number for someone born on 30 July 1985 (see test_booking_flow).
DETAILS = {
    "Prénom": "Camille", "Nom": "Dupont", "Date de naissance": "30/07/1985",
    "Numéro de registre national": "85073003328", "Adresse e-mail": "camille.dupont@example.org",
    "Numéro de téléphone": "0470 12 34 56", "Code postal": "4000",
}


async def _appointments(site: Site) -> list[Appointment]:
    async with site.bot.app[UOW]() as uow:
        return list((await uow.session.execute(select(Appointment))).scalars())


def _emails(outbox: Path) -> list[EmailMessage]:
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(outbox.glob("*.eml"))]


async def _written_email(outbox: Path) -> EmailMessage:
    """The one .eml the confirmation job wrote (the in-process runner is woken by the booking)."""
    for _ in range(150):
        if written := await asyncio.to_thread(_emails, outbox):
            [message] = written
            return message
        await asyncio.sleep(0.1)
    raise AssertionError("no confirmation e-mail was written within 15 s")


@needs_browser
async def test_a_visitor_books_by_clicking_and_cancels_from_the_emails_manage_link(
        tmp_path: Path, agency_path: Path, agency: Agency) -> None:
    async_playwright = pytest.importorskip("playwright.async_api").async_playwright
    outbox = tmp_path / "outbox"
    shots = Path(os.environ.get("GUICHET_BROWSER_SHOTS") or tmp_path / "screenshots")
    # The bot's clock: Monday 7 December 2026, 09:00 UTC; the in-process runner sends the e-mail.
    async with open_site(tmp_path, agency_path, agency, mail="folder", mail_folder=outbox,
                         jobs="inline", job_poll_seconds=0.5) as site, \
            serve_page(site) as page_url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            size = {"width": 900, "height": 1300}
            chat = WebChat(await browser.new_page(locale="fr-BE", viewport=size), shots, "book-")
            await chat.page.goto(page_url)
            await chat.say("prendre rendez-vous", expect="Acceptez-vous ces conditions")
            # The page speaks the chat's language and offers no upload the bot would not take.
            assert await chat.page.evaluate("document.documentElement.lang") == "fr-BE"
            assert await chat.page.locator(".webchat__upload-button").count() == 0
            await chat.click("J'accepte", expect="politique de confidentialité et l’acceptez-vous")
            await chat.click("J'accepte", expect="Comment souhaitez-vous nous rencontrer")
            await chat.click("Par vidéo", expect="Quel est l’objet de votre rendez-vous")
            await chat.choose(re.compile("^Chômage temporaire"))
            await chat.click("Continuer", expect="Quel jour vous convient")
            await chat.click("mar. 8 déc.", expect="Heures libres le mardi 8 décembre 2026")
            await chat.select("Heure de début", "10:00")
            await chat.click("Choisir cette heure", expect="Vos coordonnées")
            await chat.fill(DETAILS)
            await chat.click("Continuer", expect="Vérifiez votre rendez-vous")
            await chat.click("Confirmer le rendez-vous", expect="Mes rendez-vous")
            confirmation = await chat.bubbles("Mes rendez-vous").last.inner_text()
            assert "mardi 8 décembre 2026" in confirmation and "10:00" in confirmation
            assert "téléchargez le fichier de calendrier" in confirmation, "no Teams file consent wording on the web"
            # The calendar file is a download link in Web Chat (Teams asks with a file consent card instead).
            async with chat.page.expect_download() as downloading:
                await chat.page.locator("a", has_text="rendez-vous.ics").last.click()
            calendar = await asyncio.to_thread(Path(await (await downloading.value).path()).read_text, "utf-8")
            assert "DTSTART:20261208T090000Z" in calendar
            [booked] = await _appointments(site)
            assert (booked.status, booked.mode, booked.subject_id) == ("booked", "video", "temporary-unemployment")

            # The confirmation e-mail, written by the job runner, holds the link to the agency's page.
            message = await _written_email(outbox)
            assert message["To"] == "camille.dupont@example.org"
            plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            link = next(line.strip() for line in plain.splitlines() if line.strip().startswith(page_url + "#manage="))

            # Another day, another tab: the e-mail's link opens the page, which trades the link for a proven
            # conversation of the same citizen.
            manage = WebChat(await browser.new_page(locale="fr-BE", viewport=size), shots, "manage-")
            await manage.page.goto(link)
            await manage.page.locator("#manage-note").wait_for()
            assert "manage=" not in manage.page.url, "the link's token leaves the address bar at once"
            await manage.click_page("Mes rendez-vous", expect="Vos prochains rendez-vous")
            listed = await manage.bubbles("Vos prochains rendez-vous").last.inner_text()
            assert "mardi 8 décembre 2026 à 10:00" in listed
            await manage.click("Annuler", expect="Annuler ce rendez-vous ?")
            await manage.fill({"Motif": "J'ai trouvé un emploi"})
            await manage.click("Oui, l'annuler", expect="Votre rendez-vous est annulé")
            [cancelled] = await _appointments(site)
            assert (cancelled.id, cancelled.status) == (booked.id, "cancelled")
            assert site.directline.refused_changes == 0, "nothing tried to update or delete a message on the web"
        finally:
            await browser.close()
