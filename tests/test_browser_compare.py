"""Compare mode, the instrument panels and the learning-rate sweep in real headless Chromium
against the real server: twin runs feed both columns, every panel draws its instrument, a sweep
plots its points, presets open where they tell their story.

Waits are Playwright's wait_for_function on `window.shiftscope` or the charts, never sleeps.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from browser_fixtures import Lab, query
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Small and fast: the point of these tests is the page, not the science.
TINY = {
    "depth": 3,
    "width": 16,
    "steps": 60,
    "emit_every": 5,
    "eval_every": 10,
    "max_steps_per_s": 0,
    "bins": 16,
}


# A chart has data when a trace holds a value: a finite y, or for heat maps a non-null cell. Ridge
# plots draw on a canvas; the debug facade gives their outlines (static/js/facade.js, drawn).
HAS_DATA = """(id) => {
  return window.shiftscope.drawn(id).some((t) => t.type === 'heatmap'
    ? (t.z || []).some((row) => row.some((v) => v !== null && v !== undefined))
    : (t.y || []).some((v) => v !== null && v !== undefined)); }"""


def wait_chart_data(lab: Lab, element_id: str) -> None:
    lab.page.wait_for_function(HAS_DATA, arg=element_id)


def url_params(lab: Lab) -> dict[str, list[str]]:
    return parse_qs(urlparse(lab.page.url).query)


def test_compare_switch_runs_twins_side_by_side(lab: Lab) -> None:
    lab.open(query(TINY, steps=100))
    expect(lab.page.locator("#compare-on")).not_to_be_checked()
    expect(lab.page.locator("#compare-fields")).to_be_hidden()
    lab.page.click("label[for=compare-on]")  # the one-click comparison: with and without norm
    expect(lab.page.locator("#compare-0-field")).to_have_value("norm")
    expect(lab.page.locator("#compare-0-value")).to_have_value("batch")  # A has none: B gets batch
    assert lab.value("s.formCompare") == {"norm": "batch"}
    lab.page.wait_for_function("new URLSearchParams(location.search).get('b.norm') === 'batch'")

    lab.page.click("#btn-play")
    lab.wait("s.state === 'done' && s.lastStep === 100")
    frames = lab.value("s.framesByRun")
    assert frames["A"] > 0 and frames["B"] > 0, frames
    assert lab.value("s.compare") == {"norm": "batch"}
    assert lab.value("s.runNames") == ["A", "B"]
    expect(lab.page.locator("#chart-ridge-b")).to_be_visible()
    expect(lab.page.locator("#ridge-cell-A .ridge-title-text")).to_have_text("A: norm none")
    expect(lab.page.locator("#ridge-cell-B .ridge-title-text")).to_have_text("B: norm batch")
    for chart in ("chart-ridge", "chart-ridge-b", "chart-band", "chart-loss", "chart-health"):
        wait_chart_data(lab, chart)
    # Both runs on the side charts: a band and a median each, loss and accuracies each.
    assert lab.page.evaluate("document.getElementById('chart-band').data.length") == 6
    lab.page.wait_for_function(
        "() => { const d = document.getElementById('chart-loss').data;"
        " return d.length === 6 && d[4].y.length > 0 && d[5].y.length > 0; }"
    )
    # Twins share one x range, so their rows compare at a glance.
    ranges = lab.page.evaluate(
        "['chart-ridge', 'chart-ridge-b'].map((id) => document.getElementById(id).layout.xaxis.range)"
    )
    assert ranges[0] == ranges[1]
    assert lab.errors == []


def test_single_run_hides_the_twin(lab: Lab) -> None:
    lab.open(query(TINY))
    lab.page.click("#btn-play")
    lab.wait(f"s.state === 'done' && s.lastStep === {TINY['steps']}")
    assert lab.value("s.framesByRun.A") > 0 and lab.value("s.framesByRun.B") == 0
    assert lab.value("s.compare") is None
    expect(lab.page.locator("#chart-ridge-b")).to_be_hidden()
    expect(lab.page.locator("#ridge-cell-A .ridge-title")).to_be_hidden()
    assert lab.page.evaluate("document.getElementById('chart-band').data.length") == 3
    assert "b.norm" not in url_params(lab)
    assert lab.errors == []


def test_presets_group_and_open_where_they_tell_their_story(lab: Lab) -> None:
    lab.open()
    groups = lab.page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#preset optgroup')]"
        ".map((g) => [g.label, [...g.children].map((o) => o.value)]))"
    )
    assert list(groups) == ["The story", "Instruments & papers", "Beyond the MLP: papers"]
    boot = lab.page.evaluate("JSON.parse(document.getElementById('shiftscope-boot').textContent)")
    listed = [preset_id for ids in groups.values() for preset_id in ids]
    assert sorted(listed) == sorted(preset["id"] for preset in boot["presets"])  # each once
    labels = dict(zip(("story", "instruments", "architectures"), groups, strict=True))
    for preset in boot["presets"]:  # each under the group it names
        assert preset["id"] in groups[labels[preset["group"]]], preset["id"]
    assert {"sigmoid-saturation", "high-lr", "ioffe-fig1"} <= set(groups["The story"])
    # Instruments and papers: comparisons, sweeps, and bn-eval, which only moves the test set.
    assert {"compare-bn", "santurkar-ics", "lr-sweep", "bn-eval"} <= set(groups["Instruments & papers"])
    # Beyond the MLP: at least the transformer papers, the residual MLP and the CNN.
    archs = {preset["config"]["arch"] for preset in boot["presets"] if preset["group"] == "architectures"}
    assert {"transformer", "resmlp", "cnn"} <= archs
    expect(lab.page.locator("#compare-on")).not_to_be_checked()
    # A story preset quotes no paper: no claim line, only its checked figures.
    expect(lab.page.locator("#preset-claim")).to_be_hidden()
    expect(lab.page.locator("#preset-checks .claim-check")).to_have_count(2)

    lab.page.select_option("#preset", "santurkar-ics")  # a comparison, a paper and an instrument
    expect(lab.page.locator("#compare-on")).to_be_checked()
    assert lab.value("s.formCompare") == {"norm": "batch"}
    assert lab.value("s.view") == "ics"
    expect(lab.page.locator("#view-ics")).to_be_checked()
    expect(lab.page.locator("#preset-claim")).to_contain_text("internal covariate shift")
    expect(lab.page.locator("#preset-paper")).to_contain_text("Santurkar")

    lab.page.select_option("#preset", "lr-sweep")
    assert lab.value("s.view") == "sweep"
    expect(lab.page.locator("#sweep-lrs")).to_have_value("0.01, 0.03, 0.1, 0.3, 1, 3")

    lab.page.select_option("#preset", "sigmoid-batchnorm")  # a story preset: one run again
    expect(lab.page.locator("#compare-on")).not_to_be_checked()
    expect(lab.page.locator("#preset-claim")).to_be_hidden()
    lab.page.keyboard.press("Escape")
    lab.page.locator("body").click(position={"x": 5, "y": 700})
    lab.page.keyboard.press("c")  # C switches compare mode on from the keyboard
    expect(lab.page.locator("#compare-on")).to_be_checked()
    assert lab.value("s.formCompare") == {"norm": "none"}  # A has batch norm: B goes without
    assert lab.errors == []


def test_b_differs_in_any_field_and_its_errors_land_on_the_row(lab: Lab) -> None:
    lab.open(query(TINY, **{"b.norm": "batch"}))
    expect(lab.page.locator("#compare-on")).to_be_checked()
    lab.page.click("#compare-add")
    lab.page.select_option("#compare-1-field", "depth")
    lab.page.fill("#compare-1-value", "99")
    assert lab.value("s.formCompare") == {"norm": "batch", "depth": 99}
    lab.page.click("#btn-play")
    error = lab.page.locator("#err-compare-1")
    expect(error).to_be_visible()
    expect(error).to_contain_text("24")  # the server's message names the limit
    expect(lab.page.locator("#compare-1-value")).to_have_attribute("aria-invalid", "true")
    lab.page.fill("#compare-1-value", "2")
    expect(error).to_be_hidden()
    lab.page.click("#btn-play")
    lab.wait("s.framesByRun.B >= 1")
    assert lab.value("s.compare") == {"norm": "batch", "depth": 2}
    expect(lab.page.locator("#ridge-cell-B .ridge-title")).to_contain_text("depth 2")
    assert lab.errors == []


def test_a_twin_that_diverges_ends_alone(lab: Lab) -> None:
    # Ten ReLU layers at lr 1: without norm A diverges within a few dozen steps; B trains on.
    config = {"depth": 10, "width": 100, "activation": "relu", "init": "kaiming", "lr": 1.0}
    lab.open(query(TINY, **config, steps=80, **{"b.norm": "batch"}))
    lab.page.click("#btn-play")
    badge = lab.page.locator("#ridge-cell-A .ridge-title-state")
    expect(badge).to_contain_text("diverged at")
    lab.wait("s.state === 'done' && s.receivedStep === 80")  # B trained every step
    expect(lab.page.locator("#ridge-cell-B .ridge-title-state")).to_be_hidden()
    expect(badge).to_contain_text("diverged at")  # the run is done: A's end is still told
    assert lab.errors == []


# (panel, what opening it switches on, the charts that must draw, extra URL settings)
PANELS = [
    ("drift", {"drift_lag": 10}, ["chart-drift", "chart-waterfall"], {}),
    (
        "gradients",
        {"probe_gradients": True},
        ["chart-grad", "chart-grad-b", "chart-grad-norm", "chart-update-ratio"],
        {},
    ),
    ("ics", {"ics_every": 10}, ["chart-ics-dist", "chart-ics-cos"], {}),
    ("landscape", {"landscape_every": 20}, ["chart-loss-range", "chart-grad-change", "chart-beta"], {}),
    ("eval", {}, ["chart-eval-acc", "chart-bn-gap", "chart-bn-var"], {}),
]


@pytest.mark.parametrize(("panel", "switched_on", "chart_ids", "extra"), PANELS, ids=[p[0] for p in PANELS])
def test_instrument_panel_draws_its_instrument(
    lab: Lab, panel: str, switched_on: dict[str, object], chart_ids: list[str], extra: dict[str, object]
) -> None:
    lab.open(query(TINY, **extra, **{"b.norm": "batch"}))
    for field in switched_on:
        assert lab.value(f"s.formConfig.{field}") in (False, 0)
    lab.page.click(f"label[for=view-{panel}]")
    expect(lab.page.locator(f"#panel-{panel}")).to_be_visible()
    expect(lab.page.locator("#panel-layers")).to_be_hidden()
    for field, value in switched_on.items():  # opening the panel switched its instrument on
        assert lab.value(f"s.formConfig.{field}") == value
    lab.page.wait_for_function(f"new URLSearchParams(location.search).get('view') === '{panel}'")

    lab.page.click("#btn-play")
    # Counters move with the ridge plot hidden too: the page has drawn what it received.
    lab.wait(f"s.state === 'done' && s.lastStep === {TINY['steps']}")
    for field, value in switched_on.items():
        assert lab.value(f"s.lastConfig.{field}") == value
    for chart in chart_ids:
        wait_chart_data(lab, chart)
    points = lab.value(f"s.panelPoints('{panel}')")
    assert all(points), points
    assert lab.errors == []


def test_hidden_panels_draw_nothing_until_shown(lab: Lab) -> None:
    lab.open(query(TINY, probe_gradients="true"))
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done' && s.runFrames >= 1")
    assert lab.page.evaluate("document.getElementById('chart-grad-norm').data") is None  # never drawn
    lab.page.click("label[for=view-gradients]")
    wait_chart_data(lab, "chart-grad-norm")
    assert lab.errors == []


def test_a_run_without_drift_says_so_in_the_drift_panel(lab: Lab) -> None:
    """Drift is off by default: a run's strip says it is off (not "needs frames"), and the
    panel's note offers to switch it on for the next run."""
    lab.open(query(TINY, view="drift"))
    assert lab.value("s.formConfig.drift_lag") == 0
    lab.page.click("#btn-play")
    lab.wait(f"s.state === 'done' && s.lastStep === {TINY['steps']}")
    assert lab.value("s.lastConfig.drift_lag") == 0
    lab.page.wait_for_function(
        "document.getElementById('chart-drift').layout?.annotations?.[0]?.text === 'drift is off in this run'"
    )
    note = lab.page.locator("#note-drift")
    expect(note).to_contain_text("Drift measurements")
    note.get_by_role("button", name="Switch on").click()
    assert lab.value("s.formConfig.drift_lag") == 10
    assert lab.errors == []


