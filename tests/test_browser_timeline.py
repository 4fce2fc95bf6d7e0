"""The timeline (static/js/timeline.js) in real headless Chromium against the real server: after a
run, every chart can be taken back to any recorded step and forward again, by the slider and the
keys ([, ], Home, End), and replayed; a live run goes on being recorded while one looks back.
"""

from __future__ import annotations

import pytest
from browser_fixtures import Lab
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DONE = "depth=3&width=16&steps=200&emit_every=10&max_steps_per_s=0&bins=16&dataset=moons"
LONG = "depth=3&width=16&steps=100000&emit_every=5&max_steps_per_s=200&bins=16&dataset=moons"


def _recorded_steps(lab: Lab) -> list[int]:
    return lab.page.evaluate(
        "() => [...Array(Number(document.querySelector('#timeline-slider').max) + 1).keys()]"
    )


def _shown_step(lab: Lab) -> int:
    lab.page.wait_for_function("window.shiftscope.lastStep !== null")
    return int(lab.value("s.lastStep"))  # the step the ridge plot last drew


def test_after_a_run_the_charts_go_back_to_any_recorded_step(lab: Lab) -> None:
    lab.open(DONE)
    expect(lab.page.locator("#timeline")).to_be_hidden()  # nothing recorded yet
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done' && s.lastStep === 200")
    expect(lab.page.locator("#timeline")).to_be_visible()
    expect(lab.page.locator("#timeline-step")).to_have_text("step 200 · live")
    lab.page.locator("#main").focus()
    lab.page.keyboard.press("Home")
    lab.wait("s.lastStep === 0")  # the untrained network, on every chart
    expect(lab.page.locator("#timeline-step")).to_have_text("step 0")
    expect(lab.page.locator("#btn-live")).to_be_enabled()
    loss_points = lab.page.evaluate(
        "() => window.shiftscope.drawn('chart-loss').map((t) => (t.y || []).length)"
    )
    assert max(loss_points) <= 1  # the loss chart too shows the run as it was at step 0
    lab.page.keyboard.press("]")
    lab.wait("s.lastStep > 0")
    second = _shown_step(lab)
    lab.page.keyboard.press("[")
    lab.wait("s.lastStep === 0")
    # The slider: the middle of the recording.
    count = len(_recorded_steps(lab))
    lab.page.evaluate(
        "(i) => { const s = document.querySelector('#timeline-slider'); s.value = String(i);"
        " s.dispatchEvent(new Event('input', { bubbles: true })); }",
        count // 2,
    )
    lab.wait("s.lastStep > 0 && s.lastStep < 200")
    middle = _shown_step(lab)
    assert second <= middle < 200
    lab.page.keyboard.press("End")  # back to live: the run's end
    lab.wait("s.lastStep === 200")
    expect(lab.page.locator("#timeline-step")).to_have_text("step 200 · live")
    assert lab.errors == []


def test_replay_plays_the_recording_and_a_live_run_keeps_recording(lab: Lab) -> None:
    lab.open(LONG)
    lab.page.click("#btn-play")
    lab.wait("s.lastStep >= 100")
    lab.page.locator("#main").focus()
    lab.page.keyboard.press("Home")
    lab.wait("s.lastStep === 0")
    recorded = len(_recorded_steps(lab))
    # Looking back does not stop the run or its recording.
    lab.page.wait_for_function(
        "(n) => Number(document.querySelector('#timeline-slider').max) + 1 > n + 5", arg=recorded
    )
    assert _shown_step(lab) == 0
    lab.page.select_option("#timeline-speed", "4")
    lab.page.click("#btn-replay")
    expect(lab.page.locator("#btn-replay")).to_have_text("Pause replay")
    lab.wait("s.lastStep >= 50")  # the replay moves the charts on
    lab.page.click("#btn-live")
    expect(lab.page.locator("#timeline-step")).to_contain_text("live")
    lab.page.click("#btn-reset")
    assert lab.errors == []
