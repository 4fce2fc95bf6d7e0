// window.shiftscope: a read-only window onto the page for tests, benchmarks and the curious —
// counters, the last run's config, the page state. Nothing here steers the page except
// applyPageState, which does what a classroom will do: show another screen's state.

/** Install the facade; `shownRun()` is the `started` of the run the charts show; `charts`
 *  every chart object (the ridge pairs' own charts among them). */
export function installFacade({
  version, stats, player, socket, ridge, pageState, panels, loop, room, lessons, experiment, shownRun, charts,
}) {
  window.shiftscope = Object.freeze({
    version,
    get framesReceived() { return stats.framesReceived; },
    get framesRendered() { return stats.framesRendered; },
    get runFrames() { return stats.runFrames; },
    get runs() { return stats.runs; },
    get lastStep() { return stats.lastStep; },
    get receivedStep() { return stats.receivedStep; },
    get state() { return player.state; },
    get connected() { return socket.isOpen; },
    get lastConfig() { return player.lastConfig ? { ...player.lastConfig } : null; },
    get layers() { return [...ridge.layers]; },
    get formConfig() { return pageState.config; },
    /** The whole page state (state.js), and a way to show another one (as a classroom will). */
    get pageState() { return pageState.get(); },
    applyPageState(state) { pageState.apply(state); },
    // Compare mode and instruments.
    get framesByRun() { return { ...stats.framesByRun }; },
    get compare() { const run = shownRun(); return run?.compare ? { ...run.compare } : null; },
    get runNames() { const run = shownRun(); return run?.runs ? [...run.runs] : run ? ["A"] : []; },
    get formCompare() { return pageState.compareFields; },
    get view() { return pageState.state.view; },
    get sweepResults() { return stats.sweepResults; },
    get recordingsOpened() { return stats.recordingsOpened; },
    /** The classroom: this page's role in a room (teacher, viewer or null), its code, viewers. */
    /** The lesson shown: {lesson, step, revealed}, or null. */
    get lesson() { return lessons.state; },
    get room() { return { role: room.role, code: room.code, viewers: room.viewers ?? 0, following: room.following }; },
    get sweeping() { return player.sweeping && player.active; },
    /** The class experiment this page takes part in: its announcement, this student's value,
     *  the last class summary's students, how many summaries came and what the chart drew. */
    get experiment() {
      const copy = (value) => (value ? JSON.parse(JSON.stringify(value)) : null);
      return {
        announced: copy(experiment.experiment),
        mine: copy(experiment.mine),
        students: copy(experiment.summary?.students ?? []),
        summaries: experiment.summaries,
        classShown: !experiment.el.classBox.hidden,
      };
    },
    /** Points (or cells, or bars) each chart of a panel holds: what it has to draw. */
    panelPoints(name) { return (panels[name]?.charts ?? []).map((chart) => chart.points ?? null); },
    /** Each chart's recent draws, by element id: [[performance.now() at the end, ms], ...]
     *  (bench/bench_page.py reports their medians). */
    renderTimings() { return loop.recentTimings(); },
    /** What the chart on element `id` draws: a ridge plot's canvas outlines ({x, y} per layer),
     *  else its Plotly traces. */
    drawn(id) {
      const chart = charts.find((candidate) => candidate.element?.id === id);
      if (chart && Array.isArray(chart.outlines)) return chart.outlines;
      return document.getElementById(id)?.data ?? [];
    },
  });
}
