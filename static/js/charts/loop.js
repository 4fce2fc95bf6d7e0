// One render per animation frame. Frames can arrive faster than the screen refreshes (and
// far faster than Plotly redraws on a slow laptop), so charts only mark themselves dirty when
// data arrives; this loop draws the newest state. The main chart is drawn on every animation
// frame that has new data; the small charts take turns, each at most `secondaryEveryMs`, so
// one animation frame never pays for all four Plotly redraws. A chart whose `hidden` is true (its
// panel is not shown) keeps its data and its dirty mark and is drawn when it is shown again.

const DEFAULTS = Object.freeze({ secondaryEveryMs: 150 });

export class RenderLoop {
  /** `primary` and `secondary` charts have render() → whether they drew; `afterRender(drewPrimary)`
   *  runs after each animation frame's drawing (status line, counters). */
  constructor(primary, secondary, afterRender, options = {}) {
    this.primary = primary;
    this.secondary = secondary;
    this.afterRender = afterRender;
    this.options = { ...DEFAULTS, ...options };
    this.lastDrawn = secondary.map(() => -Infinity);
    this.turn = 0;
    this.queued = false;
    this.tick = (now) => this.render(now);
  }

  request() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(this.tick);
  }

  /** Draw everything now (after a reset), ignoring the turn-taking. */
  flush() {
    const drew = this.primary.render();
    this.secondary.forEach((chart, i) => { if (!chart.hidden && chart.render()) this.lastDrawn[i] = performance.now(); });
    this.afterRender(drew);
  }

  render(now) {
    this.queued = false;
    const drew = this.primary.render();
    const count = this.secondary.length;
    for (let k = 0; k < count; k++) {
      const i = (this.turn + k) % count;
      const chart = this.secondary[i];
      if (!chart.dirty || chart.hidden || now - this.lastDrawn[i] < this.options.secondaryEveryMs) continue;
      chart.render();
      this.lastDrawn[i] = now;
      this.turn = (i + 1) % count;
      break; // one small chart per animation frame
    }
    this.afterRender(drew);
    const waiting = (chart) => chart.dirty && !chart.hidden;
    if (waiting(this.primary) || this.secondary.some(waiting)) this.request();
  }
}
