// Links that hide controls, as TensorFlow Playground's `…_hide=true` does: a teacher links a
// lesson step with only the toggles it needs. Not part of the page state: it is how the link
// shows the page, kept in the address bar as it came.
//
//   ?preset=sigmoid-batchnorm&controls=norm     only the norm toggle (and the transport)
//   ?depth_hide=true&preset_hide=true           everything but depth and the preset menu

/** The names to hide, from a query string: `controls=a,b` keeps only those config fields;
 *  `<name>_hide=true` hides one (a config field, or `preset`, `lesson`, `more`). */
export function hiddenByLink(search, fieldNames) {
  const params = new URLSearchParams(search);
  const hidden = new Set();
  const only = params.get("controls");
  if (only !== null) {
    const kept = new Set(only.split(",").map((name) => name.trim()).filter(Boolean));
    for (const name of fieldNames) if (!kept.has(name)) hidden.add(name);
    hidden.add("more"); // "More" holds nothing but fields
  }
  for (const [name, value] of params) {
    if (name.endsWith("_hide") && value === "true") hidden.add(name.slice(0, -"_hide".length));
  }
  return hidden;
}

/** Hide what the link asks on `form`: config fields by data-field, and the named blocks. */
export function applyHiding(form, hidden) {
  for (const element of form.querySelectorAll("[data-field]")) {
    element.toggleAttribute("data-link-hidden", hidden.has(element.dataset.field));
  }
  const blocks = { preset: ".preset-field", lesson: ".lesson-field", more: "#more" };
  for (const [name, selector] of Object.entries(blocks)) {
    form.querySelector(selector)?.toggleAttribute("data-link-hidden", hidden.has(name));
  }
}
