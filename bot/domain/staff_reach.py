"""Whether a message for the agency's staff can reach anyone: the rule behind what a citizen is told after
"Nobody has joined yet" (alerted, or call us) and behind the start-up warning about counselors the bot
cannot reach.

A message for a counselor goes to their personal chat with the bot; without one, the bot installs itself
for them when it may (Microsoft Graph and the Teams app id are configured); failing that, it goes to the
agency's fallback channel. With none of the three, it reaches nobody, whatever happens later.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.domain.agency import Agency


def staff_reachable(*, has_chat: bool, can_install: bool, has_fallback_channel: bool) -> bool:
    """Whether a message for a staff member can reach someone, from what is known now: a stored chat with
    them, the means to install the bot for them, or the agency's fallback channel."""
    return has_chat or can_install or has_fallback_channel


def unreachable_counselors(agency: Agency, *, with_chat: Collection[str], can_install: bool) -> list[str]:
    """The ids (as in the agency file, in its order) of the counselors no message can reach."""
    return [counselor.id for counselor in agency.counselors
            if not staff_reachable(has_chat=counselor.id in with_chat, can_install=can_install,
                                   has_fallback_channel=agency.fallback_channel is not None)]
