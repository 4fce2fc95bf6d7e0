"""Export as script from the page (static/js/export.js) in real headless Chromium against the
real server: the button downloads the run the form describes, run B's too in compare mode, and
the file is the server's script for exactly that config (tests/test_export.py runs such files).
"""

from __future__ import annotations

import pytest
from browser_fixtures import Lab
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _download(lab: Lab, button: str) -> tuple[str, str]:
    with lab.page.expect_download() as info:
        lab.page.click(button)
    download = info.value
    path = download.path()
    assert path is not None
    with open(path, encoding="utf-8") as file:
        return download.suggested_filename, file.read()


def test_the_form_exports_as_a_standalone_script(lab: Lab) -> None:
    lab.open("preset=sigmoid-batchnorm&lr=0.3&seed=4")
    expect(lab.page.locator("#btn-export-script")).to_have_text("Export as script")
    expect(lab.page.locator("#btn-export-script-b")).to_be_hidden()
    name, text = _download(lab, "#btn-export-script")
    assert name == "shiftscope-mlp-batch.py"
    assert text.startswith("#!/usr/bin/env python3")
    assert (
        "    lr: float = 0.3" in text
        and "    seed: int = 4" in text
        and "    activation: str = 'sigmoid'" in text
    )
    assert lab.errors == []


def test_compare_mode_exports_either_run(lab: Lab) -> None:
    lab.open("preset=compare-bn")
    expect(lab.page.locator("#btn-export-script")).to_have_text("Export A as script")
    expect(lab.page.locator("#btn-export-script-b")).to_be_visible()
    name_a, text_a = _download(lab, "#btn-export-script")
    name_b, text_b = _download(lab, "#btn-export-script-b")
    assert "    norm: str = 'none'" in text_a and name_a == "shiftscope-mlp-nonorm.py"
    assert "    norm: str = 'batch'" in text_b and name_b == "shiftscope-mlp-batch.py"
    assert lab.errors == []
