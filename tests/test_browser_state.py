"""The page's state in one object (static/js/state.js), in real headless Chromium: it is
complete and serialisable, a link restores it, and another page shown it shows the same thing
(what the classroom will do with every student's screen).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from browser_fixtures import Lab, open_lab
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def second_lab(chromium: object, lab_server: str) -> Iterator[Lab]:
    with open_lab(chromium, lab_server) as lab:
        yield lab


def _state(lab: Lab) -> dict:
    return lab.value("s.pageState")  # type: ignore[return-value]


def test_the_page_state_is_complete_and_survives_json(lab: Lab) -> None:
    lab.open("preset=compare-bn&depth=5&view=drift")
    state = _state(lab)
    assert state["preset"] == "compare-bn" and state["view"] == "drift"
    assert state["config"]["depth"] == 5 and state["config"]["norm"] == "none"
    assert state["compare"] == {"on": True, "fields": {"norm": "batch"}}
    assert state["chart"]["values"] == "pre" and state["chart"]["band"] == -1
    # Every config field the form has, and nothing that JSON would change.
    schema = lab.page.evaluate("JSON.parse(document.getElementById('shiftscope-boot').textContent).schema")
    assert set(state["config"]) == set(schema["properties"])
    assert json.loads(json.dumps(state)) == state
    # The form edits the state: a key press changes it, and the address bar follows it.
    lab.page.keyboard.press("3")
    lab.wait("s.pageState.config.norm === 'layer'")
    lab.page.wait_for_function("new URLSearchParams(location.search).get('norm') === 'layer'")
    assert lab.errors == []


def test_another_page_shown_the_state_shows_the_same_and_so_does_the_link(lab: Lab, second_lab: Lab) -> None:
    lab.open("preset=gradients&lr=0.02&b.lr=0.2&view=layers")
    lab.page.check("#ridge-post")
    lab.page.click('label[for="view-gradients"]')
    lab.wait("s.view === 'gradients'")
    state = _state(lab)
    # The link's b.* fields are all of B's: they replace the preset's comparison.
    assert state["compare"]["fields"] == {"lr": 0.2} and state["chart"]["values"] == "post"

    second_lab.open()
    assert _state(second_lab)["preset"] == "sigmoid-saturation"
    second_lab.page.evaluate("(state) => window.shiftscope.applyPageState(state)", state)
    assert _state(second_lab) == state
    expect(second_lab.page.locator("#preset")).to_have_value("gradients")
    expect(second_lab.page.locator("#f-lr")).to_have_value("0.02")
    expect(second_lab.page.locator("#panel-gradients")).to_be_visible()
    expect(second_lab.page.locator("#ridge-post")).to_be_checked()
    # Its address bar now says what the first page's says: the link restores the same state.
    second_lab.page.wait_for_function(
        "(q) => location.search === q", arg=lab.page.evaluate("location.search")
    )
    third = lab.page.evaluate("location.search")
    lab.open(third)
    restored = _state(lab)
    assert {k: restored[k] for k in ("preset", "config", "compare", "view")} == {
        k: state[k] for k in ("preset", "config", "compare", "view")
    }
    assert lab.errors == [] and second_lab.errors == []


def test_state_to_query_and_back_is_the_identity_on_what_a_link_carries(lab: Lab) -> None:
    lab.open()
    result = lab.page.evaluate(
        """async () => {
      const { toQuery, fromQuery } = await import('/static/js/state.js');
      const boot = JSON.parse(document.getElementById('shiftscope-boot').textContent);
      const state = window.shiftscope.pageState;
      const order = Object.keys(boot.schema.properties);
      const fields = { norm: 'batch', noisy_norm: true };
      const on = { ...state, compare: { on: true, fields }, view: 'ics' };
      const off = { ...state, compare: { on: false, fields: null } };
      return {
        state, on: fromQuery(toQuery(on, order), boot.schema),
        off: fromQuery(toQuery(off, order, { norm: 'batch' }), boot.schema),
        plain: fromQuery(toQuery(state, order), boot.schema),
      };
    }"""
    )
    state = result["state"]
    assert result["on"]["config"] == state["config"] and result["on"]["preset"] == state["preset"]
    assert result["on"]["compare"] == {"on": True, "fields": {"norm": "batch", "noisy_norm": True}}
    assert result["on"]["view"] == "ics"
    assert result["off"]["compare"] == {"on": False, "fields": None}  # a preset's comparison switched off
    assert result["plain"]["compare"] is None and result["plain"]["view"] is None  # the preset's, layers


# Every config input the form has, read back as the state would type it.
FORM_VALUES = """() => {
  const boot = JSON.parse(document.getElementById('shiftscope-boot').textContent);
  const form = document.getElementById('config-form');
  const values = {};
  for (const [name, prop] of Object.entries(boot.schema.properties)) {
    const element = form.elements.namedItem(name);
    if (!element) continue;
    if (prop.type === 'boolean') values[name] = element.checked;
    else if (element.value === '') values[name] = null;
    else if (prop.type === 'integer' || prop.type === 'number') values[name] = Number(element.value);
    else values[name] = element.value;
  }
  return values;
}"""


CHANGED = {"depth": 4, "lr": 0.05, "norm": "layer", "activation": "tanh", "seed": 7, "steps": 40}
CHANGED |= {"noisy_norm": True, "drift_lag": 3}


def test_the_form_is_drawn_from_the_state_and_edits_it(lab: Lab) -> None:
    sent: list[dict] = []

    def on_socket(ws: object) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)) if '"start"' in payload else None)  # type: ignore[attr-defined]

    lab.page.on("websocket", on_socket)
    lab.open()
    state = _state(lab)
    assert state["preset"] == "sigmoid-saturation"
    wanted = {
        **state,
        "preset": "relu-dying",
        "config": {**state["config"], **CHANGED},
        "compare": {"on": True, "fields": {"norm": "batch"}},
        "view": "drift",
        "chart": {**state["chart"], "values": "post", "x": "layer"},
    }
    lab.page.evaluate("(state) => window.shiftscope.applyPageState(state)", wanted)

    # The state is what was applied, and every input of the form shows it.
    assert _state(lab) == wanted
    form = lab.page.evaluate(FORM_VALUES)
    assert form == {name: wanted["config"][name] for name in form}
    assert len(form) >= 25
    expect(lab.page.locator("#preset")).to_have_value("relu-dying")
    expect(lab.page.locator("#compare-on")).to_be_checked()
    expect(lab.page.locator("#compare-0-value")).to_have_value("batch")
    expect(lab.page.locator("#view-drift")).to_be_checked()
    expect(lab.page.locator("#ridge-post")).to_be_checked()
    expect(lab.page.locator("#ridge-x-layer")).to_be_checked()
    # So does the address bar.
    lab.page.wait_for_function(
        "() => { const q = new URLSearchParams(location.search);"
        " return q.get('depth') === '4' && q.get('lr') === '0.05'"
        " && q.get('b.norm') === 'batch' && q.get('view') === 'drift'; }"
    )

    # An input written without an edit is not read: the state stays the source of the config,
    # and applying a state draws the form from it again.
    lab.page.evaluate("document.getElementById('f-seed').value = '99'")
    assert lab.value("s.pageState.config.seed") == 7
    lab.page.evaluate("(state) => window.shiftscope.applyPageState(state)", {"config": {"seed": 7}})
    expect(lab.page.locator("#f-seed")).to_have_value("7")

    # An edit goes to the state, and the URL follows it.
    lab.page.fill("#f-depth", "6")
    lab.wait("s.pageState.config.depth === 6")
    lab.page.click("label[for=f-norm-none]")
    lab.wait("s.pageState.config.norm === 'none'")
    lab.page.wait_for_function("new URLSearchParams(location.search).get('depth') === '6'")

    # Play sends the state's config and comparison.
    lab.page.click("#btn-play")
    lab.wait("s.runs >= 1")
    start = sent[-1]
    config = {**wanted["config"], "depth": 6, "norm": "none"}
    assert start["config"] == {name: config[name] for name in start["config"]}
    # Only the fields an MLP does not read stay off the wire.
    transformer_only = {"task", "seq_len", "vocab", "d_model", "heads", "warmup_steps"}
    assert set(config) - set(start["config"]) <= transformer_only
    assert start["compare"] == lab.value("s.pageState.compare.fields")
    assert lab.errors == []
