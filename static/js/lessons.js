// Lessons: an ordered sequence of presets for a class (app/data/lessons.toml). Each step asks
// its preset's question before Play (predict) and shows what to look for once the run has had
// time to show it (reveal). Next / previous with the buttons or PageDown / PageUp (what a
// presentation clicker sends). In a room the teacher's lesson step travels with their page
// state and every viewer's page shows the same step.
//
//   const lessons = new Lessons({ lessons: boot.lessons, presets, elements, selectPreset });
//   lessons.start("why-normalize"); lessons.next(); lessons.state  // {lesson, step, revealed}

export class Lessons {
  constructor({ lessons, presets, elements, selectPreset }) {
    this.lessons = lessons;
    this.presets = new Map(presets.map((preset) => [preset.id, preset]));
    this.el = elements;
    this.selectPreset = selectPreset; // (id) => void: shows a preset on the page, as the menu does
    this.lesson = null;
    this.step = 0;
    this.revealed = false;
    for (const lesson of lessons) elements.menu.add(new Option(lesson.title, lesson.id));
    elements.menu.addEventListener("change", () => this.start(elements.menu.value || null));
    elements.next.addEventListener("click", () => this.next());
    elements.previous.addEventListener("click", () => this.previous());
    elements.reveal.addEventListener("click", () => this.reveal());
    this.render();
  }

  /** What a room shares: the lesson, its step and whether the answer shows. */
  get state() {
    return this.lesson ? { lesson: this.lesson.id, step: this.step, revealed: this.revealed } : null;
  }

  start(id, step = 0) {
    this.lesson = this.lessons.find((lesson) => lesson.id === id) ?? null;
    this.go(step);
  }

  go(step, { revealed = false } = {}) {
    if (this.lesson) {
      this.step = Math.max(0, Math.min(step, this.lesson.steps.length - 1));
      const presetId = this.lesson.steps[this.step].preset;
      this.selectPreset(presetId);
    }
    this.revealed = revealed;
    this.render();
  }

  next() { if (this.lesson && this.step < this.lesson.steps.length - 1) this.go(this.step + 1); }

  previous() { if (this.lesson && this.step > 0) this.go(this.step - 1); }

  reveal() {
    this.revealed = true;
    this.render();
  }

  /** Show another page's lesson state (a room's teacher): the same lesson, step and reveal. */
  apply(state) {
    if (!state) {
      if (this.lesson) this.start(null);
      return;
    }
    if (state.lesson !== this.lesson?.id) this.lesson = this.lessons.find((l) => l.id === state.lesson) ?? null;
    if (!this.lesson) return this.render();
    const step = Math.max(0, Math.min(state.step ?? 0, this.lesson.steps.length - 1));
    this.step = step; // the preset itself arrives with the page state
    this.revealed = Boolean(state.revealed);
    this.render();
  }

  render() {
    const { el, lesson } = this;
    el.box.hidden = !lesson;
    el.menu.value = lesson?.id ?? "";
    if (!lesson) return;
    const step = lesson.steps[this.step];
    const preset = this.presets.get(step.preset);
    el.progress.textContent = `Step ${this.step + 1} of ${lesson.steps.length}`;
    el.progress.setAttribute("aria-valuenow", String(this.step + 1));
    el.progress.setAttribute("aria-valuemax", String(lesson.steps.length));
    el.title.textContent = preset?.title ?? step.preset;
    el.note.textContent = step.note ?? "";
    el.note.hidden = !step.note;
    el.predict.textContent = preset?.question ?? "";
    el.answer.textContent = preset?.look_for ?? "";
    el.answer.hidden = !this.revealed;
    el.reveal.hidden = this.revealed;
    el.previous.disabled = this.step === 0;
    el.next.disabled = this.step === lesson.steps.length - 1;
  }
}