def test_eval_panel_edits_the_test_set(lab: Lab) -> None:
    lab.open(query(TINY, norm="batch", view="eval"))
    expect(lab.page.locator("#panel-eval")).to_be_visible()
    lab.page.fill("#m-test_shift", "0.5")
    expect(lab.page.locator("#f-test_shift")).to_have_value("0.5")
    lab.page.wait_for_function("new URLSearchParams(location.search).get('test_shift') === '0.5'")
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done'")
    assert lab.value("s.lastConfig.test_shift") == 0.5
    wait_chart_data(lab, "chart-eval-acc")
    # Both test accuracies: running averages (eval mode) and batch statistics.
    lab.page.wait_for_function(
        "() => document.getElementById('chart-eval-acc').data.every((t) => t.y.some((v) => v !== null))"
    )
    assert lab.errors == []


def test_sweep_plots_every_point_and_marks_divergence(lab: Lab) -> None:
    # Six ReLU layers with He init: at lr 3 the run without norm diverges, batch norm's does not.
    config = {"depth": 6, "width": 64, "activation": "relu", "init": "kaiming", "view": "sweep"}
    lab.open(query(TINY, steps=100_000, max_steps_per_s=50, **config, **{"b.norm": "batch"}))
    sweep = lab.page.locator("#btn-sweep")
    expect(sweep).to_be_enabled()
    lab.page.keyboard.press("Space")  # a run in progress: no sweep until it ends
    lab.wait("s.state === 'running'")
    expect(sweep).to_be_disabled()
    lab.page.keyboard.press("r")
    expect(sweep).to_be_enabled()

    lab.page.fill("#sweep-lrs", "3, 0.01")
    lab.page.fill("#sweep-steps", "40")
    sweep.click()
    lab.wait("s.sweepResults === 4 && s.state === 'done'")
    expect(lab.page.locator("#sweep-progress-text")).to_contain_text("4 / 4")
    expect(sweep).to_be_enabled()
    lab.page.wait_for_function(  # drawn on the next animation frame
        "() => document.getElementById('chart-sweep').data.filter((t) => (t.yaxis || 'y') === 'y')"
        ".reduce((n, t) => n + t.x.length, 0) === 4"
    )
    traces = lab.page.evaluate(
        "document.getElementById('chart-sweep').data.map((t) => [t.mode, t.yaxis || 'y', t.x.length])"
    )
    # Per run: loss points, ✕ at the top for diverged runs, accuracy points, ✕ at the bottom.
    losses = sum(n for mode, axis, n in traces if mode == "lines+markers" and axis == "y")
    crosses = sum(n for mode, axis, n in traces if mode == "markers" and axis == "y")
    assert losses + crosses == 4 and crosses >= 1, traces
    assert lab.value("s.runFrames") == 0  # a sweep sends no frames
    assert lab.errors == []


