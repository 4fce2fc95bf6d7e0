// Shared look of every chart: Okabe–Ito colours, projector-sized type, the depth colour ramp.

export const PALETTE = Object.freeze({
  blue: "#0072B2",
  orange: "#E69F00",
  green: "#009E73",
  vermillion: "#D55E00",
  purple: "#CC79A7",
  sky: "#56B4E9",
  yellow: "#F0E442",
  ink: "#121821",
  ink2: "#46505e",
  grid: "#e3e7ed",
  zero: "#a9b3c0",
});

const FONT = Object.freeze({
  family: '"Inter", "Segoe UI", system-ui, -apple-system, Roboto, "Helvetica Neue", Arial, sans-serif',
  size: 14, // tick labels stay ≥ 14 px: legible when projected
  color: PALETTE.ink,
});

/** Presentation mode (key F): larger type and thicker lines on every chart, for a projector.
 *  Charts read it through typeSize and strokeWidth on each draw. */
export const presentation = { on: false };
const PRESENT_TYPE = 18 / 14; // tick labels 14 px -> 18 px
export const typeSize = (px) => (presentation.on ? Math.round(px * PRESENT_TYPE) : px);
export const strokeWidth = (width) => (presentation.on ? Math.max(3, width * 1.5) : width);

/** Plotly config for all charts: read-only pictures (no mode bar, no zoom, no hover) that the
 *  page resizes itself (ResizeObserver), which keeps Plotly's per-update work small. */
export const PLOT_CONFIG = Object.freeze({
  responsive: false, // sized by baseLayout on every draw instead
  displayModeBar: false,
  displaylogo: false,
  staticPlot: true,
});

/** An axis with the common look; `overrides` wins. */
export function axis(overrides = {}) {
  return {
    showline: true,
    linecolor: PALETTE.zero,
    linewidth: strokeWidth(1) > 1 ? 2 : 1,
    ticks: "outside",
    ticklen: 4,
    tickcolor: PALETTE.zero,
    gridcolor: PALETTE.grid,
    zerolinecolor: PALETTE.zero,
    tickfont: { size: typeSize(FONT.size), color: PALETTE.ink2 },
    tickangle: 0,
    exponentformat: "e", // 1e+35 rather than a row of zeros when a run blows up
    title: { font: { size: typeSize(FONT.size), color: PALETTE.ink2 }, standoff: 6 },
    automargin: false, // fixed margins: no layout jumps when tick labels change width
    fixedrange: true,
    ...overrides,
  };
}

/** Layout pieces for a chart with no data yet: no axes, and a quiet note in the middle.
 *  `withY2` hides a second y-axis too (only for charts whose traces use one). */
export function emptyLayout(note = "appears when a run starts", { withY2 = false } = {}) {
  const hidden = { visible: false, fixedrange: true };
  return {
    xaxis: hidden,
    yaxis: hidden,
    ...(withY2 ? { yaxis2: { ...hidden, overlaying: "y", side: "right" } } : {}),
    shapes: [],
    annotations: note ? [{
      xref: "paper", x: 0.5, yref: "paper", y: 0.5, showarrow: false,
      text: note, font: { size: typeSize(14), color: PALETTE.ink2 },
    }] : [],
  };
}

/** A chart element's size: the last one a ResizeObserver reported, else measured now. Reading
 *  clientWidth after another chart changed the DOM forces a layout, so the page feeds sizes in. */
export function sizeOf(chart) {
  // A size taken while the chart's panel was hidden (0 × 0) is no size: measure again.
  if (!chart.size || chart.size.width < 2) {
    chart.size = { width: chart.element.clientWidth, height: chart.element.clientHeight };
  }
  return chart.size;
}

/** A layout with the common look, `size`d explicitly (no Plotly.Plots.resize: on Plotly 4.1 a
 *  resize landing between two Plotly.react calls replays a stale layout); `overrides` wins. */
export function baseLayout(size, overrides = {}) {
  return {
    width: Math.max(size.width, 10),
    height: Math.max(size.height, 10),
    autosize: false,
    font: { ...FONT, size: typeSize(FONT.size) },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    showlegend: false,
    hovermode: false,
    dragmode: false,
    margin: { l: 56, r: 12, t: 8, b: 40 },
    ...overrides,
  };
}

// Depth ramp, light (layer 1) to dark (deepest): sky → blue → navy, all readable on white.
const RAMP = ["#56B4E9", "#0072B2", "#0b2a4a"];

// Twin runs: A in the blue family, B in the orange family, on every chart that shows both; each
// run's depth ramp keeps the light (layer 1) → dark (deepest) order.
export const RUN_COLORS = Object.freeze({ A: PALETTE.blue, B: PALETTE.orange });
export const RUN_RAMPS = Object.freeze({ A: RAMP, B: ["#F2C45A", "#E69F00", "#7a4300"] });
// B is also dashed where lines of both runs share an axis: the difference survives greyscale.
export const RUN_DASH = Object.freeze({ A: "solid", B: "dash" });

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** `count` colours light → dark, as [r, g, b]; `ramp`: the colour stops (default: A's blues). */
export function depthRamp(count, ramp = RAMP) {
  const stops = ramp.map(hexToRgb);
  return Array.from({ length: count }, (_, i) => {
    const t = count === 1 ? 0.5 : i / (count - 1);
    const position = t * (stops.length - 1);
    const k = Math.min(Math.floor(position), stops.length - 2);
    const f = position - k;
    return stops[k].map((c, j) => Math.round(c + (stops[k + 1][j] - c) * f));
  });
}

export function rgba([r, g, b], alpha = 1) {
  return `rgba(${r},${g},${b},${alpha})`;
}
