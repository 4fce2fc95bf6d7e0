"""Architectures in real headless Chromium against the real server: the form shows what each
architecture reads and takes, a switch leaves a valid config, the diagram follows, a transformer
run streams its blocks and its one-token-at-a-time accuracy, links and presets carry the arch.

Waits are Playwright's wait_for_function / expect on `window.shiftscope` or the DOM, never sleeps.
"""

from __future__ import annotations

import pytest
from browser_fixtures import Lab, query
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TRANSFORMER_FIELDS = ("task", "seq_len", "vocab", "d_model", "heads", "warmup_steps")
# The schema's x-arch-defaults for the transformer.
TRANSFORMER_DEFAULTS = {"norm_position": "pre", "activation": "gelu", "optimizer": "adam", "lr": 0.003}
# A transformer that trains in seconds on a busy two-core machine.
TINY_TRANSFORMER = {"depth": 2, "d_model": 32, "seq_len": 4, "steps": 60, "eval_every": 20, "emit_every": 5}

# The norm radios a user can pick now (an architecture's other norms are disabled, not removed).
OFFERED_NORMS = (
    "[...document.querySelectorAll('input[name=norm]')].filter((r) => !r.disabled).map((r) => r.value)"
)
SHOWN_PLACEMENTS = (
    "[...document.querySelectorAll('input[name=norm_position]')]"
    ".filter((r) => document.querySelector(`label[for=${r.id}]`).offsetParent !== null).map((r) => r.value)"
)


def field(lab: Lab, name: str) -> object:
    """The settings form's wrapper of one field (its label, control and error)."""
    return lab.page.locator(f'#config-form [data-field="{name}"]')


def test_transformer_shows_its_fields_streams_blocks_and_generated_accuracy(lab: Lab) -> None:
    lab.open(query({"max_steps_per_s": 0}))
    lab.page.click("#more summary")
    for name in ("dataset", "width", "groups", "noise"):
        expect(field(lab, name)).to_be_visible()
    for name in TRANSFORMER_FIELDS[:-1]:
        expect(field(lab, name)).to_be_hidden()

    lab.page.click("label[for=f-arch-transformer]")
    expect(lab.page.locator("#f-arch-transformer")).to_be_checked()
    for name in TRANSFORMER_FIELDS:
        expect(field(lab, name)).to_be_visible()
    for name in ("dataset", "width", "groups", "noise", "init"):
        expect(field(lab, name)).to_be_hidden()
    # The transformer's defaults (x-arch-defaults) came with it: the next Play is valid as it is.
    config = lab.value("s.formConfig")
    assert config["arch"] == "transformer"
    assert {name: config[name] for name in TRANSFORMER_DEFAULTS} == TRANSFORMER_DEFAULTS
    assert lab.page.evaluate(OFFERED_NORMS) == ["none", "layer", "rms"]
    expect(lab.page.locator("#depth-unit")).to_have_text("blocks")
    expect(lab.page.locator("#arch-diagram")).to_have_attribute("data-arch", "transformer")
    expect(lab.page.locator("#arch-diagram svg")).to_contain_text("attn_in")

    for name, value in TINY_TRANSFORMER.items():
        lab.page.fill(f"#f-{name}", str(value))
    expect(lab.page.locator("#acc-readout")).to_be_hidden()
    lab.page.click("#btn-play")
    lab.wait("s.runs === 1 && s.runFrames >= 2")
    assert lab.value("s.lastConfig.arch") == "transformer"
    assert lab.value("s.layers") == ["block1.attn_in", "block1.resid", "block2.attn_in", "block2.resid"]
    lab.page.wait_for_function("window.shiftscope.drawn('chart-ridge').length === 4")
    expect(lab.page.locator("#ridge-subtitle")).to_contain_text("attn_in, resid per block")
    expect(lab.page.locator("#band-layer option[value='3']")).to_have_text("block2.resid")
    # The ridge's rows are labelled by entry, under a "block" axis title.
    ticks = "[...document.querySelectorAll('#chart-ridge .ytick text')].map((t) => t.textContent)"
    lab.page.wait_for_function(f"{ticks}.includes('1 attn')")
    assert set(lab.page.evaluate(ticks)) <= {"1 attn", "1 resid", "2 attn", "2 resid"}
    expect(lab.page.locator("#chart-ridge .ytitle")).to_have_text("block")

    # Test accuracy comes every eval_every steps; a transformer's frames add the generated one.
    expect(lab.page.locator("#acc-readout")).to_be_visible()
    expect(lab.page.locator("#acc-readout")).to_contain_text("one token at a time")
    generated = "#acc-readout .acc-generated b"
    lab.page.wait_for_function(f"document.querySelector('{generated}').textContent.endsWith('%')")
    expect(lab.page.locator("#acc-readout .acc-test b")).to_contain_text("%")
    assert lab.errors == []


