"""The classroom benchmark runs end to end in its smoke mode and prints a well-formed JSON report.

No timing thresholds (the machine is shared; speed is the benchmark's to report): what must hold
is that every student was admitted and streamed frames of its own run, and that every figure the
note quotes is there and makes sense.
"""

from __future__ import annotations

from tests.conftest import ROOT, run_script_json

BENCH = ROOT / "bench" / "classroom.py"


def test_quick_classroom_bench_streams_every_student_and_reports_every_measurement() -> None:
    report = run_script_json(BENCH, "--quick", "--json", timeout=120)
    assert set(report) == {"config", "rows", "targets"}
    config = report["config"]
    assert config["quick"] is True and config["students"] == [2, 4] and config["cores"] >= 1
    assert config["preset"] == "sigmoid-saturation" and config["run"]["max_steps_per_s"] > 0

    for row, size in zip(report["rows"], config["students"], strict=True):
        assert row["students"] == size
        # The default preset's floor is ~0.075 of a core: a class this small is admitted whole.
        assert row["admitted"] == row["streaming"] == size and row["busy"] == 0 and row["queued"] == 0
        assert 0 < row["fps"]["min"] <= row["fps"]["p5"] <= row["fps"]["median"]
        assert 0 < row["steps_per_s"]["min"] <= row["steps_per_s"]["median"]
        assert row["first_frame_s"]["p95"] is not None and row["first_frame_s"]["p95"] > 0
        assert row["loop_lag_p99_ms"] is not None and row["loop_lag_p99_ms"] >= 0
        assert row["pss_gib"] > 0 and row["cpu_pct"]["workers"] > 0
        assert 0 < row["load_per_student"] < row["capacity"]

    targets = report["targets"]
    assert targets["students"] == 4
    goals = {k: v for k, v in targets.items() if k != "students"}
    assert set(goals) == {
        "fps_p5",
        "steps_per_s_p5",
        "first_frame_p95_s",
        "loop_lag_p99_ms",
        "pss_gib",
        "silent",
    }
    assert all(set(t) == {"target", "value", "ok"} and isinstance(t["ok"], bool) for t in goals.values())
