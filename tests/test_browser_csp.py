"""The page under its own Content-Security-Policy (app/security.py), in real headless Chromium:
it loads, connects over the websocket, trains and draws with no policy violation.

Playwright's string probes (wait_for_function) evaluate through eval in the page, which the
policy forbids; this test polls with page.evaluate (the DevTools protocol, outside the policy)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from browser_fixtures import Lab, open_lab, query

from tests.test_web import SMALL

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def strict_lab(chromium: object, lab_server: str) -> Iterator[Lab]:
    with open_lab(chromium, lab_server, bypass_csp=False) as lab:
        lab.page.add_init_script(RECORD_VIOLATIONS)  # type: ignore[attr-defined]
        yield lab


def _poll(lab: Lab, expression: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = lab.page.evaluate(expression)  # type: ignore[attr-defined]
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{expression} did not hold within {timeout} s")


def test_the_page_runs_under_its_content_security_policy(strict_lab: Lab) -> None:
    lab = strict_lab
    response = lab.page.goto(f"{lab.base_url}/?{query({**SMALL, 'steps': 40, 'max_steps_per_s': 0})}")  # type: ignore[attr-defined]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    _poll(lab, "Boolean(window.shiftscope && window.shiftscope.connected)")
    lab.page.click("#btn-play")  # type: ignore[attr-defined]
    _poll(lab, "window.shiftscope.runFrames >= 3 && window.shiftscope.drawn('chart-ridge').length > 0")
    _poll(lab, "window.shiftscope.state === 'done'")
    assert lab.page.evaluate("window.__violations") == []  # type: ignore[attr-defined]
    assert lab.errors == []
