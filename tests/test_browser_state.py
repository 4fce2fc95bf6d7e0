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
