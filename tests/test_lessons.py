"""Lessons as data (app/data/lessons.toml): the shipped ones load, name real presets in order,
and a bad file is refused with the lesson and step named."""

from __future__ import annotations

import httpx
import pytest

from app.lessons import LESSONS, LessonError, load_lessons
from app.presets import PRESETS
from tests.conftest import LiveServer


def test_the_shipped_lessons_tell_both_stories() -> None:
    by_id = {lesson.id: lesson for lesson in LESSONS}
    assert by_id["why-normalize"].title == "Why we normalize"
    assert by_id["does-bn-reduce-ics"].title == "Does batch norm reduce covariate shift?"
    presets = {preset.id: preset for preset in PRESETS}
    for lesson in LESSONS:
        assert len(lesson.steps) >= 2
        for step in lesson.steps:
            assert presets[step.preset].question and presets[step.preset].look_for  # predict, reveal
    # The story presets in the page's order; Santurkar's presets in the second.
    story = [p.id for p in PRESETS if p.group == "story"]
    steps = [step.preset for step in by_id["why-normalize"].steps]
    assert [s for s in steps if s in story] == [s for s in story if s in steps]
    assert {"santurkar-ics", "santurkar-ics-he", "noisy-bn", "landscape"} <= {
        step.preset for step in by_id["does-bn-reduce-ics"].steps
    }


LESSON = """
[[lesson]]
id = "x"
title = "X"
summary = "s"
[[lesson.step]]
preset = "sigmoid-saturation"
[[lesson.step]]
preset = "{second}"
"""


def test_a_step_naming_no_preset_is_refused_by_lesson_and_step() -> None:
    assert [s.preset for s in load_lessons(LESSON.format(second="relu-dying"))[0].steps][1] == "relu-dying"
    with pytest.raises(LessonError, match=r"lesson 'x', step 2: there is no preset 'nope'"):
        load_lessons(LESSON.format(second="nope"))
    with pytest.raises(LessonError, match="lesson"):
        load_lessons('[[lesson]]\nid = "x"\ntitle = "X"\nsummary = "s"\n')  # no steps
    with pytest.raises(LessonError, match="defined twice"):
        load_lessons(LESSON.format(second="relu-dying") * 2)


def test_the_lessons_are_served(live_server: LiveServer) -> None:
    served = httpx.get(f"{live_server.http}/api/lessons").json()
    assert [lesson["id"] for lesson in served] == [lesson.id for lesson in LESSONS]
    assert served[0]["steps"][0] == {
        "preset": "sigmoid-saturation",
        "note": "Start here: no normalization at all.",
    }
