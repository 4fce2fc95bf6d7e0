"""Event-loop lag: how late the loop wakes a sleeper. Training off the loop keeps it small."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque


class LoopLagMonitor:
    """Samples the loop's wake-up delay every `interval` seconds, keeping the last `keep`."""

    def __init__(self, interval: float = 0.05, keep: int = 1200) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)  # seconds late, newest last
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.perf_counter() - before - self.interval))

    def summary(self) -> dict[str, float | None]:
        """p50, p99 and max lag in milliseconds over the kept window."""
        if not self.samples:
            return {"p50_ms": None, "p99_ms": None, "max_ms": None}
        ordered = sorted(self.samples)

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

        return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 3)}
