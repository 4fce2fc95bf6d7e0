// Save a card's charts as one PNG or SVG image, at projector resolution (issue: record, replay,
// export). Plotly's own export (Plotly.toImage) draws a chart's axes, traces and notes but not the
// ridge plots' outlines, which the page paints on a canvas laid over Plotly's plot area
// (charts/ridge.js): those are added here, at the canvas's place. A card with several charts
// (the gradients' ridge pair and their lines, say) saves them side by side as the page lays them
// out.
//
//   const { name, blob } = await cardImage(card, "png");   // or "svg"

/* global Plotly */

export const SCALE = 2; // a 960 px wide card saves 1920 px wide: a projector's width
const SVG_NS = "http://www.w3.org/2000/svg";

/** The charts of a card that are shown: Plotly graphs (elements Plotly has drawn into). */
export function chartsOf(card) {
  return [...card.querySelectorAll(".chart")].filter((el) => el._fullLayout && el.offsetWidth > 0 && el.offsetHeight > 0);
}

function place(element, origin) {
  const box = element.getBoundingClientRect();
  return { x: box.left - origin.left, y: box.top - origin.top, width: box.width, height: box.height };
}

/** The ridge canvas laid over `chart` (charts/ridge.js puts it right after the chart), if any. */
function overlayOf(chart) {
  const next = chart.nextElementSibling;
  return next && next.tagName === "CANVAS" && next.classList.contains("ridge-canvas") && next.width > 0 ? next : null;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the chart's image could not be drawn"));
    image.src = url;
  });
}

async function plotlyImage(chart, format) {
  return Plotly.toImage(chart, { format, width: chart.offsetWidth, height: chart.offsetHeight, scale: format === "png" ? SCALE : 1 });
}

/** The bounding box of the card's charts (their canvases included), in CSS pixels. */
function frameOf(charts) {
  const boxes = charts.flatMap((chart) => [chart, overlayOf(chart)].filter(Boolean).map((el) => el.getBoundingClientRect()));
  const left = Math.min(...boxes.map((b) => b.left));
  const top = Math.min(...boxes.map((b) => b.top));
  const right = Math.max(...boxes.map((b) => b.right));
  const bottom = Math.max(...boxes.map((b) => b.bottom));
  return { left, top, width: Math.ceil(right - left), height: Math.ceil(bottom - top) };
}

async function cardPNG(charts, origin, background) {
  const canvas = document.createElement("canvas");
  canvas.width = origin.width * SCALE;
  canvas.height = origin.height * SCALE;
  const context = canvas.getContext("2d");
  context.fillStyle = background;
  context.fillRect(0, 0, canvas.width, canvas.height);
  for (const chart of charts) {
    const at = place(chart, origin);
    const image = await loadImage(await plotlyImage(chart, "png"));
    context.drawImage(image, at.x * SCALE, at.y * SCALE, at.width * SCALE, at.height * SCALE);
    const overlay = overlayOf(chart);
    if (overlay) {
      const over = place(overlay, origin);
      context.drawImage(overlay, over.x * SCALE, over.y * SCALE, over.width * SCALE, over.height * SCALE);
    }
  }
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function cardSVG(charts, origin, background) {
  const root = document.createElementNS(SVG_NS, "svg");
  root.setAttribute("xmlns", SVG_NS);
  root.setAttribute("width", String(origin.width));
  root.setAttribute("height", String(origin.height));
  root.setAttribute("viewBox", `0 0 ${origin.width} ${origin.height}`);
  const fill = document.createElementNS(SVG_NS, "rect");
  for (const [key, value] of [["width", "100%"], ["height", "100%"], ["fill", background]]) fill.setAttribute(key, value);
  root.append(fill);
  for (const chart of charts) {
    const at = place(chart, origin);
    const url = await plotlyImage(chart, "svg");
    const text = decodeURIComponent(url.slice(url.indexOf(",") + 1));
    const svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    svg.setAttribute("x", String(at.x));
    svg.setAttribute("y", String(at.y));
    root.append(document.importNode(svg, true));
    const overlay = overlayOf(chart);
    if (overlay) { // the ridges: a bitmap at the canvas's resolution, inside the vector frame
      const over = place(overlay, origin);
      const image = document.createElementNS(SVG_NS, "image");
      for (const [key, value] of [["x", over.x], ["y", over.y], ["width", over.width], ["height", over.height]]) {
        image.setAttribute(key, String(value));
      }
      image.setAttribute("href", overlay.toDataURL("image/png"));
      image.setAttribute("class", "ridges");
      root.append(image);
    }
  }
  const text = new XMLSerializer().serializeToString(root);
  return new Blob([text], { type: "image/svg+xml" });
}

/** One image of the card's shown charts: {name, blob}; throws when it shows none. */
export async function cardImage(card, format, name = null) {
  const charts = chartsOf(card);
  if (!charts.length) throw new Error("this panel shows no chart yet");
  name = name ?? (card.id || charts[0].id || "chart").replace(/^chart-/, "");
  const origin = frameOf(charts);
  const background = getComputedStyle(card).backgroundColor || "#ffffff";
  const blob = format === "svg" ? await cardSVG(charts, origin, background) : await cardPNG(charts, origin, background);
  return { name: `shiftscope-${name.replace(/^panel-|^card-/, "")}.${format}`, blob };
}

/** Put PNG and SVG buttons in the header of every card that holds a chart; `saved(name, blob)`
 *  gets each image, `failed(error)` what went wrong. */
export function installImageButtons(root, saved, failed) {
  for (const head of root.querySelectorAll(".card-head")) {
    const card = head.parentElement;
    if (!card.querySelector(".chart")) continue;
    const box = document.createElement("span");
    box.className = "image-buttons";
    for (const format of ["png", "svg"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-quiet btn-image";
      button.dataset.format = format;
      button.textContent = format.toUpperCase();
      button.title = `Save these charts as ${format.toUpperCase()}${format === "png" ? ` (${SCALE}× resolution)` : ""}`;
      button.addEventListener("click", async () => {
        try {
          const { name, blob } = await cardImage(card, format);
          saved(name, blob);
        } catch (error) {
          failed(error);
        }
      });
      box.append(button);
    }
    head.append(box);
  }
}
