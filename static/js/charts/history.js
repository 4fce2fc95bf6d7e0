// A bounded record of per-frame values over steps, for the charts that draw history.

const DEFAULTS = Object.freeze({ maxPoints: 600 });

/** Columns of numbers indexed by frame; past `maxPoints` rows every other old row is dropped, so
 *  the whole run stays visible at half the resolution and Plotly's arrays never grow unbounded. */
export class History {
  constructor(columns, options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.names = columns;
    this.clear();
  }

  clear() {
    this.columns = Object.fromEntries(this.names.map((name) => [name, []]));
    this.length = 0;
  }

  push(row) {
    for (const name of this.names) this.columns[name].push(row[name] ?? null);
    this.length += 1;
    if (this.length > this.options.maxPoints) this.thin();
  }

  thin() {
    const keep = (_, i, all) => i % 2 === 0 || i === all.length - 1;
    for (const name of this.names) this.columns[name] = this.columns[name].filter(keep);
    this.length = this.columns[this.names[0]].length;
  }
}

/** Smallest and largest finite value over several arrays. */
export function extent(...arrays) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const values of arrays) {
    for (const value of values) {
      if (value === null || !Number.isFinite(value)) continue;
      if (value < lo) lo = value;
      if (value > hi) hi = value;
    }
  }
  return [lo, hi];
}

/** The end of a step axis that grows with the run: a round number some way past `step`, never
 *  past `total`, and never shrinking, so the curve fills the chart from the start without the
 *  axis rescaling on every frame. */
export function growingEnd(current, step, total) {
  if (step < current * 0.92 && current > 0) return current;
  const want = Math.max(step * 1.6, 10);
  const power = 10 ** Math.floor(Math.log10(want));
  const round = [1, 2, 2.5, 5, 10].map((m) => m * power).find((value) => value >= want);
  return Math.min(total, Math.max(current, round));
}
