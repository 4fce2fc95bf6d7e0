"""Admission checks at the websocket handshake and a per-connection rate limit.

Starlette checks no websocket Origin, and CORS middleware does not cover websockets: a page on
any site could otherwise open a socket to a ShiftScope on the visitor's machine or network.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from urllib.parse import urlsplit


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Same-origin, or exactly one of `allowed`. No Origin header: not a browser, allowed."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if origin == "null" or parts.scheme not in ("http", "https") or not parts.netloc or not host:
        return False
    # Exact match of host:port against the Host header: look-alikes such as
    # "http://127.0.0.1:8000.evil.example" or "http://evil.example/127.0.0.1:8000" differ here.
    return parts.netloc == host and not parts.path.strip("/") and not parts.query


def token_valid(given: str | None, expected: str | None) -> bool:
    """True when no token is configured, else a constant-time comparison."""
    if not expected:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class RateLimit:
    """A token bucket: `burst` messages at once, then `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
