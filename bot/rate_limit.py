"""Keeps the bot's own messages under Teams' limits, so that the connector never has to refuse them.

Microsoft's limits for one bot (Teams rate-limit page): per conversation 7 messages per second,
8 per 2 seconds, 60 per 30 seconds and 1,800 per hour; per app and tenant about 50 requests per
second. Each limit is a sliding window: a message may go when, in every window that concerns it,
fewer than the limit went out during the last window length. A 429 from the connector pauses the
conversation (or the tenant) for its Retry-After.

The windows hold within one process; with several workers sending for one tenant, give each its
share (`GUICHET_TENANT_MESSAGES_PER_SECOND`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# (window seconds, messages allowed in it)
CONVERSATION_WINDOWS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
TENANT_PER_SECOND = 50
# Messages leave here at one moment and reach Teams a little later, not all equally late (a new
# connection, a busy event loop): each conversation window is kept this much longer than Teams' so that
# arrivals never bunch into one. The tenant's rate keeps its slack in its count instead (48 of 50 by
# default, see bot.settings), which costs less throughput than lengthening its one-second window.
JITTER_MARGIN = 0.25
PACE_BURST = 3
# Idle conversations are forgotten after the longest window.
_FORGET_AFTER = 3600.0


@dataclass
class _Windows:
    limits: tuple[tuple[float, int], ...]
    # The tenant's pace: one message per `spacing` on average, at most PACE_BURST in a row (a "generic cell
    # rate" schedule: a late wake-up may catch up a little, but messages never bunch at a second's start).
    spacing: float = 0.0
    sent: deque[float] = field(default_factory=deque)
    scheduled: float = 0.0
    paused_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def wait(self, now: float) -> float:
        """Seconds until one more message is allowed (0: now)."""
        longest = self.limits[-1][0]
        while self.sent and self.sent[0] <= now - longest:
            self.sent.popleft()
        wait = max(0.0, self.paused_until - now)
        if self.spacing:
            wait = max(wait, self.scheduled - (PACE_BURST - 1) * self.spacing - now)
        count = len(self.sent)
        for window, limit in self.limits:
            if count < limit:
                continue
            # The message `limit` places back must have left the window.
            oldest_relevant = self.sent[count - limit]
            wait = max(wait, oldest_relevant + window - now)
        return wait


class RateLimiter:
    """`await limiter.acquire(conversation, tenant)` before each proactive message."""

    def __init__(
        self,
        *,
        tenant_per_second: float = TENANT_PER_SECOND,
        conversation_windows: tuple[tuple[float, int], ...] = CONVERSATION_WINDOWS,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._conversation_windows = tuple(sorted((window + JITTER_MARGIN, limit)
                                                  for window, limit in conversation_windows))
        # A whole number of messages per second: fractions become a longer window.
        per_second = max(1, int(tenant_per_second)) if tenant_per_second >= 1 else 1
        window = 1.0 if tenant_per_second >= 1 else 1.0 / tenant_per_second
        self._tenant_windows = ((window, per_second),)
        # Evenly spaced, messages that arrive a little late or early never crowd into one second.
        self._tenant_spacing = window / per_second
        self._now = monotonic
        self._sleep = sleep
        self._conversations: dict[str, _Windows] = {}
        self._tenants: dict[str, _Windows] = {}
        self._last_sweep = 0.0

    async def acquire(self, conversation_id: str, tenant_id: str | None) -> float:
        """Wait until a message to this conversation is within every limit, and count it; the moment it was
        counted at (for `refund`)."""
        conversation = self._windows(self._conversations, conversation_id, self._conversation_windows)
        tenant = self._windows(self._tenants, tenant_id or "", self._tenant_windows, self._tenant_spacing)
        # The conversation first, on its own lock: a busy conversation must not hold up the tenant.
        async with conversation.lock:
            await self._until_free(conversation)
            async with tenant.lock:
                # Only holders of the conversation's lock add to its windows: they are still free.
                await self._until_free(tenant)
                now = self._now()
                conversation.sent.append(now)
                tenant.sent.append(now)
                tenant.scheduled = max(tenant.scheduled, now) + tenant.spacing
        self._sweep(now)
        return now

    def refund(self, conversation_id: str, tenant_id: str | None, counted_at: float) -> None:
        """The connector refused the message without taking it (a 503, a 429): it does not count."""
        for windows in (self._conversations.get(conversation_id), self._tenants.get(tenant_id or "")):
            if windows is not None:
                with contextlib.suppress(ValueError):
                    windows.sent.remove(counted_at)
                    windows.scheduled -= windows.spacing  # its place in the pace is free again

    def pause(self, conversation_id: str, tenant_id: str | None, seconds: float, *, whole_tenant: bool) -> None:
        """The connector said 429: nothing to this conversation (or tenant) for `seconds`."""
        until = self._now() + max(0.0, seconds)
        target = self._windows(self._tenants, tenant_id or "", self._tenant_windows, self._tenant_spacing) \
            if whole_tenant \
            else self._windows(self._conversations, conversation_id, self._conversation_windows)
        target.paused_until = max(target.paused_until, until)

    async def _until_free(self, windows: _Windows) -> None:
        while (wait := windows.wait(self._now())) > 0:
            await self._sleep(wait)

    @staticmethod
    def _windows(table: dict[str, _Windows], key: str, limits: tuple[tuple[float, int], ...],
                 spacing: float = 0.0) -> _Windows:
        windows = table.get(key)
        if windows is None:
            windows = table[key] = _Windows(limits, spacing)
        return windows

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for key in [key for key, w in self._conversations.items()
                    if not w.lock.locked() and (not w.sent or w.sent[-1] < now - _FORGET_AFTER)]:
            del self._conversations[key]
