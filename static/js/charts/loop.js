// One render per animation frame. Frames can arrive faster than the screen refreshes (and
// far faster than Plotly redraws on a slow laptop), so charts only mark themselves dirty when
// data arrives; this loop draws the newest state (a `prepare` hook first hands the charts the
// next waiting frame: frames.js spreads a burst over the following animation frames). The main chart, and any chart drawn on its own
// canvas (`drawsEveryFrame`: ~1 ms), is drawn on every animation frame that has new data. The
// Plotly charts take turns, each at most every `secondaryEveryMs`: any data change costs Plotly a
// full redraw (~15-25 ms for a small chart on a 2-core laptop), so one animation frame never pays
// for more than one of them, and together they stay well under the main chart's budget. A chart
// whose `hidden` is true (its panel is not shown) keeps its data and its dirty mark and is drawn
// when it is shown again.

const DEFAULTS = Object.freeze({
  secondaryEveryMs: 300, // ~3 redraws/s per small chart: history and bars read fine at that pace
  timings: 1200,         // recent draw times kept per chart (window.shiftscope.renderTimings): 20 s at 60/s
});

export class RenderLoop {
  /** `primary` and `secondary` charts have render() → whether they drew; `afterRender(drewPrimary)`
   *  runs after each animation frame's drawing (status line, counters); `options.prepare()`, if
   *  given, runs before it (hands the charts the next waiting frame) and returns whether more
   *  work is waiting for the next animation frame. */
  constructor(primary, secondary, afterRender, options = {}) {
    this.primary = primary;
    this.secondary = secondary;
    this.afterRender = afterRender;
    this.prepare = options.prepare ?? (() => false);
    this.options = { ...DEFAULTS, ...options };
    this.lastDrawn = secondary.map(() => -Infinity);
    this.turn = 0;
    this.queued = false;
    this.timings = new Map(); // chart element id -> [[time, ms], ...], the newest last
    this.tick = (now) => this.render(now);
  }

  request() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(this.tick);
  }

  /** Draw everything now (after a reset), ignoring the turn-taking. */
  flush() {
    const drew = this.draw(this.primary);
    this.secondary.forEach((chart, i) => { if (!chart.hidden && this.draw(chart)) this.lastDrawn[i] = performance.now(); });
    this.afterRender(drew);
  }

  render(now) {
    this.queued = false;
    const more = this.prepare();
    const drew = this.draw(this.primary);
    const count = this.secondary.length;
    let plotlyDrawn = false;
    for (let k = 0; k < count; k++) {
      const i = (this.turn + k) % count;
      const chart = this.secondary[i];
      if (!chart.dirty || chart.hidden) continue;
      if (chart.drawsEveryFrame) {
        this.draw(chart);
        continue;
      }
      if (plotlyDrawn || now - this.lastDrawn[i] < this.options.secondaryEveryMs) continue;
      this.draw(chart);
      this.lastDrawn[i] = now;
      this.turn = (i + 1) % count;
      plotlyDrawn = true; // one Plotly chart per animation frame
    }
    this.afterRender(drew);
    const waiting = (chart) => chart.dirty && !chart.hidden;
    if (more || waiting(this.primary) || this.secondary.some(waiting)) this.request();
  }

  /** chart.render(), timed: what each chart's draws cost is the page's main performance figure. */
  draw(chart) {
    const start = performance.now();
    const drew = chart.render();
    if (drew) {
      const end = performance.now();
      const key = chart.element?.id ?? "?";
      let times = this.timings.get(key);
      if (!times) this.timings.set(key, (times = []));
      times.push([end, end - start]);
      if (times.length > this.options.timings) times.splice(0, times.length - this.options.timings);
    }
    return drew;
  }

  /** Recent draw times per chart element id: [[performance.now() at the end, ms], ...]. */
  recentTimings() {
    return Object.fromEntries([...this.timings].map(([key, times]) => [key, times.map((t) => [...t])]));
  }
}
