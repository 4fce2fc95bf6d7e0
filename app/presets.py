"""Presets: named configs that tell the normalization story one step at a time.

They live as data in app/data/presets.toml, each stating only what differs from the defaults.
Loading validates every one through the same RunConfig the websocket uses; a bad file stops the
server at start-up with a PresetError naming the preset and the field.

    PRESETS[0].id, PRESETS[0].spec.norm      # 'sigmoid-saturation', 'none'
    load_presets(Path("my-presets.toml").read_text())
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.schemas import ARCHS, ProtocolError, describe_errors, parse_twin_configs
from app.spec import RunSpec

__all__ = ["DEFAULT_PRESET", "PRESETS", "PRESETS_FILE", "Check", "Preset", "PresetError", "load_presets"]

PRESETS_FILE = Path(__file__).with_name("data") / "presets.toml"

Group = Literal["story", "instruments", "architectures"]
View = Literal["layers", "drift", "gradients", "ics", "landscape", "eval", "sweep"]
FrameMeasure = Literal[
    "test_acc",
    "train_acc",
    "loss",
    "test_acc_batch_stats",
    "test_acc_generated",
    "landscape.loss_range",
    "landscape.grad_change",
    "landscape.beta",
    "diverged_at",
]
# A learning-rate sweep's point (a `sweep_result` message) at the check's `lr`: its final
# training loss, its test accuracy, or whether it diverged (1) or not (0).
SweepMeasure = Literal["sweep.final_loss", "sweep.test_acc", "sweep.diverged"]
LayerMeasure = Literal[
    "grad_norm",
    "update_ratio",
    "pre.std",
    "post.std",
    "pre.mean",
    "post.mean",
    "saturated",
    "dead",
    "drift",
    "ics.dist",
    "ics.cos",
]
FRAME_MEASURES: tuple[str, ...] = get_args(FrameMeasure)
SWEEP_MEASURES: tuple[str, ...] = get_args(SweepMeasure)
Reduction = Literal["first", "last", "last/first", "max", "min", "mean"]


@dataclass(frozen=True)
class Check:
    """A figure a preset quotes, machine-readable, so the page can show "this run: …" beside it
    and a test can hold the quote to the preset's own runs (tests/test_presets.py).

    It reads the first frame of `run` at or past `step` that has the measure: a frame's own
    field (test_acc, landscape.beta, ...; diverged_at: the step of the frame whose loss is not
    finite), or a per-layer field reduced over the layers (those whose name ends with `layers`,
    when given): first, last, last/first, max, min or mean. The ICS measures (ics.dist, ics.cos)
    are per layer too, read from the frame's `ics` list, which runs beside `layers` and is null
    where a layer has no weight (those layers are left out). With `until`, the figure is the
    mean of the readings of every frame from `step` through `until` that has the measure (each
    ICS measurement is in one frame), known once a frame past `until` arrives or the run ends. A
    sweep measure reads the `sweep_result` of `run` at learning rate `lr`."""

    says: str
    measure: str
    step: int
    low: float
    high: float
    run: Literal["A", "B"] = "A"
    of: Reduction | None = None
    layers: str | None = None
    until: int | None = None
    lr: float | None = None

    def read(self, messages: Iterable[dict[str, Any]]) -> float | None:
        """This check's figure from a run's messages in order (frames, sweep results)."""
        if self.until is None:
            return next((v for m in messages if (v := self.reading(m)) is not None), None)
        values = []
        for message in messages:
            if message.get("type", "frame") == "frame" and message.get("run", "A") == self.run:
                if message["step"] > self.until:
                    break
                if (value := self.reading(message)) is not None:
                    values.append(value)
        return sum(values) / len(values) if values else None

    def reading(self, frame: dict[str, Any]) -> float | None:
        """This check's figure in one wire message (None: the message does not have it)."""
        kind = frame.get("type", "frame")
        if self.measure in SWEEP_MEASURES:
            if kind != "sweep_result" or frame["run"] != self.run or frame["lr"] != self.lr:
                return None
            found = frame[self.measure.removeprefix("sweep.")]
            return float(found) if found is not None else None
        if kind != "frame" or frame["step"] < self.step or frame.get("run", "A") != self.run:
            return None
        if self.measure == "diverged_at":
            return float(frame["step"]) if frame["loss"] is None else None
        if self.of is None:
            found = _field(frame, self.measure)
            return float(found) if found is not None else None
        key = self.measure.removeprefix("ics.")
        # A field of each layer, or Santurkar's ICS: a list beside `layers`, null where a layer
        # has no weight, absent from frames that carry no ICS measurement.
        sources = frame["layers"] if key == self.measure else frame.get("ics") or []
        values = [
            _field(source, key)
            for layer, source in zip(frame["layers"], sources, strict=False)
            if source is not None and (not self.layers or layer["name"].endswith(self.layers))
        ]
        if not values or any(v is None for v in values):
            return None
        numbers = [float(v) for v in values]
        if self.of == "first":
            return numbers[0]
        if self.of == "last":
            return numbers[-1]
        if self.of == "max":
            return max(numbers)
        if self.of == "min":
            return min(numbers)
        if self.of == "mean":
            return sum(numbers) / len(numbers)
        return numbers[-1] / numbers[0] if numbers[0] else None

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_wire(self) -> dict[str, Any]:
        return {
            "says": self.says,
            "run": self.run,
            "step": self.step,
            "measure": self.measure,
            "of": self.of,
            "layers": self.layers,
            "until": self.until,
            "lr": self.lr,
            "range": [self.low, self.high],
        }


