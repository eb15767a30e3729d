"""Which language an interview is held in, following the agency's rule.

Belgian agencies hold interviews in the official language of the citizen's place of residence,
not in a language of the citizen's choosing; only in the bilingual Brussels-Capital Region does the
citizen choose between French and Dutch. Municipalities with language facilities keep their
region's official language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.agency import Agency, InterviewLanguageRule

# The nine municipalities of the German-speaking Community (all in the province of Liège):
# Eupen, Kelmis, Lontzen, Raeren, Bütgenbach, Büllingen, Amel, Burg-Reuland and Sankt Vith.
GERMAN_SPEAKING_POSTAL_CODES = frozenset({
    4700, 4701,              # Eupen, Kettenis
    4710, 4711,              # Lontzen, Walhorn
    4720, 4721, 4728,        # Kelmis, Neu-Moresnet, Hergenrath
    4730, 4731,              # Raeren, Eynatten
    4750,                    # Bütgenbach
    4760, 4761,              # Büllingen, Rocherath
    4770, 4771,              # Amel, Heppenbach
    4780, 4782, 4783, 4784,  # Sankt Vith, Schönberg, Lommersweiler, Crombach
    4790, 4791,              # Burg-Reuland, Thommen
})

# (first, last, languages) for each block of Belgian postal codes, by province or region.
_BELGIAN_RANGES: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (1000, 1299, ("fr", "nl")),  # Brussels-Capital Region
    (1300, 1499, ("fr",)),       # Walloon Brabant
    (1500, 1999, ("nl",)),       # Flemish Brabant
    (2000, 2999, ("nl",)),       # Antwerp
    (3000, 3499, ("nl",)),       # Flemish Brabant
    (3500, 3999, ("nl",)),       # Limburg
    (4000, 4999, ("fr",)),       # Liège (German-speaking municipalities handled first)
    (5000, 5999, ("fr",)),       # Namur
    (6000, 6599, ("fr",)),       # Hainaut
    (6600, 6999, ("fr",)),       # Luxembourg
    (7000, 7999, ("fr",)),       # Hainaut
    (8000, 8999, ("nl",)),       # West Flanders
    (9000, 9999, ("nl",)),       # East Flanders
)


class LanguageReason(StrEnum):
    """Why the interview is held in its language: what the citizen is told when it is not the chat's."""

    # The official language of the municipality where the citizen lives (the Belgian rule).
    RESIDENCE = "residence"
    # The agency holds its interviews in that one language.
    AGENCY = "agency"
    # The citizen chose it among those offered.
    CHOSEN = "chosen"


@dataclass(frozen=True)
class LanguageDecision:
    """The interview language and why, or the languages the citizen must choose from."""

    language: str | None
    choices: tuple[str, ...]
    reason: LanguageReason | None = None

    @property
    def decided(self) -> bool:
        return self.language is not None


def belgian_region_language(postal_code: str) -> tuple[str, ...]:
    """Official language(s) at a Belgian postal code; empty if it is not a Belgian postal code."""
    code = postal_code.strip() if isinstance(postal_code, str) else ""
    if not (len(code) == 4 and code.isascii() and code.isdigit()):
        return ()
    number = int(code)
    if number in GERMAN_SPEAKING_POSTAL_CODES:
        return ("de",)
    for first, last, languages in _BELGIAN_RANGES:
        if first <= number <= last:
            return languages
    return ()


def decide_interview_language(agency: Agency, *, postal_code: str | None,
                              preferred: str | None) -> LanguageDecision:
    """Apply the agency's interview language rule.

    `preferred` is a language the citizen has expressed (e.g. picked on a card); it decides only
    where the rule leaves a choice.
    """
    match agency.interview_language_rule:
        case InterviewLanguageRule.AGENCY_LANGUAGE:
            return LanguageDecision(language=agency.default_language, choices=(), reason=LanguageReason.AGENCY)
        case InterviewLanguageRule.CITIZEN_CHOICE:
            return _among(agency.languages, preferred, LanguageReason.AGENCY)
        case InterviewLanguageRule.BELGIAN_RESIDENCE:
            official = belgian_region_language(postal_code or "")
            offered = [language for language in official if language in agency.languages]
            if offered:
                return _among(offered, preferred, LanguageReason.RESIDENCE)
            # The agency cannot serve the region's language (or the postal code is unknown): the
            # citizen picks one the agency does serve.
            return _among(agency.languages, preferred, LanguageReason.AGENCY)
    raise AssertionError(f"unhandled rule {agency.interview_language_rule}")  # pragma: no cover


def language_reason(agency: Agency, *, postal_code: str | None, interview_language: str) -> LanguageReason | None:
    """Why an interview is held in `interview_language`, for a citizen with this postal code: the rule's
    reason, CHOSEN when the rule left the choice, None when the rule no longer gives that language (the
    citizen has moved since booking)."""
    decision = decide_interview_language(agency, postal_code=postal_code, preferred=None)
    if decision.language == interview_language:
        return decision.reason
    return LanguageReason.CHOSEN if interview_language in decision.choices else None


def lives_in_bilingual_brussels(agency: Agency, postal_code: str | None) -> bool:
    """Whether the rule leaves the citizen a choice because they live in the bilingual Brussels-Capital
    Region (the language card then says that this is why they are asked)."""
    return (agency.interview_language_rule is InterviewLanguageRule.BELGIAN_RESIDENCE
            and len(belgian_region_language(postal_code or "")) > 1)


def _among(options: Sequence[str], preferred: str | None, only_one: LanguageReason) -> LanguageDecision:
    """`only_one`: why, when a single language is left."""
    if preferred in options:
        return LanguageDecision(language=preferred, choices=(), reason=LanguageReason.CHOSEN)
    if len(options) == 1:
        return LanguageDecision(language=options[0], choices=(), reason=only_one)
    return LanguageDecision(language=None, choices=tuple(options))
