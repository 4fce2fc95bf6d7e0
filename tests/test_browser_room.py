"""Rooms in real headless Chromium: a teacher's page shares its run, a student's page follows it
(run, preset, toggles, tab), a late joiner's charts start at step 0, the student cannot steer
the room, and Fork trains the room's config as the student's own run (issue #11)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_fixtures import Lab, open_lab
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FAST = "preset=relu-dying&max_steps_per_s=60&steps=100000"


@pytest.fixture
def student(chromium: object, lab_server: str) -> Iterator[Lab]:
    with open_lab(chromium, lab_server) as lab:
        yield lab


def _share(teacher: Lab) -> str:
    teacher.page.click("#btn-share")
    teacher.wait("s.room.role === 'teacher' && s.room.code")
    code = str(teacher.value("s.room.code"))
    expect(teacher.page.locator("#room-link")).to_have_text(f"{teacher.base_url}/r/{code}")
    teacher.page.wait_for_function("document.getElementById('room-qr').naturalWidth > 0")  # drawn here
    return code


def _join_by_link(student: Lab, code: str) -> None:
    student.page.goto(f"{student.base_url}/r/{code}")  # the join link: a redirect to /?room=CODE
    student.page.wait_for_function("window.shiftscope && window.shiftscope.room.role === 'viewer'")


def test_the_student_sees_the_teachers_run_and_page(lab: Lab, student: Lab) -> None:
    teacher = lab
    teacher.open(FAST)
    code = _share(teacher)
    _join_by_link(student, code)
    expect(student.page.locator("#room-viewer")).to_be_visible()
    expect(teacher.page.locator("#room-viewers")).to_have_text("1 watching")
    # The teacher presses play: the student's charts show the teacher's run.
    teacher.page.click("#btn-play")
    student.wait("s.state === 'running' && s.lastStep >= 10")
    assert student.value("s.lastConfig.activation") == "relu"
    # Pause, a toggle, a tab: the student's page follows each.
    teacher.page.click("#btn-pause")
    student.wait("s.state === 'paused'")
    teacher.page.keyboard.press("2")  # batch norm, on the teacher's form
    student.wait("s.pageState.config.norm === 'batch'", timeout_ms=10_000)
    teacher.page.click('label[for="view-drift"]')
    student.wait("s.view === 'drift'", timeout_ms=10_000)
    # The student cannot steer: Space does nothing, the form is inert, the run stays paused.
    student.page.keyboard.press(" ")
    student.page.wait_for_timeout(300)
    assert student.value("s.state") == "paused" and teacher.value("s.state") == "paused"
    assert student.page.evaluate("document.getElementById('config-form').inert") is True
    # The teacher ends the room: the student's page says so and the lab is theirs again.
    teacher.page.click("#btn-room-end")
    expect(student.page.locator("#alerts")).to_contain_text("The room has ended")
    student.wait("s.room.role === null")
    assert student.page.evaluate("document.getElementById('config-form').inert") is False
    assert teacher.errors == [] and student.errors == []


def test_a_late_joiner_starts_at_step_0_and_fork_trains_the_rooms_config(lab: Lab, student: Lab) -> None:
    teacher = lab
    teacher.open(FAST)
    code = _share(teacher)
    teacher.page.click("#btn-play")
    teacher.wait("s.lastStep >= 40")
    student.open()
    student.page.fill("#room-code-input", code.lower())  # typed on the start page, any case
    student.page.click("#btn-room-join")
    student.wait("s.room.role === 'viewer' && s.lastStep >= 40")
    # The band and loss curves hold the run from its first frame, not just since joining.
    first_loss_step = student.page.evaluate(
        "Math.min(...document.getElementById('chart-loss').data.flatMap((trace) => trace.x ?? []))"
    )
    assert first_loss_step <= 5, first_loss_step
    assert student.value("s.pageState.preset") == "relu-dying"
    # Fork: leave the room and train its config as the student's own run.
    student.page.click("#btn-room-fork")
    student.wait("s.room.role === null && s.state === 'running' && s.runs >= 2")
    assert student.value("s.lastConfig.activation") == "relu"
    teacher.wait("s.room.viewers === 0")
    teacher.page.click("#btn-room-end")
    teacher.wait("s.room.role === null")
    assert teacher.errors == [] and student.errors == []


def test_a_viewer_on_a_phone_sees_the_charts_first(lab: Lab, chromium: object) -> None:
    # Solo, a 390 x 844 phone shows ~2,700 px of settings before the first chart; a room's
    # viewer came to watch: the charts come first.
    teacher = lab
    teacher.open(FAST)
    code = _share(teacher)
    with open_lab(
        chromium, teacher.base_url, viewport={"width": 390, "height": 844}, is_mobile=True
    ) as phone:
        _join_by_link(phone, code)
        boxes = phone.page.evaluate(
            """() => Object.fromEntries(['main', 'config-form'].map((id) => {
                 const box = document.getElementById(id).getBoundingClientRect();
                 return [id, {top: box.top + window.scrollY, bottom: box.bottom + window.scrollY}];
               }))"""
        )
        assert boxes["main"]["top"] < 844 / 2, boxes  # the charts start in the first half-screen
        assert boxes["config-form"]["top"] > boxes["main"]["bottom"], boxes  # settings after them
        assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scroll
        assert phone.errors == []
    teacher.page.click("#btn-room-end")
    teacher.wait("s.room.role === null")


def test_presentation_mode_is_large_and_reaches_the_rooms_viewers(lab: Lab, student: Lab) -> None:
    teacher = lab
    teacher.open(FAST)
    teacher.page.click("#btn-play")
    teacher.wait("s.lastStep >= 10")
    code = _share(teacher)
    _join_by_link(student, code)
    teacher.page.keyboard.press("f")
    teacher.wait("document.getElementById('app').hasAttribute('data-present')")
    expect(teacher.page.locator(".panel")).to_be_hidden()  # the settings make way for the charts
    expect(teacher.page.locator("#btn-present-play")).to_be_visible()
    # At 1280 x 720: chart ticks of 18 px at least, lines of 3 px at least.
    teacher.page.wait_for_function(
        "document.getElementById('chart-loss')._fullLayout.xaxis.tickfont.size >= 18"
    )
    widths = teacher.page.evaluate(
        "document.getElementById('chart-loss')._fullData.filter((t) => t.visible !== false && t.line)"
        ".map((t) => t.line.width)"
    )
    assert widths and min(widths) >= 3, widths
    # The student's screen follows the teacher's mode (they may untick "Follow the teacher").
    student.page.wait_for_function("document.getElementById('app').hasAttribute('data-present')")
    teacher.page.keyboard.press("f")
    student.page.wait_for_function("!document.getElementById('app').hasAttribute('data-present')")
    teacher.page.wait_for_function(
        "document.getElementById('chart-loss')._fullLayout.xaxis.tickfont.size === 14"
    )
    teacher.page.click("#btn-room-end")
    assert teacher.errors == [] and student.errors == []


def test_a_lesson_steps_through_its_presets_for_the_whole_room(lab: Lab, student: Lab) -> None:
    teacher = lab
    teacher.open()
    teacher.page.select_option("#lesson", "why-normalize")
    expect(teacher.page.locator("#lesson-progress")).to_have_text("Step 1 of 7")
    expect(teacher.page.locator("#preset")).to_have_value("sigmoid-saturation")
    question = teacher.page.evaluate(
        "JSON.parse(document.getElementById('shiftscope-boot').textContent).presets"
        ".find((p) => p.id === 'sigmoid-batchnorm')"
    )
    expect(teacher.page.locator("#lesson-answer")).to_be_hidden()  # predict first
    code = _share(teacher)
    _join_by_link(student, code)
    teacher.page.keyboard.press("PageDown")  # a presentation clicker's "next"
    expect(teacher.page.locator("#lesson-progress")).to_have_text("Step 2 of 7")
    expect(teacher.page.locator("#preset")).to_have_value("sigmoid-batchnorm")
    expect(teacher.page.locator("#lesson-predict")).to_have_text(question["question"])
    # The room's viewers are on the same step, with its preset, and see the answer when it is revealed.
    expect(student.page.locator("#lesson-progress")).to_have_text("Step 2 of 7")
    expect(student.page.locator("#preset")).to_have_value("sigmoid-batchnorm")
    teacher.page.click("#btn-lesson-reveal")
    expect(student.page.locator("#lesson-answer")).to_have_text(question["look_for"])
    # A viewer cannot move the lesson on.
    student.page.keyboard.press("PageDown")
    student.page.wait_for_timeout(300)
    assert student.value("s.lesson.step") == 1 and teacher.value("s.lesson.step") == 1
    teacher.page.click("#btn-room-end")
    assert teacher.errors == [] and student.errors == []


def test_a_link_can_hide_the_controls_a_lesson_step_does_not_need(lab: Lab) -> None:
    lab.open("preset=sigmoid-batchnorm&controls=norm")
    expect(lab.page.locator('.field[data-field="norm"]')).to_be_visible()
    for hidden in ("depth", "lr", "arch", "activation"):
        expect(lab.page.locator(f'.field[data-field="{hidden}"]')).to_be_hidden()
    expect(lab.page.locator("#more")).to_be_hidden()
    expect(lab.page.locator("#btn-play")).to_be_visible()  # the transport stays
    lab.page.keyboard.press("1")  # the page still works: no norm, then play
    lab.page.click("#btn-play")
    lab.wait("s.state === 'running' && s.lastConfig.norm === 'none'")
    # The address bar keeps the hiding as the link gave it.
    assert "controls=norm" in lab.page.evaluate("location.search")
    lab.open("preset_hide=true&depth_hide=true")
    expect(lab.page.locator(".preset-field")).to_be_hidden()
    expect(lab.page.locator('.field[data-field="depth"]')).to_be_hidden()
    expect(lab.page.locator('.field[data-field="lr"]')).to_be_visible()
    assert lab.errors == []


@pytest.fixture(scope="module")
def short_grace() -> Iterator[str]:
    from browser_fixtures import serve_app

    with serve_app(env={"SHIFTSCOPE_ROOM_GRACE_S": "3"}) as url:
        yield url


def test_a_teacher_who_reloads_keeps_the_room_and_one_who_leaves_ends_it(
    chromium: object, short_grace: str
) -> None:
    with open_lab(chromium, short_grace) as teacher, open_lab(chromium, short_grace) as student:
        teacher.open(FAST)
        code = _share(teacher)
        _join_by_link(student, code)
        teacher.page.click("#btn-play")
        student.wait("s.lastStep >= 10")
        # A reload: the page takes its room back with the key it kept (sessionStorage), and the
        # run that went on meanwhile is its own again.
        teacher.page.reload()
        teacher.page.wait_for_function("window.shiftscope && window.shiftscope.room.role === 'teacher'")
        assert teacher.value("s.room.code") == code
        teacher.wait("s.state === 'running' && s.lastStep >= 20")
        assert student.value("s.room.role") == "viewer"
        teacher.page.click("#btn-pause")
        student.wait("s.state === 'paused'")
        # The teacher's tab closes for good: past the grace period the student's page says so.
        teacher.page.close()
        expect(student.page.locator("#alerts")).to_contain_text("The room has ended", timeout=20_000)
        student.wait("s.room.role === null")
        assert student.errors == []
