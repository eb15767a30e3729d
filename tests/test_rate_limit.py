"""The rate limiter keeps proactive messages within every Teams window, without waiting more than needed.

Time is a fake monotonic clock whose sleep moves it: no test waits for real seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rate_limit import CONVERSATION_WINDOWS, JITTER_MARGIN, RateLimiter
from tests.fake_time import FakeTime


def _limiter(time: FakeTime, tenant_per_second: float = 50) -> RateLimiter:
    return RateLimiter(tenant_per_second=tenant_per_second, monotonic=time.monotonic, sleep=time.sleep)


def _within(stamps: list[float], window: float, limit: int) -> bool:
    ordered = sorted(stamps)
    return all(ordered[i + limit] - ordered[i] >= window - 1e-9 for i in range(len(ordered) - limit))


async def test_seven_messages_go_at_once_and_the_eighth_waits_for_the_second_window() -> None:
    time = FakeTime()
    limiter = _limiter(time, tenant_per_second=1000)  # the conversation's windows alone
    stamps = []
    for _ in range(9):
        await limiter.acquire("a:conversation", "tenant")
        stamps.append(time.now - 1000.0)
    assert stamps[:7] == pytest.approx([0.0] * 7, abs=0.01)
    # 7 per second (kept a little longer: the margin for arrivals that bunch up on the way)
    assert stamps[7] == pytest.approx(1.0 + JITTER_MARGIN, abs=0.01)
    # 8 per 2 seconds: the ninth waits for the first to leave that window
    assert stamps[8] == pytest.approx(2.0 + JITTER_MARGIN, abs=0.01)


async def test_a_conversation_keeps_under_every_window_over_an_hour_of_sending() -> None:
    time = FakeTime()
    limiter = _limiter(time)
    stamps = []
    for _ in range(1900):
        await limiter.acquire("a:busy", "tenant")
        stamps.append(time.now)
    for window, limit in CONVERSATION_WINDOWS:
        assert _within(stamps, window, limit), (window, limit)
    # The hourly limit is what holds the 1,801st message back: about an hour after the first.
    assert 3599 <= stamps[1800] - stamps[0] <= 3601


async def test_the_tenant_limit_holds_across_conversations_and_others_are_not_held_by_a_busy_one() -> None:
    time = FakeTime()
    limiter = _limiter(time, tenant_per_second=50)
    stamps = []

    async def send(conversation: str) -> None:
        await limiter.acquire(conversation, "tenant")
        stamps.append(time.now)

    await asyncio.gather(*(send(f"a:{i}") for i in range(200)))
    assert _within(stamps, 1.0, 50)
    # 200 messages at 50/s: four seconds' worth, no more, and paced (never more than 3 in a row at once).
    assert max(stamps) - min(stamps) <= 4.0
    assert max(Counter(stamps).values()) <= 3


async def test_a_message_the_connector_did_not_take_gives_its_place_back() -> None:
    time = FakeTime()
    limiter = _limiter(time, tenant_per_second=1000)
    moments = [await limiter.acquire("a:one", "tenant") for _ in range(7)]
    limiter.refund("a:one", "tenant", moments[-1])  # answered 503: not taken
    await limiter.acquire("a:one", "tenant")
    assert time.now == pytest.approx(1000.0, abs=0.01)  # the seventh place was free again


async def test_a_429_pauses_the_conversation_for_its_retry_after() -> None:
    time = FakeTime()
    limiter = _limiter(time)
    await limiter.acquire("a:one", "tenant")
    limiter.pause("a:one", "tenant", 12.0, whole_tenant=False)
    await limiter.acquire("a:other", "tenant")
    assert time.now == 1000.0  # another conversation is not held
    await limiter.acquire("a:one", "tenant")
    assert time.now == 1012.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), conversations=st.integers(1, 6), messages=st.integers(1, 120))
def test_property_random_bursts_never_break_a_window(seed: int, conversations: int, messages: int) -> None:
    rng = random.Random(seed)
    time = FakeTime()
    limiter = _limiter(time, tenant_per_second=10)
    sent: dict[str, list[float]] = {}
    everything: list[float] = []

    async def scenario() -> None:
        async def send(conversation: str) -> None:
            await time.sleep(rng.choice([0, 0, 0.1, 0.5, 2.0]))
            await limiter.acquire(conversation, "tenant")
            sent.setdefault(conversation, []).append(time.now)
            everything.append(time.now)

        await asyncio.gather(*(send(f"a:{rng.randrange(conversations)}") for _ in range(messages)))

    asyncio.run(scenario())
    assert _within(everything, 1.0, 10)
    for stamps in sent.values():
        for window, limit in CONVERSATION_WINDOWS:
            assert _within(stamps, window, limit)
