// Keyboard control for a projected demo: Space play/pause, N step, R reset, 1–5 norm,
// ←/→ learning rate, P preset menu, C compare A / B, F presentation mode,
// PageDown/PageUp the lesson's next/previous step, [ / ] one recorded frame, Home / End the first
// recorded frame / live. Keys are left alone while the user types in a field.

const TYPING = new Set(["text", "number", "search", "email", "url", "tel", "password"]);

/** True when a key press belongs to the focused element rather than to the page. */
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "SELECT" || tag === "TEXTAREA") return true;
  return tag === "INPUT" && TYPING.has(target.type);
}

/** Arrow keys already move sliders and radio groups: those keep them. */
function ownsArrows(target) {
  return target instanceof HTMLInputElement && (target.type === "range" || target.type === "radio");
}

/** Install the shortcuts on `target`; `actions` has togglePlay, step, reset, selectNorm(i),
 *  nudgeLearningRate(±1), focusPreset and toggleCompare. Returns a function that removes them. */
export function installKeyboard(target, actions) {
  const onKey = (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    const key = event.key;
    const arrow = key === "ArrowLeft" || key === "ArrowRight";
    // A held key repeats ~30 times a second, past the server's message rate limit; only the
    // learning-rate arrows repeat (their messages are coalesced), other keys act once per press.
    if (event.repeat && !arrow) {
      if (key === " " || key === "Spacebar") event.preventDefault(); // no page scroll either
      return;
    }
    let handled = true;
    if (key === " " || key === "Spacebar") {
      // Space is play/pause everywhere, even on a focused button (Enter still presses buttons):
      // after clicking Play with the mouse, Space must pause, not press Play again.
      actions.togglePlay();
    } else if (key === "n" || key === "N") {
      actions.step();
    } else if (key === "r" || key === "R") {
      actions.reset();
    } else if (key === "p" || key === "P") {
      actions.focusPreset();
    } else if ((key === "c" || key === "C") && actions.toggleCompare) {
      actions.toggleCompare();
    } else if ((key === "f" || key === "F") && actions.togglePresent) {
      actions.togglePresent();
    } else if ((key === "PageDown" || key === "PageUp") && actions.lessonStep) {
      handled = actions.lessonStep(key === "PageDown" ? 1 : -1); // a presentation clicker's keys
    } else if ((key === "[" || key === "]") && actions.timelineStep) {
      handled = actions.timelineStep(key === "]" ? 1 : -1); // one recorded frame
    } else if ((key === "Home" || key === "End") && actions.timelineEdge && !ownsArrows(event.target)) {
      handled = actions.timelineEdge(key === "End" ? 1 : -1); // the first recorded frame, or live
    } else if (/^[1-9]$/.test(key)) {
      handled = actions.selectNorm(Number(key) - 1);
    } else if (arrow && !ownsArrows(event.target)) {
      actions.nudgeLearningRate(key === "ArrowRight" ? 1 : -1);
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  };
  target.addEventListener("keydown", onKey);
  return () => target.removeEventListener("keydown", onKey);
}