def test_generated_accuracy_is_absent_for_an_mlp(lab: Lab) -> None:
    lab.open(query({"depth": 2, "width": 16, "steps": 20, "eval_every": 10, "max_steps_per_s": 0}))
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done'")
    assert lab.value("s.layers") == ["layer1", "layer2"]
    expect(lab.page.locator("#acc-readout")).to_be_hidden()
    expect(lab.page.locator("#ridge-subtitle")).to_have_text("layer 1 at the top, deepest at the bottom")
    assert lab.errors == []


def test_cnn_offers_its_norms_and_placements_and_switching_back_restores_the_mlp(lab: Lab) -> None:
    lab.open()  # the default preset: a 10-layer sigmoid MLP
    diagram = lab.page.locator("#arch-diagram")
    expect(diagram).to_have_attribute("data-arch", "mlp")
    expect(diagram.locator("svg")).to_contain_text("Linear")
    assert lab.page.evaluate(OFFERED_NORMS) == ["none", "batch", "layer", "group", "rms"]
    assert lab.page.evaluate(SHOWN_PLACEMENTS) == ["before", "after"]
    lab.page.keyboard.press("5")  # RMS norm, which the CNN does not take
    expect(lab.page.locator("#f-norm-rms")).to_be_checked()

    lab.page.click("label[for=f-arch-cnn]")
    expect(diagram).to_have_attribute("data-arch", "cnn")
    expect(diagram.locator("svg")).to_contain_text("Conv 3×3")
    expect(diagram).to_contain_text("conv1.ch0-3")
    assert lab.page.evaluate(OFFERED_NORMS) == ["none", "batch", "layer", "group"]
    expect(lab.page.locator("#f-norm-rms")).to_be_disabled()
    expect(lab.page.locator("#f-norm-layer")).to_be_checked()  # the nearest norm it takes, and why:
    expect(lab.page.locator("#arch-note")).to_contain_text("RMS norm is not offered")
    assert lab.page.evaluate(SHOWN_PLACEMENTS) == ["before", "after"]
    expect(lab.page.locator("label[for=f-width]")).to_have_text("Channels")
    config = lab.value("s.formConfig")
    assert (config["depth"], config["width"], config["activation"]) == (3, 16, "relu")  # the CNN's defaults

    lab.page.locator("body").click(position={"x": 5, "y": 700})
    lab.page.keyboard.press("5")  # the key explains rather than picks
    expect(lab.page.locator("#f-norm-layer")).to_be_checked()
    expect(lab.page.locator("#norm-note")).to_contain_text("not offered")

    lab.page.click("label[for=f-arch-mlp]")
    expect(diagram).to_have_attribute("data-arch", "mlp")
    expect(diagram.locator("svg")).to_contain_text("Linear")
    assert lab.page.evaluate(OFFERED_NORMS) == ["none", "batch", "layer", "group", "rms"]
    expect(lab.page.locator("label[for=f-width]")).to_have_text("Width")
    config = lab.value("s.formConfig")
    # The preset's own values again.
    assert (config["depth"], config["width"], config["activation"]) == (10, 100, "sigmoid")

    # Placement drives the diagram too; the residual MLP takes pre/post instead of before/after.
    lab.page.click("label[for=f-arch-resmlp]")
    assert lab.page.evaluate(SHOWN_PLACEMENTS) == ["pre", "post"]
    expect(lab.page.locator("#f-norm_position-pre")).to_be_checked()
    lab.page.click("label[for=f-norm_position-post]")
    expect(diagram).to_have_attribute("data-norm-position", "post")
    assert lab.errors == []


def test_cnn_switch_plays_at_once(lab: Lab) -> None:
    lab.open(query({"steps": 30, "max_steps_per_s": 0, "bins": 16, "dataset": "moons"}))
    lab.page.click("label[for=f-arch-cnn]")  # moons are 2-D points: the CNN reads the digits
    expect(lab.page.locator("#arch-note")).to_contain_text("digits")
    lab.page.click("#btn-play")
    lab.wait("s.runs === 1 && s.runFrames >= 1")
    assert lab.value("s.lastConfig.arch") == "cnn"
    assert lab.value("s.layers")[:4] == ["conv1.ch0-3", "conv1.ch4-7", "conv1.ch8-11", "conv1.ch12-15"]
    expect(lab.page.locator("#alerts .alert")).to_have_count(0)
    assert lab.errors == []


