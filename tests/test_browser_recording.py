"""A recording saved and opened again (static/js/recording.js) in real headless Chromium: the
file replays on a page with no run on the server, every recorded step still reachable; a file
that is not a recording is refused with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_fixtures import Lab
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DONE = "depth=3&width=16&steps=120&emit_every=10&max_steps_per_s=0&bins=16&dataset=moons"


def test_a_saved_recording_opens_again_and_replays_without_a_run(lab: Lab, tmp_path: Path) -> None:
    lab.open(DONE)
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done' && s.lastStep === 120")
    with lab.page.expect_download() as info:
        lab.page.click("#btn-save-recording")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    record = json.loads(saved.read_text(encoding="utf-8"))
    assert saved.name == "shiftscope-mlp-none-step120.recording.json"
    assert record["format"] == "shiftscope-recording" and record["version"] == 1
    assert record["started"]["config"]["depth"] == 3 and record["frames"][-1]["step"] == 120
    # A fresh page: nothing run, the recording opened from the file picker.
    lab.open("")
    runs = lab.value("s.runs")
    lab.page.set_input_files("#recording-file", str(saved))
    lab.wait("s.recordingsOpened === 1 && s.lastStep === 120")
    assert lab.value("s.runs") == runs  # nothing trained on the server
    expect(lab.page.locator("#timeline-step")).to_have_text("step 120")  # replaying, not live
    expect(lab.page.locator("#status-step")).to_have_text("120")
    lab.page.locator("#main").focus()
    lab.page.keyboard.press("Home")
    lab.wait("s.lastStep === 0")
    lab.page.keyboard.press("]")
    lab.wait("s.lastStep > 0")
    assert lab.errors == []


def test_a_file_that_is_not_a_recording_is_refused_with_the_reason(lab: Lab, tmp_path: Path) -> None:
    lab.open("")
    statistics = tmp_path / "stats.json"
    statistics.write_text(json.dumps({"format": "shiftscope-statistics", "version": 1, "frames": []}))
    lab.page.set_input_files("#recording-file", str(statistics))
    alert = lab.page.locator("#alerts")
    expect(alert).to_contain_text("Could not open stats.json")
    expect(alert).to_contain_text("no histograms to replay")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    lab.page.set_input_files("#recording-file", str(broken))
    expect(alert).to_contain_text("not JSON")
    assert lab.value("s.recordingsOpened") == 0
