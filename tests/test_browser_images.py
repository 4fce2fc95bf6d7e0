"""Every chart as PNG and SVG (static/js/snapshot.js) in real headless Chromium against the real
server: a card's image holds its Plotly frame and, for the ridge plots, the outlines the page
paints on its own canvas, which Plotly's export alone leaves out; PNGs at twice the card's size.
"""

from __future__ import annotations

import struct

import pytest
from browser_fixtures import Lab

pytestmark = pytest.mark.browser

RUN = "depth=4&width=16&steps=200&emit_every=5&max_steps_per_s=0&bins=32&dataset=moons"


def _download(lab: Lab, selector: str) -> tuple[str, bytes]:
    with lab.page.expect_download() as info:
        lab.page.click(selector)
    path = info.value.path()
    assert path is not None
    with open(path, "rb") as file:
        return info.value.suggested_filename, file.read()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_ridge_card_saves_as_png_with_its_canvas_and_as_svg(lab: Lab) -> None:
    lab.open(RUN)
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done'")
    card = "#panel-layers"
    name, png = _download(lab, f"{card} .btn-image[data-format=png]")
    assert name == "shiftscope-layers.png"
    width, height = _png_size(png)
    css = lab.page.evaluate(
        "() => { const c = document.querySelector('#chart-ridge'); return [c.offsetWidth, c.offsetHeight]; }"
    )
    assert width >= 2 * css[0] and height >= 2 * css[1]  # projector resolution
    # The ridges are in it: where the page's canvas paints, the saved image differs from Plotly's
    # own export of the same chart (the card shows run A's ridge alone, at the image's origin).
    changed = lab.page.evaluate(
        """async () => {
      const { cardImage } = await import('/static/js/snapshot.js');
      const pixels = async (url) => {
        const image = new Image(); image.src = url; await image.decode();
        const canvas = document.createElement('canvas');
        canvas.width = image.width; canvas.height = image.height;
        const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
        return context.getImageData(0, 0, canvas.width, canvas.height);
      };
      const { blob } = await cardImage(document.querySelector('#panel-layers'), 'png');
      const chart = document.querySelector('#chart-ridge');
      const size = { width: chart.offsetWidth, height: chart.offsetHeight };
      const ours = await pixels(URL.createObjectURL(blob));
      const plotly = await pixels(await Plotly.toImage(chart, { format: 'png', scale: 2, ...size }));
      let differ = 0;
      for (let y = 0; y < plotly.height; y++) {
        for (let x = 0; x < plotly.width; x++) {
          const a = (y * ours.width + x) * 4, b = (y * plotly.width + x) * 4;
          const d = Math.max(...[0, 1, 2].map((k) => Math.abs(ours.data[a + k] - plotly.data[b + k])));
          if (d > 40) differ += 1;
        }
      }
      return differ / (plotly.width * plotly.height);
    }"""
    )
    assert changed > 0.02, changed  # the outlines and fills of every layer's ridge
    name, svg = _download(lab, f"{card} .btn-image[data-format=svg]")
    text = svg.decode()
    assert name == "shiftscope-layers.svg" and text.startswith("<svg")
    assert 'class="ridges"' in text and "data:image/png;base64," in text  # the canvas, embedded
    assert 'class="main-svg"' in text and "<text" in text  # Plotly's own frame, its labels vector text
    assert lab.errors == []


def test_a_card_of_plotly_charts_saves_every_chart(lab: Lab) -> None:
    lab.open(RUN)
    lab.page.click("#btn-play")
    lab.wait("s.state === 'done'")
    name, svg = _download(lab, "section.card:has(#chart-loss) .btn-image[data-format=svg]")
    assert name == "shiftscope-loss.svg" and svg.decode().count("<svg") >= 2  # the card's frame, the chart
    assert lab.errors == []
