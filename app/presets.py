"""Presets: named configs that tell the normalization story one step at a time.

They live as data in app/data/presets.toml, each stating only what differs from the defaults.
Loading validates every one through the same RunConfig the websocket uses; a bad file stops the
server at start-up with a PresetError naming the preset and the field.

    PRESETS[0].id, PRESETS[0].spec.norm      # 'sigmoid-saturation', 'none'
    load_presets(Path("my-presets.toml").read_text())
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.schemas import ARCHS, ProtocolError, describe_errors, parse_twin_configs
from app.spec import RunSpec

__all__ = ["DEFAULT_PRESET", "PRESETS", "PRESETS_FILE", "Preset", "PresetError", "load_presets"]

PRESETS_FILE = Path(__file__).with_name("data") / "presets.toml"

Group = Literal["story", "instruments", "architectures"]
View = Literal["layers", "drift", "gradients", "ics", "landscape", "eval", "sweep"]


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
        }


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
    )


def _first_problem(exc: ValidationError) -> str:
    return describe_errors(exc)[0]["message"]  # the message names the field


PRESETS, DEFAULT_PRESET = load_presets(PRESETS_FILE.read_text(encoding="utf-8"), PRESETS_FILE.name)
