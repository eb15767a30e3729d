"""The agency's Web Chat page asks the bot for a Direct Line token: fresh user ids, the secret kept on the
server, CORS, a rate limit, and the two proofs of identity (manage links, the agency's sign-in)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bot.app import SERVICES, WIRING
from bot.domain.agency import Agency
from bot.services.web_identity import WebIdentityService
from bot.settings import SettingsError, load_settings
from tests.web_support import AUDIENCE, CHROMIUM, ISSUER, ORIGIN, Site, needs_browser, open_site, serve_page


@pytest.fixture
async def site(tmp_path: Path, agency_path: Path, agency: Agency) -> AsyncIterator[Site]:
    async with open_site(tmp_path, agency_path, agency, web_tokens_per_minute=0.1) as opened:
        yield opened


async def test_a_page_gets_a_token_for_a_fresh_user_id_and_never_the_secret(site: Site) -> None:
    status, headers, body = await site.ask()
    again = await site.ask()
    assert status == 200 and body["token"].startswith("dltoken.") and body["proven"] is False
    assert body["user_id"].startswith("dl_") and len(body["user_id"]) > 30
    assert again[2]["user_id"] != body["user_id"]
    # The bot asked Direct Line with the secret, for the user id it made; the page never sees the secret.
    authorization, request = site.directline.requests[0]
    assert authorization == f"Bearer {site.directline.secret}"
    assert request == {"user": {"id": body["user_id"]}}
    assert site.directline.secret not in str(body) and site.directline.secret not in str(headers)
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert body["conversation_id"] and await site.who(body) is None


async def test_only_the_agencys_origins_get_tokens(site: Site) -> None:
    status, _headers, body = await site.ask(origin="https://evil.example")
    assert (status, body["error"]) == (403, "origin_not_allowed")
    async with site.http.options(f"{site.bot.url}/api/directline/token",
                                 headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    async with site.http.options(f"{site.bot.url}/api/directline/token",
                                 headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 403
    assert site.directline.requests == []


async def test_one_address_asking_too_often_is_told_to_wait(site: Site) -> None:
    statuses = [(await site.ask())[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    status, headers, body = await site.ask()
    assert status == 429 and int(headers["Retry-After"]) > 0 and body["error"] == "too_many_requests"
    assert len(site.directline.requests) == 5


async def test_behind_the_ingress_each_visitor_has_their_own_limit(tmp_path: Path, agency_path: Path,
                                                                   agency: Agency) -> None:
    """Behind Azure Container Apps' ingress every request comes from the proxy: with one forwarded hop the
    limit is per visitor (the address the ingress appended), and what a client writes before it changes nothing."""
    async with open_site(tmp_path, agency_path, agency, web_tokens_per_minute=0.1, forwarded_hops=1) as site:
        async def ask(forwarded: str) -> int:
            async with site.http.post(f"{site.bot.url}/api/directline/token", json={},
                                      headers={"Origin": ORIGIN, "X-Forwarded-For": forwarded}) as response:
                return response.status

        assert [await ask("203.0.113.7") for _ in range(6)] == [200] * 5 + [429]
        # Another visitor is not held back by the first, however many asked through the same proxy.
        assert await ask("198.51.100.23") == 200
        # The first visitor claiming to be someone else: the ingress still appends their real address.
        assert await ask("192.0.2.99, 203.0.113.7") == 429


async def test_bad_bodies_and_direct_line_down_get_friendly_json(site: Site) -> None:
    async with site.http.post(f"{site.bot.url}/api/directline/token", data=b"{nope",
                              headers={"Origin": ORIGIN}) as response:
        assert response.status == 400 and (await response.json())["error"] == "bad_request"
    site.directline.down = True
    status, headers, body = await site.ask()
    assert (status, body["error"]) == (503, "unavailable") and headers["Retry-After"] == "5"


async def test_a_manage_link_binds_the_new_conversation_to_its_citizen(site: Site,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    citizen_id = await site.citizen()
    link = await site.identities.manage_link_token(citizen_id)
    status, _headers, body = await site.ask({"manage_token": link})
    assert status == 200 and body["proven"] is True
    assert await site.who(body) == citizen_id
    # A second visit with the same link is another conversation of the same citizen.
    second = (await site.ask({"manage_token": link}))[2]
    assert await site.who(second) == citizen_id
    assert link not in caplog.text and body["token"] not in caplog.text


async def test_tampered_expired_and_revoked_links_are_refused(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    citizen_id = await site.citizen()
    link = await site.identities.manage_link_token(citizen_id)
    payload, signature = link.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
    refused = {}
    for name, token in (("tampered", tampered), ("garbage", "x" * 40), ("number", 42),
                        ("other secret", WebIdentityService(site.bot.app[SERVICES], link_secret="other-secret-xx")
                         .manage_link_token_in)):
        if callable(token):
            async with site.bot.app[SERVICES].uow.read() as uow:
                token = await token(uow, citizen_id)
        status, _headers, body = await site.ask({"manage_token": token})
        refused[name] = (status, body["reason"])
    assert refused == {"tampered": (401, "bad_signature"), "garbage": (401, "malformed"),
                       "number": (401, "malformed"), "other secret": (401, "bad_signature")}

    site.clock.advance(timedelta(days=31))  # the example agency's links last 30 days
    status, _headers, body = await site.ask({"manage_token": link})
    assert (status, body["error"], body["reason"]) == (401, "proof_refused", "expired")
    assert link not in caplog.text and tampered not in caplog.text


async def test_a_revoked_link_is_refused_and_its_conversations_unbound(site: Site,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    citizen_id = await site.citizen()
    fresh = await site.identities.manage_link_token(citizen_id)
    bound = (await site.ask({"manage_token": fresh}))[2]
    async with site.bot.app[SERVICES].uow() as uow:
        await uow.web_identities.revoke(citizen_id)
        await uow.commit()
    assert (await site.ask({"manage_token": fresh}))[2]["reason"] == "revoked"
    assert await site.who(bound) is None, "revoking unbinds the conversations too"
    assert fresh not in caplog.text


async def test_erasure_revokes_every_link_and_conversation(site: Site) -> None:
    citizen_id = await site.citizen()
    link = await site.identities.manage_link_token(citizen_id)
    bound = (await site.ask({"manage_token": link}))[2]
    await site.bot.app[WIRING].use_cases.privacy.erase(citizen_id, language="fr")
    assert await site.who(bound) is None
    status, _headers, body = await site.ask({"manage_token": link})
    assert status == 401 and body["reason"] in ("revoked", "unknown_citizen")
    async with site.bot.app[SERVICES].uow.read() as uow:
        assert await uow.web_identities.link_epoch(citizen_id) == 1


async def test_the_agencys_sign_in_makes_the_same_citizen_on_every_visit(site: Site,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = (await site.ask({"assertion": site.assertion(), "locale": "nl-BE"}, origin=None))
    second = (await site.ask({"assertion": site.assertion()}, origin=None))
    other = (await site.ask({"assertion": site.assertion("someone-else")}, origin=None))
    assert first[0] == second[0] == other[0] == 200 and first[2]["proven"] is True
    citizen = await site.who(first[2])
    assert citizen is not None and await site.who(second[2]) == citizen
    assert await site.who(other[2]) not in (None, citizen)
    assert "eid-subject-42" not in caplog.text and site.assertion() not in caplog.text


async def test_bad_assertions_are_refused_with_a_reason(site: Site) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    good = site.assertion()
    cases = {
        "wrong key": site.assertion(key=stranger),
        "wrong issuer": site.assertion(iss="https://elsewhere.example"),
        "wrong audience": site.assertion(aud="another-bot"),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "unsigned": jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": 1, "exp": 2 ** 40}, None, "none"),
    }
    answers = {name: (await site.ask({"assertion": token}, origin=None))[:3:2] for name, token in cases.items()}
    assert {name: (status, body["reason"]) for name, (status, body) in answers.items()} == {
        name: (401, "bad_assertion") for name in cases}
    # Refused assertions count against the caller's address: a sixth in a row waits.
    status, _headers, body = await site.ask({"assertion": cases["wrong key"]}, origin=None)
    assert (status, body["error"]) == (429, "too_many_requests")
    assert site.directline.requests == [], "no token is made for a refused proof"


async def test_assertions_without_subject_too_long_lived_or_expired_are_refused(site: Site) -> None:
    good = site.assertion()
    cases = {
        "no subject": jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "iat": 1, "exp": 2}, site.signing_key, "ES256"),
        "too long a life": site.assertion(lifetime=86400),
    }
    answers = {name: (await site.ask({"assertion": token}, origin=None))[:3:2] for name, token in cases.items()}
    assert {name: (status, body["reason"]) for name, (status, body) in answers.items()} == {
        name: (401, "bad_assertion") for name in cases}
    site.clock.advance(timedelta(minutes=3))
    status, _headers, body = await site.ask({"assertion": good}, origin=None)
    assert (status, body["reason"]) == (401, "expired")
    # Valid assertions come from the agency's server, all from one address: they are not held back.
    statuses = [(await site.ask({"assertion": site.assertion(f"person-{n}")}, origin=None))[0] for n in range(8)]
    assert statuses == [200] * 8


def test_settings_refuse_a_short_link_secret_and_origins_with_a_path() -> None:
    with pytest.raises(SettingsError, match="manage_link_secret"):
        load_settings(manage_link_secret="short")
    with pytest.raises(SettingsError, match="web_origins"):
        load_settings(web_origins=["https://www.agency.example/chat"])


async def test_a_page_cannot_speak_as_another_user_id_through_direct_line(site: Site) -> None:
    """With enhanced authentication Direct Line puts the token's user id on every activity: a page that sends
    another citizen's `dl_` id is still the visitor the token was made for (the stand-in does as Azure does)."""
    answer = (await site.ask())[2]
    auth = {"Authorization": f"Bearer {answer['token']}"}
    async with site.http.post(f"{site.directline.url}/v3/directline/conversations", headers=auth) as response:
        conversation_id = (await response.json())["conversationId"]
    message = {"type": "message", "text": "aide", "locale": "fr-BE", "from": {"id": "dl_someone-else"}}
    async with site.http.post(f"{site.directline.url}/v3/directline/conversations/{conversation_id}/activities",
                              json=message, headers=auth) as response:
        assert response.status == 200
    assert [activity["from"]["id"] for activity in site.directline.to_bot] == [answer["user_id"]]
    async with site.http.get(f"{site.directline.url}/v3/directline/conversations/{conversation_id}/activities",
                             headers=auth) as response:
        activities = (await response.json())["activities"]
    replies = [activity for activity in activities if activity["from"]["id"] != answer["user_id"]]
    assert replies, "the bot answered in the Direct Line conversation"
    assert await site.who(answer) is None


