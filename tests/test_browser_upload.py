"""Your own data on the page (static/js/upload.js) in real headless Chromium against the real
server: a bad CSV is refused with the row and column named; a good one shows its preview (rows,
classes, features, a scatter for two features), the form switches to it, and a run trains on it
with the charts receiving frames."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from browser_fixtures import Lab, query
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SMALL = {"depth": 3, "width": 16, "steps": 400, "emit_every": 5, "max_steps_per_s": 200}


def _good_csv(path: Path) -> Path:
    rng = random.Random(5)
    lines = ["height,weight,species"]
    for i in range(90):
        kind = ("fox", "hare", "owl")[i % 3]
        centre = {"fox": (40, 6), "hare": (25, 3), "owl": (30, 1.5)}[kind]
        lines.append(f"{centre[0] + rng.gauss(0, 3):.2f},{centre[1] + rng.gauss(0, 0.5):.2f},{kind}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_bad_upload_names_the_row_and_column(lab: Lab, tmp_path: Path) -> None:
    lab.open()
    expect(lab.page.locator("#btn-upload")).to_be_enabled()
    bad = tmp_path / "bad.csv"
    bad.write_text("height,weight,species\n40,6,fox\n25,three,hare\n", encoding="utf-8")
    lab.page.set_input_files("#upload-file", str(bad))
    line = lab.page.locator("#upload-error .upload-error-line")
    expect(line).to_have_text("row 3, column 2 (weight): 'three' is not a number")
    expect(line).to_have_attribute("data-row", "3")
    expect(line).to_have_attribute("data-column", "2")
    expect(lab.page.locator("#upload-error")).to_contain_text("bad.csv was not loaded")
    expect(lab.page.locator("#upload-preview")).to_be_hidden()
    # Not UTF-8: named too.
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,label\n1,caf\xe9\n".encode("latin-1"))
    lab.page.set_input_files("#upload-file", str(latin))
    expect(line).to_contain_text("row 2, column 2: byte 0xe9")
    # Chromium logs each refused request (422) as a console error; nothing else went wrong.
    assert [error for error in lab.errors if "status of 422" not in error] == []


def test_a_good_upload_previews_and_a_run_trains_on_it(lab: Lab, tmp_path: Path) -> None:
    lab.open(query(SMALL))
    expect(lab.page.locator("#btn-upload")).to_be_enabled()
    # The keyboard path: a real button (focusable, Enter presses it) that opens the picker.
    lab.page.focus("#btn-upload")
    assert lab.page.evaluate("document.activeElement.id") == "btn-upload"
    with lab.page.expect_file_chooser() as chooser:
        lab.page.click("#btn-upload")
    chooser.value.set_files(str(_good_csv(tmp_path / "animals.csv")))
    summary = lab.page.locator("#upload-summary")
    expect(summary).to_contain_text("90 rows (72 train, 18 test by the seed)")
    expect(summary).to_contain_text("2 features, standardised")
    expect(summary).to_contain_text("3 classes of “species”: fox 30, hare 30, owl 30")
    expect(lab.page.locator("#upload-scatter")).to_be_visible()
    lab.page.wait_for_function("document.getElementById('upload-scatter').data?.length === 3")
    expect(lab.page.locator("#f-dataset")).to_have_value("upload")
    lab.page.click("#btn-play")
    lab.wait("s.runFrames >= 3 && s.lastConfig.dataset === 'upload'")
    ridge = lab.value("s.drawn('chart-ridge').length")
    assert ridge == 3  # one outline per hidden layer
    lab.page.wait_for_function("document.getElementById('chart-loss').data?.some((t) => t.x?.length > 0)")
    assert lab.errors == []