def test_sweep_rates_are_checked_before_sending(lab: Lab) -> None:
    lab.open(query(TINY, view="sweep"))
    lab.page.fill("#sweep-lrs", "0.1, fast")
    lab.page.click("#btn-sweep")
    expect(lab.page.locator("#sweep-error")).to_contain_text("fast")
    assert lab.value("s.runs") == 0
    assert lab.errors == []


PURE_HELPERS = """async () => {
  const compare = await import('/static/js/compare.js');
  const sweep = await import('/static/js/sweep.js');
  const drift = await import('/static/js/charts/drift.js');
  const ridge = await import('/static/js/charts/ridge.js');
  const runs = await import('/static/js/charts/runs.js');
  const norm = { enum: ['none', 'batch', 'layer'] };
  const started = {
    layers: ['layer1', 'layer2'], config: { depth: 2, norm: 'none' }, runs: ['A', 'B'],
    configs: { A: { depth: 2, norm: 'none' }, B: { depth: 3, norm: 'batch' } },
    layers_by_run: { A: ['layer1', 'layer2'], B: ['layer1', 'layer2', 'layer3'] },
    compare: { norm: 'batch', depth: 3 },
  };
  return {
    contrast: [
      compare.contrastValue('norm', norm, 'none'), compare.contrastValue('norm', norm, 'layer'),
      compare.contrastValue('noisy_norm', { type: 'boolean' }, true),
      compare.contrastValue('lr', { type: 'number', maximum: 10 }, 3),
      compare.contrastValue('activation', { enum: ['sigmoid', 'relu'] }, 'sigmoid'),
    ],
    typed: [compare.typedValue({ type: 'integer' }, '7'), compare.typedValue({ type: 'boolean' }, 'false'),
      compare.typedValue({ type: 'number' }, 'x')],
    rates: sweep.parseRates('1, 0.01;0.1 0.1'),
    tooMany: sweep.parseRates(Array.from({ length: 13 }, (_, i) => (i + 1) / 100).join(',')).error,
    outOfRange: sweep.parseRates('0.1, 20').error,
    shares: drift.resample({ lo: 0, hi: 4, counts: [4, 0, 0, 4], n: 8 }, [0, 1, 2, 3, 4]),
    halves: drift.resample({ lo: 0, hi: 2, counts: [2, 2], n: 4 }, [-1, 0.5, 1, 3]),
    labelled: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((i) => ridge.labelled(i, 10, 2)),
    runOf: [runs.runOf({}), runs.runOf({ run: 'B' })],
    runsOf: [runs.runsOf(null), runs.runsOf({ layers: [] }), runs.runsOf(started)],
    bLayers: runs.runView(started, 'B').layers.length,
    diffs: runs.differences(started),
  };
}"""


def test_pure_helpers(lab: Lab) -> None:
    """The new modules' small pure functions, run in the page itself."""
    lab.open()
    r = lab.page.evaluate(PURE_HELPERS)
    # B's natural contrast to A: with/without norm, the other switch position, 10× the rate.
    assert r["contrast"] == ["batch", "none", False, 10, "relu"]
    assert r["typed"] == [7, False, None]
    assert r["rates"] == {"rates": [0.01, 0.1, 1]}  # sorted, repeats dropped
    assert "12" in r["tooMany"] and "20" in r["outOfRange"]
    assert r["shares"] == [0.5, 0, 0, 0.5]  # each cell's share of the values, uniform within bins
    assert r["halves"] == [0.25, 0.25, 0.5]
    assert r["labelled"] == [0, 2, 4, 6, 9]  # every other layer, and the last with room before it
    assert r["runOf"] == ["A", "B"]
    assert r["runsOf"] == [[], ["A"], ["A", "B"]]
    assert r["bLayers"] == 3  # B is deeper than A: its entries are its own (layers_by_run)
    assert r["diffs"] == [["norm", "none", "batch"], ["depth", 2, 3]]
    assert lab.errors == []
