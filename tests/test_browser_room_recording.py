"""A recording opened in a room replays for every viewer (app/room_recordings.py,
static/js/roomrecording.js), in real headless Chromium: the teacher opens a saved recording, the
student's charts show the recorded frames, at the teacher's timeline step as it scrubs and
replays, with no run on the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_fixtures import Lab, open_lab

pytestmark = pytest.mark.browser

# Paced, so that a dozen frames are recorded whatever the machine's speed.
DONE = "depth=3&width=16&steps=120&emit_every=10&max_steps_per_s=100&bins=16&dataset=moons"


@pytest.fixture
def student(chromium: object, lab_server: str) -> Iterator[Lab]:
    with open_lab(chromium, lab_server) as lab:
        yield lab


def _same_ridges(teacher: Lab, student: Lab, moved: str) -> int:
    """Once the teacher's page shows a step that satisfies `moved` (a JS condition on `step`),
    the student's shows it too, and their ridge plots draw the same outlines; returns the step."""
    teacher.wait(f"((step) => step !== null && ({moved}))(s.lastStep)")
    step = int(teacher.value("s.lastStep"))
    student.wait(f"s.lastStep === {step}", timeout_ms=10_000)
    drawn = "window.shiftscope.drawn('chart-ridge')"
    outlines = teacher.page.evaluate(drawn)
    assert len(outlines) == 3 and student.page.evaluate(drawn) == outlines
    return step


def test_a_recording_the_teacher_opens_replays_at_the_teachers_step(
    lab: Lab, student: Lab, tmp_path: Path
) -> None:
    teacher = lab
    teacher.open(DONE)
    teacher.page.click("#btn-play")
    teacher.wait("s.state === 'done' && s.lastStep === 120")
    with teacher.page.expect_download() as info:
        teacher.page.click("#btn-save-recording")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)

    teacher.open("")
    teacher.page.click("#btn-share")
    teacher.wait("s.room.role === 'teacher' && s.room.code")
    code = teacher.value("s.room.code")
    student.page.goto(f"{student.base_url}/r/{code}")
    student.page.wait_for_function("window.shiftscope && window.shiftscope.room.role === 'viewer'")
    runs = student.value("s.runs")

    # The teacher opens the file: the student's page gets it through the room and shows it too.
    teacher.page.set_input_files("#recording-file", str(saved))
    student.wait("s.recordingsOpened === 1", timeout_ms=15_000)
    _same_ridges(teacher, student, "step === 120")
    assert student.page.locator("#timeline-step").text_content() == "step 120"

    # The teacher scrubs: Home, one frame on, the middle of the slider; the student follows.
    teacher.page.locator("#main").focus()
    # (The recorded steps are the run's frames, which come by the clock: not a fixed grid.)
    teacher.page.keyboard.press("Home")
    _same_ridges(teacher, student, "step === 0")
    teacher.page.keyboard.press("]")
    second = _same_ridges(teacher, student, "step > 0")
    teacher.page.evaluate(
        "() => { const s = document.querySelector('#timeline-slider');"
        " s.value = String(Math.floor(s.max / 2) + 1);"
        " s.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    middle = _same_ridges(teacher, student, f"step > {second} && step < 120")
    assert second < middle < 120
    loss = "window.shiftscope.drawn('chart-loss').map((t) => t.y)"
    assert student.page.evaluate(loss) == teacher.page.evaluate(loss)

    # A replay from the start ends at the last frame on both pages.
    teacher.page.keyboard.press("Home")
    _same_ridges(teacher, student, "step === 0")
    teacher.page.select_option("#timeline-speed", "4")
    teacher.page.click("#btn-replay")
    _same_ridges(teacher, student, "step === 120")

    assert student.value("s.runs") == runs  # nothing trained for the student: the file replays
    assert student.value("s.recordingsOpened") == 1  # fetched once
    assert teacher.errors == [] and student.errors == []
