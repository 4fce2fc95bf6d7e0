"""Accessibility in real headless Chromium, checked by axe-core (Deque, MPL-2.0; npm axe-core
4.14.1 kept as a test asset in tests/assets/axe-core): no serious or critical violation on the
lab page, a room's viewer page, presentation mode and a lesson; every control has a name and a
visible focus ring (tests/test_browser.py::test_focus_ring_and_labels)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_fixtures import Lab, open_lab

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "assets" / "axe-core" / "axe.min.js"


@pytest.fixture
def student(chromium: object, lab_server: str) -> Iterator[Lab]:
    with open_lab(chromium, lab_server) as lab:
        yield lab


def _violations(lab: Lab) -> list[str]:
    """Serious and critical axe violations on the page as it is now: 'rule: target' strings."""
    if not lab.page.evaluate("typeof window.axe !== 'undefined'"):
        lab.page.add_script_tag(path=str(AXE))
    found = lab.page.evaluate(
        """async () => {
             const result = await axe.run(document, { resultTypes: ["violations"] });
             return result.violations
               .filter((v) => v.impact === "serious" || v.impact === "critical")
               .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(" ")}`));
           }"""
    )
    return list(found)


def test_the_lab_page_has_no_serious_violations(lab: Lab) -> None:
    lab.open()
    assert _violations(lab) == []
    lab.page.click("#btn-play")
    lab.wait("s.lastStep >= 10")  # with charts drawn
    assert _violations(lab) == []
    lab.page.select_option("#lesson", "why-normalize")
    assert _violations(lab) == []


def test_presentation_mode_and_a_rooms_viewer_page_have_no_serious_violations(lab: Lab, student: Lab) -> None:
    lab.open()
    lab.page.click("#btn-share")
    lab.wait("s.room.role === 'teacher'")
    assert _violations(lab) == []  # the room bar, its link and QR code
    code = str(lab.value("s.room.code"))
    student.page.goto(f"{student.base_url}/r/{code}")
    student.page.wait_for_function("window.shiftscope && window.shiftscope.room.role === 'viewer'")
    assert _violations(student) == []
    lab.page.keyboard.press("f")
    lab.wait("document.getElementById('app').hasAttribute('data-present')")
    assert _violations(lab) == []
    lab.page.click("#btn-room-end")
