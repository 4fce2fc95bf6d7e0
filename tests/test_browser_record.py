"""The page's record of a run, saved as CSV and JSON (static/js/recorder.js), in real headless
Chromium against the real server: one CSV row per frame and layer, and its numbers are the
server's (a same-seed, unpaced run is deterministic: the Trainer here gives the same frames).
"""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest
from browser_fixtures import Lab
from playwright.sync_api import expect

from app.spec import RunSpec
from app.training import Trainer

pytestmark = pytest.mark.browser

RUN = {
    "dataset": "moons",
    "depth": 3,
    "width": 16,
    "steps": 60,
    "emit_every": 5,
    "max_steps_per_s": 0,
    "bins": 16,
}


def _download(lab: Lab, button: str) -> tuple[str, str]:
    with lab.page.expect_download() as info:
        lab.page.click(button)
    path = info.value.path()
    assert path is not None
    with open(path, encoding="utf-8") as file:
        return info.value.suggested_filename, file.read()


def _server_frames(config: dict) -> dict[int, dict]:
    """The frames of the run `config` describes, by step (unpaced, same seed: deterministic)."""
    spec = RunSpec(**{**config, "max_steps_per_s": 0})  # `started` carries every field
    return {snapshot.step: snapshot.to_wire() for snapshot in Trainer(spec).run(threading.Event())}


def test_a_finished_run_downloads_as_csv_and_json_with_the_servers_numbers(lab: Lab) -> None:
    query = "&".join(f"{key}={value}" for key, value in RUN.items())
    lab.open(query)
    expect(lab.page.locator("#btn-record-csv")).to_be_disabled()  # nothing recorded yet
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done'")
    expect(lab.page.locator("#btn-record-csv")).to_be_enabled()
    name, text = _download(lab, "#btn-record-json")
    record = json.loads(text)
    assert name == "shiftscope-mlp-none-step60.json"
    assert record["format"] == "shiftscope-statistics" and record["version"] == 1
    config = record["config"]
    assert config["depth"] == 3 and config["dataset"] == "moons"
    frames = _server_frames(config)
    steps = [f["step"] for f in record["frames"]]
    # What the page received: a slow page skips ordinary frames, never the first, the
    # measurements (test accuracy at 0 and at the end) or their order.
    assert steps[0] == 0 and steps[-1] == 60 and steps == sorted(set(steps))
    name, text = _download(lab, "#btn-record-csv")
    assert name == "shiftscope-mlp-none-step60.csv"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(steps) * len(frames[0]["layers"])
    for row in rows:
        frame = frames[int(row["step"])]
        layer = next(layer for layer in frame["layers"] if layer["name"] == row["layer"])
        assert float(row["loss"]) == pytest.approx(frame["loss"], rel=1e-9)
        for side in ("pre", "post"):
            for stat in ("mean", "std", "p15", "p50", "p85"):
                assert float(row[f"{side}_{stat}"]) == pytest.approx(layer[side][stat], rel=1e-9, abs=1e-12)
        assert float(row["saturated"]) == pytest.approx(layer["saturated"])
        assert (row["test_acc"] == "") == (frame["test_acc"] is None)
    assert lab.errors == []


def test_the_record_is_thinned_evenly_past_its_cap(lab: Lab) -> None:
    lab.open()
    kept = lab.page.evaluate(
        """async () => {
      const { Recorder } = await import('/static/js/recorder.js');
      const recorder = new Recorder(100);
      recorder.reset({ config: {} });
      const layer = { name: 'layer1', pre: { mean: 0 }, post: { mean: 0 } };
      for (let step = 0; step < 1000; step++) {
        recorder.add({ step, test_acc: step % 100 === 0 ? 0.5 : null, layers: [layer] });
      }
      return recorder.frames.map((f) => f.step);
    }"""
    )
    assert len(kept) <= 100
    assert kept == sorted(kept) and kept[0] == 0
    assert all(step in kept for step in range(0, 1000, 100))  # the measurements stay
    gaps = {b - a for a, b in zip(kept, kept[1:], strict=False)}
    assert max(gaps) <= 16  # evenly thinned: no long hole