def test_url_round_trips_the_architecture(lab: Lab) -> None:
    lab.open("arch=resmlp&norm_position=post")
    expect(lab.page.locator("#f-arch-resmlp")).to_be_checked()
    expect(lab.page.locator("#f-norm_position-post")).to_be_checked()
    assert lab.page.evaluate(SHOWN_PLACEMENTS) == ["pre", "post"]
    expect(lab.page.locator("#arch-diagram")).to_have_attribute("data-norm-position", "post")
    lab.page.wait_for_function(
        "(() => { const p = new URLSearchParams(location.search);"
        " return p.get('arch') === 'resmlp' && p.get('norm_position') === 'post'; })()"
    )
    search = lab.page.evaluate("location.search")
    lab.open(search)  # the page's own link brings the same form back
    expect(lab.page.locator("#f-arch-resmlp")).to_be_checked()
    expect(lab.page.locator("#f-norm_position-post")).to_be_checked()
    assert lab.value("s.formConfig.depth") == 10  # the preset's, which the link carried

    # A link that names only the architecture: what it leaves out follows that architecture.
    lab.open("arch=transformer")
    config = lab.value("s.formConfig")
    assert {name: config[name] for name in TRANSFORMER_DEFAULTS} == TRANSFORMER_DEFAULTS
    assert lab.errors == []


def test_architecture_preset_loads_its_config_and_tells_its_paper(lab: Lab) -> None:
    lab.open()
    boot = lab.page.evaluate("JSON.parse(document.getElementById('shiftscope-boot').textContent)")
    arch_presets = [preset for preset in boot["presets"] if preset["group"] == "architectures"]
    preset = next(p for p in arch_presets if p["config"]["arch"] == "transformer" and p.get("paper"))
    lab.page.select_option("#preset", preset["id"])
    config = lab.value("s.formConfig")
    for name in ("arch", "norm", "norm_position", "d_model", "heads", "seq_len", "task", "depth", "lr"):
        assert config[name] == preset["config"][name], name
    expect(lab.page.locator("#f-arch-transformer")).to_be_checked()
    expect(lab.page.locator("#arch-diagram")).to_have_attribute("data-arch", "transformer")
    expect(lab.page.locator("#preset-claim-box")).to_be_visible()
    expect(lab.page.locator("#preset-paper")).to_have_text(preset["paper"])
    expect(lab.page.locator("#preset-claim")).to_have_text(preset["claim"])
    assert lab.value("s.view") == (preset.get("view") or "layers")
    assert lab.value("s.formCompare") == preset["compare"]
    assert lab.errors == []


SWITCH_EVERY_PRESET = """async () => {
  const { switchArch, wireConfig } = await import('/static/js/arch.js');
  const boot = JSON.parse(document.getElementById('shiftscope-boot').textContent);
  const defaults = Object.fromEntries(Object.entries(boot.schema.properties).map(([k, p]) => [k, p.default]));
  const out = [];
  // What Play sends: the switched form, without the fields the architecture does not read.
  const to = (config, arch, options) =>
    wireConfig(boot.schema,
               { ...config, ...switchArch(boot.schema, config, config.arch, arch, options).values });
  for (const preset of boot.presets) {
    for (const arch of boot.schema.properties.arch.enum) {
      const config = { ...defaults, ...preset.config };
      out.push([preset.id, arch, to(config, arch, { preset })]);
      // Settings the user set by hand are kept, unless the architecture cannot take them.
      const odd = { ...config, norm: 'rms', norm_position: 'after', depth: 24, width: 512, dataset: 'spiral',
                    noisy_norm: true, test_shift: 1 };
      const touched = new Set(Object.keys(odd));
      out.push([`${preset.id} (edited)`, arch, to(odd, arch, { preset, touched })]);
    }
  }
  return out;
}"""


def test_every_switch_of_architecture_leaves_a_config_the_server_takes(lab: Lab) -> None:
    """The page's switch (arch.js) and what it sends against the server's own validator, from every
    preset."""
    from app.schemas import ProtocolError, parse_run_config

    lab.open()
    switched = lab.page.evaluate(SWITCH_EVERY_PRESET)
    assert len(switched) >= 2 * 4 * 10
    refused = []
    for preset_id, arch, config in switched:
        assert config["arch"] == arch
        try:
            parse_run_config(config)
        except ProtocolError as error:
            refused.append((preset_id, arch, error.to_wire()["errors"]))
    assert refused == []
    assert lab.errors == []