async def test_a_proof_holds_only_in_the_conversation_its_token_was_made_for(site: Site) -> None:
    """Direct Line makes a token for one conversation (the one `tokens/generate` names) and refuses it in any
    other: the binding names that conversation, and the same user id elsewhere proves nothing."""
    citizen_id = await site.citizen()
    bound = (await site.ask({"manage_token": await site.identities.manage_link_token(citizen_id)}))[2]
    other = (await site.ask())[2]
    auth = {"Authorization": f"Bearer {bound['token']}"}
    async with site.http.post(f"{site.directline.url}/v3/directline/conversations", headers=auth) as response:
        assert (await response.json())["conversationId"] == bound["conversation_id"]
    message = {"type": "message", "text": "aide", "locale": "fr-BE"}
    async with site.http.post(f"{site.directline.url}/v3/directline/conversations/{other['conversation_id']}"
                              "/activities", json=message, headers=auth) as response:
        assert response.status == 403, "a token is refused in another conversation"
    assert await site.who(bound) == citizen_id
    assert await site.identities.who_is(bound["user_id"], other["conversation_id"]) is None
    assert await site.identities.who_is(bound["user_id"], "made-up-conversation") is None


@needs_browser
async def test_the_example_page_opened_from_a_manage_link_binds_its_conversation(site: Site) -> None:
    """Headless Chromium opens deployment/webchat from an e-mail's manage link: the page takes the token out of
    the address, Web Chat talks to the bot through Direct Line as the fresh user id bound to that citizen."""
    async_playwright = pytest.importorskip("playwright.async_api").async_playwright
    citizen_id = await site.citizen()
    link = await site.identities.manage_link_token(citizen_id)
    async with serve_page(site) as page_url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = await browser.new_page(locale="fr-BE")
        await page.goto(f"{page_url}#manage={link}")
        box = page.locator("input[data-id=webchat-sendbox-input], textarea[data-id=webchat-sendbox-input]")
        await box.first.fill("aide")
        await box.first.press("Enter")
        await page.locator(".webchat__bubble:not(.webchat__bubble--from-user)").first.wait_for()
        address = page.url
        manage_note_shown = await page.locator("#manage-note").is_visible()
        await browser.close()
    assert "manage=" not in address and manage_note_shown
    users = {(activity["from"]["id"], activity["conversation"]["id"]) for activity in site.directline.to_bot}
    assert len(users) == 1
    [(user_id, conversation_id)] = users
    assert await site.identities.who_is(user_id, conversation_id) == citizen_id
    received = [(activity["type"], activity.get("name") or activity.get("text")) for activity in site.directline.to_bot]
    assert ("event", "webchat/join") in received and ("message", "aide") in received


async def test_after_erasure_the_same_sign_in_starts_afresh(site: Site) -> None:
    first = (await site.ask({"assertion": site.assertion()}, origin=None))[2]
    erased = await site.who(first)
    assert erased is not None
    await site.bot.app[WIRING].use_cases.privacy.erase(erased, language="fr")
    assert await site.who(first) is None
    again = (await site.ask({"assertion": site.assertion()}, origin=None))[2]
    assert await site.who(again) not in (None, erased)
