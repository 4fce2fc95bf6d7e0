// "This run: …" beside a preset's quoted figures. A preset's `checks` (app/data/presets.toml)
// say which figure each quote is: a measure, the run (A or B), the step to read it at, and the
// range the quote allows. The reading follows app/presets.py's Check.reading exactly, so the
// page and the tests read the same number from the same frames.

/** `value[a][b]` for the path "a.b" (null where a step of it is missing). */
function field(value, path) {
  for (const key of path.split(".")) value = value && typeof value === "object" ? value[key] ?? null : null;
  return value;
}

const SWEEP = "sweep.";

/** This check's figure in one message: a frame, or a sweep's `sweep_result` (null: it does not
 *  have it). */
export function reading(check, frame) {
  const kind = frame.type ?? "frame";
  if (check.measure.startsWith(SWEEP)) {
    if (kind !== "sweep_result" || frame.run !== check.run || frame.lr !== check.lr) return null;
    const value = frame[check.measure.slice(SWEEP.length)];
    return value === null || value === undefined ? null : Number(value);
  }
  if (kind !== "frame" || frame.step < check.step || (frame.run ?? "A") !== check.run) return null;
  if (check.measure === "diverged_at") return frame.loss === null ? frame.step : null;
  if (!check.of) {
    const value = field(frame, check.measure);
    return value === null || value === undefined ? null : Number(value);
  }
  // A field of each layer, or Santurkar's ICS: a list beside `layers`, null where a layer has no
  // weight, absent from frames that carry no ICS measurement.
  const key = check.measure.startsWith("ics.") ? check.measure.slice(4) : check.measure;
  const layers = frame.layers ?? [];
  const sources = key === check.measure ? layers : frame.ics ?? [];
  const values = [];
  for (let i = 0; i < Math.min(layers.length, sources.length); i++) {
    if (sources[i] === null || sources[i] === undefined) continue;
    if (check.layers && !layers[i].name.endsWith(check.layers)) continue;
    values.push(field(sources[i], key));
  }
  if (!values.length || values.some((value) => value === null || value === undefined)) return null;
  const numbers = values.map(Number);
  if (check.of === "first") return numbers[0];
  if (check.of === "last") return numbers.at(-1);
  if (check.of === "max") return Math.max(...numbers);
  if (check.of === "min") return Math.min(...numbers);
  if (check.of === "mean") return numbers.reduce((a, b) => a + b, 0) / numbers.length;
  return numbers[0] ? numbers.at(-1) / numbers[0] : null; // last/first
}

// Pacing changes when frames arrive, not what they hold; a quote holds for every seed.
const IGNORED = new Set(["max_steps_per_s", "seed"]);

/** Whether `run` (a `started`) trains what `preset` sets up: A's fields, and B's in compare mode. */
export function runOfPreset(run, preset) {
  if (!run || !preset) return false;
  const config = run.configs?.A ?? run.config ?? {};
  const same = (a, b) => Object.entries(a).every(([field, value]) => IGNORED.has(field) || b[field] === value);
  if (!same(preset.config ?? {}, config)) return false;
  if (!preset.compare) return true;
  return Boolean(run.configs?.B) && same(preset.compare, run.configs.B);
}

const format = (value) => (Math.abs(value) >= 0.01 && Math.abs(value) < 1000 ? value.toPrecision(2) : value.toExponential(1));

/** The list of a preset's checks, each with what the run shown reads. */
export class ClaimChecks {
  /** `list`: the <ul> to fill. */
  constructor(list) {
    this.list = list;
    this.preset = null;
    this.checks = [];
    this.items = [];
    this.values = [];
    this.reading = false; // the run shown is the preset's: its frames are read
    this.windows = []; // per check with `until`: [sum, count] of its readings so far
  }

  /** Show `preset`'s checks, nothing read yet. */
  show(preset) {
    this.preset = preset ?? null;
    this.checks = preset?.checks ?? [];
    this.items = this.checks.map((check) => {
      const item = document.createElement("li");
      item.className = "claim-check";
      item.dataset.state = "waiting";
      const says = document.createElement("span");
      says.textContent = `${check.says}: ${format(check.range[0])}–${format(check.range[1])}`;
      const result = document.createElement("span");
      result.className = "claim-check-result";
      item.append(says, " · ", result);
      return item;
    });
    this.list.replaceChildren(...this.items);
    this.list.hidden = !this.checks.length;
    this.reset(null);
  }

  /** A new run (its `started`; null: none): nothing read yet. Only a run of the preset's own
   *  settings is read (pace aside): another run's figures would not test its quotes. */
  reset(run) {
    this.run = run;
    this.reading = runOfPreset(run, this.preset);
    this.values = this.checks.map(() => null);
    this.windows = this.checks.map(() => [0, 0]);
    this.checks.forEach((_, i) => this.render(i));
  }

  /** Read what the message (a frame, a sweep result) has of the checks not yet read. A check
   *  with `until` averages its readings from `step` through `until` (app/presets.py, Check). */
  update(frame) {
    if (!this.reading) return;
    for (let i = 0; i < this.checks.length; i++) {
      const check = this.checks[i];
      if (this.values[i] !== null) continue;
      if (check.until !== null && check.until !== undefined) {
        if ((frame.type ?? "frame") !== "frame" || (frame.run ?? "A") !== check.run) continue;
        if (frame.step > check.until) {
          this.close(i);
          continue;
        }
      }
      const value = reading(check, frame);
      if (value === null || !Number.isFinite(value)) continue;
      if (check.until !== null && check.until !== undefined) {
        this.windows[i][0] += value;
        this.windows[i][1] += 1;
        continue;
      }
      this.values[i] = value;
      this.render(i);
    }
  }

  /** The run ended: a window cut short is read as far as it went. */
  finish() {
    if (!this.reading) return;
    this.checks.forEach((check, i) => {
      if (this.values[i] === null && check.until !== null && check.until !== undefined) this.close(i);
    });
  }

  close(i) {
    const [sum, count] = this.windows[i];
    if (!count) return;
    this.values[i] = sum / count;
    this.render(i);
  }

  render(i) {
    const check = this.checks[i];
    const item = this.items[i];
    const value = this.values[i];
    const result = item.lastChild;
    if (value === null) {
      item.dataset.state = "waiting";
      delete item.dataset.value;
      if (!this.run) result.textContent = "press ▶ Play to check it";
      else if (!this.reading) result.textContent = "not checked: the run shown has other settings than the preset";
      else if (check.lr !== null && check.lr !== undefined) result.textContent = `this sweep: at rate ${check.lr}…`;
      else if (check.until !== null && check.until !== undefined) {
        result.textContent = `this run: steps ${check.step}–${check.until}…`;
      } else result.textContent = `this run: at step ${check.step}…`;
      return;
    }
    const holds = value >= check.range[0] && value <= check.range[1];
    item.dataset.state = holds ? "holds" : "differs";
    result.textContent = `this run: ${format(value)} ${holds ? "✓" : "✗ outside"}`;
    item.dataset.value = String(value);
  }
}
