// Axis ranges that hold still: grow at once when data leaves them, shrink only after the data
// has stayed well inside for a while, and snap to round numbers so the ticks do not crawl.

const DEFAULTS = Object.freeze({
  padding: 0.04,      // fraction of the data span added on each side
  shrinkBelow: 0.45,  // shrink when the data covers less than this fraction of the axis...
  shrinkAfterMs: 2500, // ...for this long
  minSpan: 1e-6,       // the narrowest range shown, for data that barely moves
});

/** Round step for about `count` ticks over `span`: 1, 2 or 5 × a power of ten. */
export function niceStep(span, count = 5) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10) * power;
}

/** [lo, hi] widened to round numbers. */
export function niceRange(lo, hi) {
  const step = niceStep(Math.max(hi - lo, DEFAULTS.minSpan * Math.max(1, Math.abs(lo))));
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

/** One axis's range with hysteresis. Call fit(lo, hi) with the data's extent on every render. */
export class StableRange {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.reset();
  }

  reset() {
    this.range = null;
    this.shrinkSince = null;
  }

  /** The range to draw for data spanning [lo, hi]; null when there is nothing to draw yet. */
  fit(lo, hi, now = performance.now()) {
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return this.range;
    const { padding, shrinkBelow, shrinkAfterMs, floor, ceiling, symmetric } = this.options;
    if (symmetric) [lo, hi] = [-Math.max(-lo, hi), Math.max(-lo, hi)];
    const pad = Math.max((hi - lo) * padding, this.options.minSpan / 2);
    let want = niceRange(lo - pad, hi + pad);
    if (floor !== undefined) want = [Math.max(want[0], floor), want[1]];
    if (ceiling !== undefined) want = [want[0], Math.min(want[1], ceiling)];
    if (this.range === null) {
      this.range = want;
      return this.range;
    }
    const [curLo, curHi] = this.range;
    if (lo < curLo || hi > curHi) {
      // Grow at once, keeping the side that still fits so the axis does not jump both ways.
      this.range = [Math.min(curLo, want[0]), Math.max(curHi, want[1])];
      this.shrinkSince = null;
    } else if ((hi - lo) < shrinkBelow * (curHi - curLo)) {
      this.shrinkSince ??= now;
      if (now - this.shrinkSince >= shrinkAfterMs) {
        this.range = want;
        this.shrinkSince = null;
      }
    } else {
      this.shrinkSince = null;
    }
    return this.range;
  }
}