def _field(value: Any, path: str) -> Any:
    """`value[a][b]` for the path "a.b" (None where a step of it is missing)."""
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


class PresetError(ValueError):
    """A preset file the server refuses to start with; the message names the preset and field."""


@dataclass(frozen=True)
class Preset:
    """A config plus what to look for and a question to think about before pressing play."""

    id: str
    title: str
    summary: str  # what the preset sets up, one or two sentences
    look_for: str  # what the learner should watch
    question: str  # asked before play
    spec: RunSpec  # run A, every field
    compare: dict[str, Any] | None = None  # run B's differing fields: the preset opens in compare mode
    paper: str | None = None  # the paper whose claim it tests
    claim: str | None = None  # that claim, with the paper's numbers
    sweep_lrs: tuple[float, ...] | None = None  # suggested rates for the learning-rate sweep
    group: Group = "story"  # where the page lists it
    view: View = "layers"  # the stage view that tells its story
    effect_step: int | None = None  # paper presets: the step by which the claim is plain to see
    checks: tuple[Check, ...] = ()  # its quoted figures, machine-readable

    @property
    def config(self) -> dict[str, Any]:
        """Run A's config as a client sends it: every field its architecture reads."""
        unread = set(ARCHS[self.spec.arch].unread)
        return {name: value for name, value in asdict(self.spec).items() if name not in unread}

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "summary": self.summary,
            "look_for": self.look_for,
            "question": self.question,
            "config": self.config,
            "compare": self.compare,
            "paper": self.paper,
            "claim": self.claim,
            "sweep_lrs": list(self.sweep_lrs) if self.sweep_lrs else None,
            "group": self.group,
            "view": self.view,
            "effect_step": self.effect_step,
            "checks": [check.to_wire() for check in self.checks],
        }


class _CheckEntry(BaseModel):
    """One [[preset.checks]]: a figure the preset quotes, as the page and the tests read it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    says: str = Field(min_length=1, max_length=120)
    run: Literal["A", "B"] = "A"
    step: int = Field(ge=0)
    measure: FrameMeasure | LayerMeasure | SweepMeasure
    of: Reduction | None = None
    layers: str | None = Field(None, min_length=1)
    until: int | None = Field(None, ge=0)
    lr: float | None = Field(None, gt=0)
    range: list[float] = Field(min_length=2, max_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> _CheckEntry:
        sweep = self.measure in SWEEP_MEASURES
        if sweep != (self.lr is not None):
            raise ValueError(
                f"checks: {self.measure}: `lr` names a sweep's point: a sweep measure needs it, no other"
            )
        if sweep and (self.of is not None or self.layers is not None or self.until is not None):
            raise ValueError(
                f"checks: {self.measure} is one number per sweep point: no `of`, `layers`, `until`"
            )
        if self.until is not None and self.until < self.step:
            raise ValueError(f"checks: until ({self.until}) must not come before step ({self.step})")
        if sweep:
            return self
        per_layer = self.measure not in FRAME_MEASURES
        if per_layer and self.of is None:
            raise ValueError(
                f"checks: {self.measure} is per layer: say `of` (first, last, last/first, max, min, mean)"
            )
        if not per_layer and (self.of is not None or self.layers is not None):
            raise ValueError(f"checks: {self.measure} is one number per frame: no `of` or `layers`")
        if self.range[0] > self.range[1]:
            raise ValueError(f"checks: range must be [low, high] (got {list(self.range)})")
        return self


class _PresetEntry(BaseModel):
    """One [[preset]] as the file states it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    look_for: str = Field(min_length=1)
    question: str = Field(min_length=1)
    group: Group = "story"
    view: View = "layers"
    base: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    compare: dict[str, Any] | None = None
    paper: str | None = None
    claim: str | None = None
    sweep_lrs: list[float] | None = Field(None, min_length=1)
    effect_step: int | None = Field(None, ge=0)
    checks: list[_CheckEntry] = Field(default_factory=list)


