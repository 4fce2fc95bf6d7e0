"""Lessons: ordered sequences of presets for a class, as data in app/data/lessons.toml.

Each step names a preset; the page asks that preset's question before Play and shows what to
look for after (static/js/lessons.js). Loading checks every step's preset exists: a bad file
stops the server at start-up with a LessonError naming the lesson and the step.

    LESSONS[0].id, [step.preset for step in LESSONS[0].steps]
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.presets import PRESETS, Preset
from app.schemas import describe_errors

__all__ = ["LESSONS", "LESSONS_FILE", "Lesson", "LessonError", "Step", "load_lessons"]

LESSONS_FILE = Path(__file__).with_name("data") / "lessons.toml"


class LessonError(ValueError):
    """lessons.toml is malformed or names a preset that does not exist."""


@dataclass(frozen=True)
class Step:
    preset: str
    note: str | None = None


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    summary: str
    steps: tuple[Step, ...]

    def to_wire(self) -> dict[str, Any]:
        return {**asdict(self), "steps": [asdict(step) for step in self.steps]}


class _StepEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    preset: str = Field(min_length=1)
    note: str | None = None


class _LessonEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    step: list[_StepEntry] = Field(min_length=2)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    lesson: list[_LessonEntry] = Field(min_length=1)


def load_lessons(text: str, presets: Iterable[Preset] = PRESETS) -> list[Lesson]:
    """Parse and check lessons.toml's text against the presets it may name."""
    try:
        parsed = _File.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise LessonError(f"lessons.toml: {exc}") from None
    except ValidationError as exc:
        first = describe_errors(exc)[0]
        raise LessonError(f"lessons.toml: {first['field']}: {first['message']}") from None
    known = {preset.id for preset in presets}
    lessons, seen = [], set()
    for entry in parsed.lesson:
        if entry.id in seen:
            raise LessonError(f"lessons.toml: lesson {entry.id!r} is defined twice")
        seen.add(entry.id)
        for number, step in enumerate(entry.step, start=1):
            if step.preset not in known:
                raise LessonError(
                    f"lessons.toml: lesson {entry.id!r}, step {number}: there is no preset {step.preset!r}"
                )
        steps = tuple(Step(step.preset, step.note) for step in entry.step)
        lessons.append(Lesson(entry.id, entry.title, entry.summary, steps))
    return lessons


LESSONS = load_lessons(LESSONS_FILE.read_text(encoding="utf-8"))
