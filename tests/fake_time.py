"""A fake monotonic clock whose sleep moves it and is remembered: code that waits (the rate limiter, the
notifier, the connector's retry policy) is checked for how long it waited, without waiting."""

from __future__ import annotations

import asyncio


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
