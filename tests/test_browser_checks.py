"""A preset's quoted figures beside what the run shown reads ("this run: …", static/js/checks.js),
in real headless Chromium against the real server; the page reads what app/presets.py reads.
"""

from __future__ import annotations

import pytest
from browser_fixtures import Lab
from playwright.sync_api import expect
from test_presets import DIVERGED_FRAME, SWEEP_RESULT, SYNTHETIC_FRAME, preset_messages

from app.presets import PRESETS, Check

pytestmark = pytest.mark.browser

CASES = [
    Check("r", "grad_norm", 5, 0, 1, run="B", of="last/first", layers=".resid"),
    Check("m", "post.std", 0, 0, 9, run="B", of="max"),
    Check("n", "post.std", 0, 0, 9, run="B", of="mean"),
    Check("f", "grad_norm", 0, 0, 9, run="B", of="first"),
    Check("a", "test_acc", 5, 0, 1, run="B"),
    Check("a", "test_acc", 6, 0, 1, run="B"),
    Check("a", "test_acc", 0, 0, 1, run="A"),
    Check("m", "post.std", 0, 0, 9, run="B", of="min", layers=".resid"),
    Check("s", "test_acc_batch_stats", 5, 0, 1, run="B"),
    Check("b", "landscape.beta", 5, 0, 9, run="B"),
    Check("d", "ics.dist", 5, 0, 9, run="B", of="mean"),
    Check("c", "ics.cos", 5, 0, 1, run="B", of="first", layers=".resid"),
    Check("d", "drift", 5, 0, 9, run="B", of="mean"),  # no layer has it: null
]


def test_the_page_reads_a_check_as_the_server_does(lab: Lab) -> None:
    lab.open()
    readings = lab.page.evaluate(
        """async ([checks, frame]) => {
      const { reading } = await import('/static/js/checks.js');
      return checks.map((check) => reading(check, frame));
    }""",
        [[c.to_wire() for c in CASES], SYNTHETIC_FRAME],
    )
    assert readings == [c.reading(SYNTHETIC_FRAME) for c in CASES]
    assert readings[0] == 0.5 and readings[6] is None and readings[-1] is None
    assert readings[-3:-1] == [1.0, 0.9]  # ICS read beside the layers, the weightless one left out
    # A divergence, and a sweep's point, each read from its own message as the server reads it.
    more = [
        (Check("d", "diverged_at", 0, 0, 99), DIVERGED_FRAME),
        (Check("d", "diverged_at", 0, 0, 99), {**DIVERGED_FRAME, "loss": 2.3}),
        (Check("s", "sweep.test_acc", 0, 0, 1, run="B", lr=0.3), SWEEP_RESULT),
        (Check("s", "sweep.diverged", 0, 0, 1, run="B", lr=0.3), SWEEP_RESULT),
        (Check("s", "sweep.test_acc", 0, 0, 1, run="B", lr=1.0), SWEEP_RESULT),
        (Check("s", "sweep.test_acc", 0, 0, 1, run="B", lr=0.3), SYNTHETIC_FRAME),
    ]
    readings = lab.page.evaluate(
        """async (cases) => {
      const { reading } = await import('/static/js/checks.js');
      return cases.map(([check, message]) => reading(check, message));
    }""",
        [[c.to_wire(), m] for c, m in more],
    )
    assert readings == [c.reading(m) for c, m in more] == [7.0, None, 0.9, 0.0, None, None]


# Per-layer readings at step 0 (glorot-init), the landscape probe's (landscape), the ICS list
# beside the layers averaged over steps 10-100 (santurkar-ics-he) and the step a run diverged at
# (high-lr), each as the wire carries it to the page.
@pytest.mark.parametrize("preset_id", ["glorot-init", "landscape", "santurkar-ics-he", "high-lr"])
def test_a_presets_run_shows_its_quoted_figures_read_from_its_own_frames(lab: Lab, preset_id: str) -> None:
    preset = next(p for p in PRESETS if p.id == preset_id)
    messages = preset_messages(preset, seed=0)
    expected = {check.says: check.read(messages) for check in preset.checks}
    lab.open(f"preset={preset_id}&max_steps_per_s=0")
    items = lab.page.locator("#preset-checks .claim-check")
    expect(items).to_have_count(len(preset.checks))
    expect(items.first).to_contain_text("press ▶ Play")
    lab.page.click("#btn-play")
    lab.page.wait_for_function(
        "[...document.querySelectorAll('#preset-checks .claim-check')].every((li) => li.dataset.value)"
    )
    shown = lab.page.evaluate(
        """[...document.querySelectorAll('#preset-checks .claim-check')].map((li) =>
             [li.firstChild.textContent, Number(li.dataset.value), li.dataset.state])"""
    )
    lab.page.click("#btn-reset")  # the rest of the run is not needed
    expect(items.first).to_contain_text("press ▶ Play")
    for (says, value, state), check in zip(shown, preset.checks, strict=True):
        assert says.startswith(check.says)
        assert value == pytest.approx(expected[check.says], rel=1e-6)
        assert state == ("holds" if check.holds(value) else "differs")
    assert all(state == "holds" for _, _, state in shown)
    assert lab.errors == []


def test_a_sweep_presets_checks_are_read_from_the_sweeps_results(lab: Lab) -> None:
    preset = next(p for p in PRESETS if p.id == "lr-sweep")
    expected = {check.says: check.read(preset_messages(preset, seed=0)) for check in preset.checks}
    lab.open("preset=lr-sweep")
    items = lab.page.locator("#preset-checks .claim-check")
    expect(items).to_have_count(len(preset.checks))
    lab.page.click("#btn-sweep")
    lab.page.wait_for_function(
        "[...document.querySelectorAll('#preset-checks .claim-check')].every((li) => li.dataset.value)",
        timeout=120_000,
    )
    shown = lab.page.evaluate(
        """[...document.querySelectorAll('#preset-checks .claim-check')].map((li) =>
             [li.firstChild.textContent, Number(li.dataset.value), li.dataset.state])"""
    )
    for (says, value, state), check in zip(shown, preset.checks, strict=True):
        assert says.startswith(check.says)
        assert value == pytest.approx(expected[check.says], rel=1e-6)
        assert state == "holds"
    assert lab.errors == []


def test_a_story_preset_shows_its_checks_without_a_claim(lab: Lab) -> None:
    lab.open("preset=sigmoid-batchnorm")
    expect(lab.page.locator("#preset-claim-box")).to_be_visible()
    expect(lab.page.locator("#preset-claim")).to_be_hidden()  # no paper's claim to quote
    expect(lab.page.locator("#preset-checks .claim-check")).to_have_count(2)
    lab.open("preset=glorot-init")
    expect(lab.page.locator("#preset-claim")).to_be_visible()
    assert lab.errors == []


def test_a_run_with_other_settings_is_not_held_to_the_presets_figures(lab: Lab) -> None:
    lab.open("preset=glorot-init&depth=4&steps=20&max_steps_per_s=0")
    lab.page.click("#btn-play")
    lab.wait("s.runFrames >= 1")
    first = lab.page.locator("#preset-checks .claim-check").first
    expect(first).to_contain_text("other settings than the preset")
    assert lab.page.locator("#preset-checks .claim-check[data-value]").count() == 0
    assert lab.errors == []
