// Twin runs (compare mode): which run a message belongs to, and each run's view of `started`.
// A single run is run "A" with no twin; its frames carry no `run` field.

/** The run a frame (or a twin's `state`) belongs to: "A" or "B"; a single run's frames are A's. */
export function runOf(message) {
  return message.run ?? "A";
}

/** The runs a `started` message announces: ["A"] for a single run, ["A", "B"] for twins. */
export function runsOf(started) {
  if (!started) return [];
  return Array.isArray(started.runs) && started.runs.length ? started.runs : ["A"];
}

export function isCompare(started) {
  return runsOf(started).length > 1;
}

/** `started` as one run sees it: that run's config and layers. In compare mode the server
 *  names each run's entries (`layers_by_run`): twins may differ in depth or architecture. */
export function runView(started, run) {
  if (!started) return null;
  const config = started.configs?.[run] ?? started.config;
  const layers = started.layers_by_run?.[run] ?? started.layers;
  return { ...started, config, layers };
}

/** What the twins differ in, for titles: [["norm", "none", "batch"], …]. */
export function differences(started) {
  const compare = started?.compare ?? {};
  return Object.keys(compare).map((field) => [field, started.configs?.A?.[field], started.configs?.B?.[field]]);
}
