"""Admission checks at the websocket handshake, a per-connection rate limit, and the security
headers of every HTTP response.

Starlette checks no websocket Origin, and CORS middleware does not cover websockets: a page on
any site could otherwise open a socket to a ShiftScope on the visitor's machine or network.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware, parse_host_header
from starlette.types import ASGIApp, Receive, Scope, Send


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
        """Spend one token if there is one."""
        if self.has_token():
            self._tokens -= 1
            return True
        return False

    def has_token(self) -> bool:
        """Whether a token is left now (nothing is spent)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return self._tokens >= 1


class FailureThrottle:
    """Per client address, a token bucket of allowed failures (wrong access tokens): once it is
    empty the address is refused without its token being checked, so guessing runs at `rate`.
    At most `max_addresses` buckets are kept (the oldest go first): memory stays bounded."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.rate = burst, per_minute / 60.0
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: dict[str, RateLimit] = {}

    def blocked(self, address: str) -> bool:
        """True while `address` has no failure left (checking refills its bucket)."""
        bucket = self._buckets.get(address)
        return bucket is not None and not bucket.has_token()

    def failed(self, address: str) -> None:
        bucket = self._buckets.pop(address, None) or RateLimit(self.rate, self.burst, self._clock)
        bucket.allow()  # one failure spent
        self._buckets[address] = bucket  # re-inserted last: the dict keeps the oldest first
        while len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]


# The page loads everything from this server: a strict policy fits. Inline style attributes (the
# legend swatches) and the <style> elements Plotly adds need 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


class SecurityHeaders:
    """Pure ASGI middleware: every HTTP response carries SECURITY_HEADERS (no framing by other
    sites, no referrer leaving the page, no content sniffing, a strict content policy)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's Host check (DNS-rebinding defence; it covers websockets too), which may also
    answer any IP-address Host: a rebinding page reaches us under the attacker's *name*, so a
    Host that is an address was typed by the user (a LAN address, a container's port)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str], allow_ip_hosts: bool = False) -> None:
        super().__init__(app, allowed_hosts=list(allowed_hosts), www_redirect=False)
        self.allow_ip_hosts = allow_ip_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_ip_hosts and scope["type"] in ("http", "websocket"):
            parsed = parse_host_header(Headers(scope=scope).get("host"))
            if parsed is not None and _is_ip_address(parsed.host):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True
