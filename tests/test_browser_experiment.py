"""A class experiment in real headless Chromium: a teacher's page and three students' pages run
an experiment on the learning rate; each student trains their own value, the teacher's class
chart holds three points that move, and the one at a rate too large is marked diverged (#12)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from browser_fixtures import Lab, open_lab, serve_app
from playwright.sync_api import expect
from test_browser_a11y import _violations
from test_browser_room import _join_by_link, _share

pytestmark = pytest.mark.browser

# Ten ReLU layers of 100, He init, plain SGD (the high-lr preset), paced for four runs on two
# cores. Without norm lr 10 diverges within a few steps (step 3 here); 0.01 and 0.1 train.
FAST = "preset=high-lr&max_steps_per_s=60&steps=100000"
RATES = [0.01, 0.1, 10]


@pytest.fixture(scope="module")
def lab_server() -> Iterator[str]:
    # Every page here comes from 127.0.0.1: the per-address job cap is lifted, with a slot for
    # each student's run (the default cap of 2 per address is what a real class behind one NAT
    # address would raise too).
    env = {"SHIFTSCOPE_MAX_JOBS_PER_CLIENT": "0", "SHIFTSCOPE_MAX_RUNS": "4", "SHIFTSCOPE_MAX_QUEUE": "16"}
    with serve_app(env=env) as url:
        yield url


def _class_points(teacher: Lab) -> dict[str, list[float]]:
    """What the teacher's class chart draws: x positions of each point group on the loss panel."""
    traces = teacher.value("s.drawn('chart-class')")
    assert isinstance(traces, list)
    loss = [trace for trace in traces if trace.get("xaxis", "x") == "x"]
    return {trace["name"]: trace["y"] for trace in loss}


def test_a_class_experiment_on_the_learning_rate(chromium: object, lab: Lab, lab_server: str) -> None:
    teacher = lab
    teacher.open(FAST)
    code = _share(teacher)
    with ExitStack() as stack:
        students = [stack.enter_context(open_lab(chromium, lab_server)) for _ in RATES]
        for student in students:
            _join_by_link(student, code)
        # The teacher opens the experiment on their own config: learning rate over three values.
        teacher.page.click("#btn-experiment")
        expect(teacher.page.locator("#experiment-values")).to_have_value("0.01, 0.1, 1, 10")  # the default
        teacher.page.fill("#experiment-values", ", ".join(str(rate) for rate in RATES))
        teacher.page.click("#btn-experiment-start")
        teacher.wait("s.experiment.announced && s.experiment.announced.state === 'open'")
        expect(teacher.page.locator("#experiment-class")).to_be_visible()
        # Each student joins and is handed the next value, shown on their page.
        for student, rate in zip(students, RATES, strict=True):
            student.wait("s.experiment.announced !== null")
            expect(student.page.locator("#experiment-class")).to_be_hidden()  # not revealed yet
            student.page.click("#btn-experiment-join")
            expect(student.page.locator("#experiment-mine")).to_have_text(f"Your value: lr = {rate}")
        # Their own runs train on their pages, at their own rate.
        for student, rate in zip(students, RATES, strict=True):
            student.wait(f"s.lastConfig && s.lastConfig.lr === {rate} && s.runs >= 1")
            assert student.value("s.lastConfig.depth") == 10
        diverged = students[RATES.index(10)]
        diverged.wait("s.state === 'diverged'")
        for student in students[:2]:
            student.wait("s.state === 'running' && s.lastStep >= 20")
        # The teacher's class chart: three points, one of them diverged, the others moving.
        teacher.wait(
            "s.experiment.students.length === 3 && s.experiment.students.filter(p => p.state === 'running')"
            ".length === 2 && s.experiment.students.some(p => p.state === 'diverged' && p.value === 10)"
        )
        teacher.page.wait_for_function(
            "(document.getElementById('chart-class').data || []).filter(t => t.name === 'diverged' && "
            "(t.xaxis || 'x') === 'x' && t.x.length === 1).length === 1"
        )
        before = _class_points(teacher)
        assert len(before["training"]) == 2 and len(before["diverged"]) == 1
        steps = {p["id"]: p["step"] for p in teacher.value("s.experiment.students")}
        teacher.wait(
            "s.experiment.students.filter(p => p.state === 'running').every(p => p.step > "
            f"({json.dumps(steps)})[p.id] + 20)"
        )
        # ... and the chart moved with them: the training points' losses are not where they were.
        teacher.page.wait_for_function(
            "(before) => (document.getElementById('chart-class').data || []).some(t => t.name === 'training' "
            "&& (t.xaxis || 'x') === 'x' && t.y.length === 2 && t.y.some((y, i) => y !== before[i]))",
            arg=before["training"],
        )
        expect(teacher.page.locator("#class-ridges")).to_be_visible()
        assert _violations(teacher) == [] and _violations(diverged) == []  # axe: the panel, both sides
        # Reveal: the students see the class too.
        teacher.page.click("#btn-experiment-reveal")
        for student in students:
            expect(student.page.locator("#experiment-class")).to_be_visible()
            student.wait("s.experiment.students.length === 3")
        # Save results: the summary as JSON.
        with teacher.page.expect_download() as download:
            teacher.page.click("#btn-experiment-save")
        saved = json.loads(Path(download.value.path()).read_text())
        assert saved["experiment"]["field"] == "lr" and len(saved["summary"]["students"]) == 3
        # Stop all: every run that was still going stops; the diverged one stays diverged.
        teacher.page.click("#btn-experiment-stop")
        for student in students[:2]:
            student.wait("s.state === 'stopped'")
        teacher.wait("s.experiment.students.filter(p => p.state === 'stopped').length === 2")
        assert diverged.value("s.state") == "diverged"
        for page in (teacher, *students):
            assert page.errors == [], page.errors