class _PresetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    default: str
    base: dict[str, dict[str, Any]] = Field(default_factory=dict)
    preset: list[dict[str, Any]] = Field(min_length=1)


def load_presets(text: str, source: str = "presets.toml") -> tuple[tuple[Preset, ...], Preset]:
    """Every preset in a TOML text, and the default one; raises PresetError on the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{source}: not valid TOML: {exc}") from None
    try:
        document = _PresetFile.model_validate(raw)
    except ValidationError as exc:
        raise PresetError(f"{source}: {_first_problem(exc)}") from None
    presets: list[Preset] = []
    for index, entry in enumerate(document.preset):
        name = f"preset {entry.get('id', f'#{index + 1}')!r}"
        try:
            presets.append(_build(_PresetEntry.model_validate(entry), document.base))
        except ValidationError as exc:
            raise PresetError(f"{source}: {name}: {_first_problem(exc)}") from None
        except ProtocolError as exc:
            where = exc.errors[0]["field"] if exc.errors else "config"
            field = where if where.startswith("compare.") else f"config.{where}"
            raise PresetError(f"{source}: {name}: {field}: {exc.message}") from None
        except PresetError as exc:
            raise PresetError(f"{source}: {name}: {exc}") from None
    ids = [p.id for p in presets]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise PresetError(f"{source}: preset ids must be unique ({', '.join(twice)} used more than once)")
    default = next((p for p in presets if p.id == document.default), None)
    if default is None:
        raise PresetError(f"{source}: default: no preset has id {document.default!r}")
    return tuple(presets), default


def _build(entry: _PresetEntry, bases: dict[str, dict[str, Any]]) -> Preset:
    if entry.base is not None and entry.base not in bases:
        raise PresetError(f"base: no [base.{entry.base}] (bases: {', '.join(sorted(bases)) or 'none'})")
    config = {**(bases[entry.base] if entry.base else {}), **entry.config}
    first, _ = parse_twin_configs(config, entry.compare)  # B's fields are checked, not kept
    for check in entry.checks:
        if check.run == "B" and entry.compare is None:
            raise PresetError(f"checks: {check.says!r} reads run B, but the preset has no compare")
        if max(check.step, check.until or 0) > first.steps:
            raise PresetError(f"checks: {check.says!r} reads step {check.step}, past steps={first.steps}")
        if check.lr is not None and check.lr not in (entry.sweep_lrs or []):
            raise PresetError(f"checks: {check.says!r} reads the sweep at lr {check.lr}, not in sweep_lrs")
    return Preset(
        id=entry.id,
        title=entry.title,
        summary=entry.summary,
        look_for=entry.look_for,
        question=entry.question,
        spec=first.to_spec(),
        compare=entry.compare,
        paper=entry.paper,
        claim=entry.claim,
        sweep_lrs=tuple(entry.sweep_lrs) if entry.sweep_lrs else None,
        group=entry.group,
        view=entry.view,
        effect_step=entry.effect_step,
        checks=tuple(
            Check(c.says, c.measure, c.step, c.range[0], c.range[1], c.run, c.of, c.layers, c.until, c.lr)
            for c in entry.checks
        ),
    )


def _first_problem(exc: ValidationError) -> str:
    return describe_errors(exc)[0]["message"]  # the message names the field


PRESETS, DEFAULT_PRESET = load_presets(PRESETS_FILE.read_text(encoding="utf-8"), PRESETS_FILE.name)
