"""The lab page in real headless Chromium against the real server: runs start, charts get data,
errors land next to their fields, the keyboard drives the run, the layout holds at 200% zoom.

The page exposes a read-only `window.shiftscope` (counters, state, last config); every wait is
Playwright's wait_for_function / expect, never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_fixtures import ROOT, Lab, free_port, open_lab, query, serve_app
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# A small, quick network for tests whose point is not a preset.
SMALL = {"depth": 4, "width": 32, "steps": 400, "emit_every": 5, "max_steps_per_s": 0, "bins": 32}
# A run that cannot end during a test, for pausing and stepping.
LONG = {"depth": 3, "width": 16, "steps": 100_000, "emit_every": 5, "max_steps_per_s": 300, "bins": 16}
# The README's picture is written to build/ (ignored), so a test run leaves the tracked
# docs/screenshot.png alone. To refresh that one deliberately: `make screenshot` (runs only
# test_readme_screenshot, then copies build/screenshot.png over docs/screenshot.png).
SCREENSHOT = ROOT / "build" / "screenshot.png"


@pytest.fixture
def zoomed_lab(chromium: object, lab_server: str) -> Iterator[Lab]:
    """1280×720 at 200% zoom: 640×360 CSS pixels at two device pixels each."""
    with open_lab(
        chromium, lab_server, viewport={"width": 640, "height": 360}, device_scale_factor=2
    ) as page:
        yield page


# What a chart draws: its Plotly traces, or for a ridge plot the outlines on its canvas (one {x, y}
# per layer), as the page's debug facade reports them (static/js/facade.js, drawn).
DRAWN = "(id) => window.shiftscope.drawn(id)"


def chart_points(lab: Lab, element_id: str) -> list[int]:
    """Number of points in each Plotly trace (or ridge outline) of a chart."""
    return lab.page.evaluate(f"(id) => ({DRAWN})(id).map((t) => (t.y || []).length)", element_id)


def wait_chart_data(lab: Lab, element_id: str) -> None:
    lab.page.wait_for_function(f"(id) => ({DRAWN})(id).some((t) => (t.y || []).length > 0)", arg=element_id)


def test_play_feeds_every_chart(lab: Lab) -> None:
    lab.open(query(SMALL))
    expect(lab.page.locator("#btn-play")).to_be_enabled()
    expect(lab.page.locator("#ridge-empty")).to_be_visible()
    lab.page.click("#btn-play")
    lab.wait("s.runFrames >= 3")
    assert lab.value("s.lastConfig.depth") == 4
    assert lab.value("s.layers.length") == 4
    expect(lab.page.locator("#ridge-empty")).to_be_hidden()
    ridge = chart_points(lab, "chart-ridge")
    assert ridge and all(points > 0 for points in ridge), ridge
    for chart in ("chart-band", "chart-loss", "chart-health"):
        wait_chart_data(lab, chart)
    assert chart_points(lab, "chart-health") == [4, 4]  # saturated and dead, one bar per layer
    expect(lab.page.locator("#status-step")).not_to_have_text("–")
    assert lab.errors == []


def test_norm_key_then_play_restarts_with_batch_norm(lab: Lab) -> None:
    lab.open(query(LONG))
    lab.page.click("#btn-play")
    lab.wait("s.runFrames >= 2 && s.state === 'running'")
    assert lab.value("s.lastConfig.norm") == "none"

    lab.page.keyboard.press("2")
    expect(lab.page.locator("#f-norm-batch")).to_be_checked()
    expect(lab.page.locator("#apply-hint")).to_be_visible()  # the run in progress still has no norm
    lab.page.click("#btn-play")  # Play while running: a new run with the form's settings
    lab.wait("s.runs === 2 && s.lastConfig.norm === 'batch' && s.runFrames >= 2")
    expect(lab.page.locator("#apply-hint")).to_be_hidden()
    lab.page.wait_for_function("new URLSearchParams(location.search).get('norm') === 'batch'")
    assert lab.errors == []


def test_invalid_url_value_is_shown_at_its_field_and_a_fix_plays(lab: Lab) -> None:
    lab.open(query(SMALL, depth=99))
    expect(lab.page.locator("#f-depth")).to_have_value("99")
    lab.page.click("#btn-play")

    error = lab.page.locator("#err-depth")
    expect(error).to_be_visible()
    expect(error).to_contain_text("24")  # the message names the limit
    expect(lab.page.locator("#f-depth")).to_have_attribute("aria-invalid", "true")
    expect(lab.page.locator("#alerts .alert")).to_contain_text("depth")
    assert lab.value("s.runs") == 0

    lab.page.fill("#f-depth", "3")
    expect(error).to_be_hidden()
    lab.page.click("#btn-play")
    lab.wait("s.lastConfig && s.lastConfig.depth === 3 && s.runFrames >= 1")
    expect(lab.page.locator("#alerts .alert")).to_have_count(0)
    assert lab.errors == []


def test_error_in_more_settings_opens_them(lab: Lab) -> None:
    lab.open(query(SMALL, bins=3))
    lab.page.keyboard.press("Space")
    expect(lab.page.locator("#err-bins")).to_be_visible()
    expect(lab.page.locator("details.more")).to_have_attribute("open", "")
    assert lab.errors == []


def test_keyboard_pause_step_resume(lab: Lab) -> None:
    lab.open(query(LONG))
    keyboard = lab.page.keyboard
    keyboard.press("n")  # from idle: a new run, paused on the untrained network
    lab.wait("s.runs === 1 && s.state === 'paused' && s.lastStep !== null")
    keyboard.press("Space")
    lab.wait("s.state === 'running' && s.runFrames >= 2")

    keyboard.press("Space")
    lab.wait("s.state === 'paused'")
    expect(lab.page.locator("#status-state")).to_have_text("paused")
    expect(lab.page.locator(".btn-play-label")).to_have_text("Resume")
    paused_at = lab.value("s.receivedStep")

    keyboard.press("n")
    lab.wait(f"s.receivedStep > {paused_at} && s.state === 'paused'")
    stepped_to = lab.value("s.receivedStep")
    assert stepped_to == paused_at + 5  # one emit interval

    keyboard.press("Space")
    lab.wait(f"s.state === 'running' && s.receivedStep > {stepped_to}")
    assert lab.errors == []


def test_arrow_keys_change_the_learning_rate_of_the_running_run(lab: Lab) -> None:
    lab.open(query(LONG, lr=0.5))
    lab.page.keyboard.press("Space")
    lab.wait("s.state === 'running' && s.runFrames >= 1")
    lab.page.keyboard.press("ArrowRight")  # one notch up the log scale: 0.5 -> 0.7
    expect(lab.page.locator("#f-lr")).to_have_value("0.7")
    expect(lab.page.locator("#status-lr")).to_have_text("0.7")  # the server's frames report it
    lab.page.keyboard.press("ArrowLeft")
    lab.page.keyboard.press("ArrowLeft")
    expect(lab.page.locator("#f-lr")).to_have_value("0.3")
    expect(lab.page.locator("#status-lr")).to_have_text("0.3")
    assert lab.errors == []


def test_reconnects_after_the_server_restarts(chromium: object) -> None:
    port = free_port()  # a private server: this test stops it
    with open_lab(chromium, f"http://127.0.0.1:{port}") as lab:
        with serve_app(port):
            lab.open(query(LONG))
            lab.page.keyboard.press("Space")
            lab.wait("s.runFrames >= 2")
        lab.wait("!s.connected && s.state === 'offline'")
        expect(lab.page.locator("#btn-play")).to_be_disabled()
        expect(lab.page.locator("#alerts .alert")).to_contain_text("Connection lost")
        with serve_app(port):  # back on the same port: the page reconnects by itself
            lab.wait("s.connected && s.state === 'ready'", timeout_ms=30_000)
            expect(lab.page.locator("#alerts .alert")).to_have_count(0)
            lab.page.keyboard.press("Space")
            lab.wait("s.runs === 2 && s.runFrames >= 2")
        # The browser logs each refused reconnection attempt; nothing else may be an error.
        assert [e for e in lab.errors if "ERR_CONNECTION_REFUSED" not in e] == []


def test_reset_stops_and_clears(lab: Lab) -> None:
    lab.open(query(LONG))
    lab.page.keyboard.press("Space")
    lab.wait("s.runFrames >= 2")
    lab.page.keyboard.press("r")
    lab.wait("s.state === 'ready' && s.lastStep === null")
    expect(lab.page.locator("#ridge-empty")).to_be_visible()
    assert chart_points(lab, "chart-ridge") == []
    assert lab.errors == []


def test_url_restores_the_config_and_follows_changes(lab: Lab) -> None:
    lab.open("preset=sigmoid-batchnorm&depth=5&lr=0.02")
    expect(lab.page.locator("#preset")).to_have_value("sigmoid-batchnorm")
    expect(lab.page.locator("#f-norm-batch")).to_be_checked()
    expect(lab.page.locator("#f-depth")).to_have_value("5")
    expect(lab.page.locator("#f-lr")).to_have_value("0.02")
    expect(lab.page.locator("#preset-look")).not_to_be_empty()

    lab.page.keyboard.press("3")
    lab.page.wait_for_function("new URLSearchParams(location.search).get('norm') === 'layer'")
    query = lab.page.evaluate("location.search")
    assert "depth=5" in query and "lr=0.02" in query and "preset=sigmoid-batchnorm" in query
    assert lab.errors == []


def test_first_load_selects_the_default_preset(lab: Lab) -> None:
    lab.open()
    presets = lab.page.evaluate("JSON.parse(document.getElementById('shiftscope-boot').textContent)")
    default = next(p for p in presets["presets"] if p["id"] == presets["defaultPreset"])
    assert default["id"] == "sigmoid-saturation"
    expect(lab.page.locator("#preset")).to_have_value(default["id"])
    expect(lab.page.locator("#f-depth")).to_have_value(str(default["config"]["depth"]))
    expect(lab.page.locator("#preset-summary")).to_have_text(default["summary"])
    lab.page.wait_for_function("location.search.includes('preset=sigmoid-saturation')")
    assert lab.errors == []


def test_layout_at_200_percent_zoom(zoomed_lab: Lab) -> None:
    lab = zoomed_lab
    lab.open(query(SMALL))
    play = lab.page.locator("#btn-play")
    expect(play).to_be_in_viewport()
    lab.page.click("#btn-play")
    lab.wait("s.runFrames >= 2")
    boxes = {}
    for element_id in ("btn-play", "chart-ridge", "chart-band", "chart-loss", "chart-health"):
        locator = lab.page.locator(f"#{element_id}")
        locator.scroll_into_view_if_needed()
        expect(locator).to_be_visible()
        boxes[element_id] = lab.page.evaluate(
            "(id) => { const r = document.getElementById(id).getBoundingClientRect();"
            " return [r.left, r.top + scrollY, r.right, r.bottom + scrollY]; }",
            element_id,
        )
    for left, _, right, _ in boxes.values():
        assert left >= 0 and right <= 640, boxes  # nothing off the side of the screen
    charts = [box for key, box in boxes.items() if key.startswith("chart")]
    for left, top, right, bottom in charts:
        assert right - left > 300 and bottom - top > 150, boxes  # big enough to read
    for i, a in enumerate(charts):
        for b in charts[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, boxes
    assert lab.page.evaluate("document.documentElement.scrollWidth") <= 640  # no sideways scrolling
    assert lab.errors == []


def test_focus_ring_and_labels(lab: Lab) -> None:
    lab.open()
    unlabelled = lab.page.evaluate(
        """() => [...document.querySelectorAll('input, select, button')].filter((el) => {
             if (el.labels && el.labels.length) return false;
             if (el.tagName === 'BUTTON' && el.textContent.trim()) return false;
             return !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
                      || el.closest('label'));
           }).map((el) => el.id || el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []
    lab.page.keyboard.press("Tab")  # the skip link
    order = []
    for _ in range(5):  # the header's presentation and classroom controls, then the form
        lab.page.keyboard.press("Tab")
        order.append(lab.page.evaluate("document.activeElement.id"))
    assert order == ["btn-present", "btn-share", "room-code-input", "btn-room-join", "preset"]
    outline = lab.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    lab.page.locator("body").click(position={"x": 5, "y": 700})
    lab.page.keyboard.press("p")
    assert lab.page.evaluate("document.activeElement.id") == "preset"
    assert lab.errors == []


PURE_HELPERS = """async () => {
  const controls = await import('/static/js/controls.js');
  const state = await import('/static/js/state.js');
  const scale = await import('/static/js/charts/scale.js');
  const ridge = await import('/static/js/charts/ridge.js');
  const history = await import('/static/js/charts/history.js');
  const notches = controls.lrNotches(1e-5, 10);
  const range = new scale.StableRange({ shrinkAfterMs: 1000 });
  const fits = [range.fit(-3, 3, 0), range.fit(-20, 20, 10), range.fit(-3, 3, 20), range.fit(-3, 3, 2000)];
  const outline = ridge.ridgeOutline({ lo: 0, hi: 4, counts: [1, 3, 0, 2], n: 6 }, 5, 2, (x) => x);
  const h = new history.History(['step'], { maxPoints: 4 });
  for (let step = 0; step < 9; step++) h.push({ step });
  return {
    first: notches[0], last: notches.at(-1), count: notches.length,
    has: [0.5, 1, 0.1, 0.00625].map((v) => notches.includes(v)),
    up: controls.stepNotch(notches, 0.5, 1), down: controls.stepNotch(notches, 0.00625, -1),
    parsed: state.configFromQuery('?preset=x&depth=99&norm=batch&lr=abc&bogus=1',
      { properties: { depth: { type: 'integer' }, norm: { type: 'string' }, lr: { type: 'number' } } }),
    query: state.configToQuery({ depth: 3, lr: 0.5, norm: null }, 'p', ['depth', 'lr', 'norm']),
    fits, outlineX: outline.x, outlineY: outline.y, thinned: h.columns.step,
  };
}"""


def test_pure_helpers(lab: Lab) -> None:
    """The page's small pure functions, run in the page itself (no JS test runner needed)."""
    lab.open()
    r = lab.page.evaluate(PURE_HELPERS)
    assert (r["first"], r["last"]) == (1e-5, 10)
    assert r["has"] == [True, True, True, False]  # 0.00625 is between notches: 0.005 and 0.007
    assert (r["up"], r["down"]) == (0.7, 0.005)
    assert r["parsed"] == {"presetId": "x", "overrides": {"depth": 99, "norm": "batch", "lr": "abc"}}
    assert r["query"] == "preset=p&depth=3&lr=0.5"
    # Grows at once, holds while the data sits well inside, shrinks only after a while.
    assert r["fits"] == [[-4, 4], [-30, 30], [-30, 30], [-4, 4]]
    # A closed step outline: bin edges doubled, heights scaled so the tallest bin is `peak`.
    assert r["outlineX"] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert r["outlineY"] == [5, 5 + 2 / 3, 5 + 2 / 3, 7, 7, 5, 5, 5 + 4 / 3, 5 + 4 / 3, 5]
    assert len(r["thinned"]) <= 5 and r["thinned"][0] == 0 and r["thinned"][-1] == 8
    assert lab.errors == []


FRAME_QUEUE = """async () => {
  const { FrameQueue } = await import('/static/js/charts/frames.js');
  const shown = [];
  const queue = new FrameQueue((frame) => shown.push(`${frame.run ?? ''}${frame.step}`), { maxSteps: 3 });
  const drawn = [];  // what each animation frame would show: the frames applied since the last
  const tick = () => { const before = shown.length; queue.applyStep(); drawn.push(shown.slice(before)); };
  // A burst of three single-run frames: one per animation frame, oldest first.
  for (const step of [5, 10, 15]) queue.push({ step });
  tick(); tick(); tick(); tick();
  // Twins arrive as pairs and are shown together.
  for (const step of [20, 25]) { queue.push({ step, run: 'A' }); queue.push({ step, run: 'B' }); }
  const steps = queue.steps();
  tick(); tick();
  // Past maxSteps waiting, the oldest are applied at once (recorded, not drawn on their own).
  for (const step of [30, 35, 40, 45, 50]) queue.push({ step });
  const appliedEarly = shown.slice(-2);
  const waiting = queue.length;
  queue.clear();
  return { drawn, steps, appliedEarly, waiting, left: queue.length, empty: queue.applyStep() };
}"""


def test_frame_queue_shows_a_burst_one_step_per_animation_frame(lab: Lab) -> None:
    lab.open()
    r = lab.page.evaluate(FRAME_QUEUE)
    assert r["drawn"] == [["5"], ["10"], ["15"], [], ["A20", "B20"], ["A25", "B25"]]
    assert r["steps"] == 2
    assert r["appliedEarly"] == ["30", "35"] and r["waiting"] == 3
    assert r["left"] == 0 and r["empty"] is False
    assert lab.errors == []


def test_readme_screenshot(lab: Lab) -> None:
    """Runs the default preset for a few hundred steps and saves build/screenshot.png (the README's
    docs/screenshot.png is refreshed from it only by `make screenshot`)."""
    lab.open()
    lab.page.click("#btn-play")
    lab.wait("s.lastStep >= 600 || s.state === 'done'", timeout_ms=90_000)
    for chart in ("chart-band", "chart-loss", "chart-health"):
        wait_chart_data(lab, chart)
    lab.page.wait_for_function("() => (document.getElementById('chart-band').data[2].y || []).length >= 20")
    lab.page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(SCREENSHOT))
    assert Path(SCREENSHOT).stat().st_size > 20_000
    assert lab.errors == []
