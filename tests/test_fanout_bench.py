"""The fan-out benchmark runs end to end in its smoke mode and prints a well-formed JSON report.

No timing thresholds: the machine is shared, so the numbers only have to exist and make sense;
what must hold is that every viewer of the room got the teacher's frames, in order.
"""

from __future__ import annotations

from tests.conftest import ROOT, run_script_json

BENCH = ROOT / "bench" / "fanout.py"


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_quick_fanout_bench_reaches_every_viewer_and_reports_every_measurement() -> None:
    report = run_script_json(BENCH, "--quick", "--json", timeout=90)
    assert set(report) == {"config", "rows", "targets"}

    config = report["config"]
    assert config["quick"] is True and config["viewers"] == [3, 10] and config["cores"] >= 1
    assert config["run"]["max_steps_per_s"] == 150 and config["run"]["emit_every"] == 5
    assert len(config["loadavg_at_start"]) == len(config["loadavg_at_end"]) == 3

    rows = report["rows"]
    assert [row["viewers"] for row in rows] == config["viewers"]
    for row in rows:
        frames = row["frames_per_viewer"]
        assert len(frames) == row["viewers"]
        assert all(isinstance(n, int) and n > 0 for n in frames)  # every viewer received frames
        assert row["frames_out_of_order"] == 0  # each viewer's steps only grow
        assert row["history_kib_median"] > 0  # joined mid-run: the run so far came first
        assert row["announcements_median"] >= 0
        assert isinstance(row["frames_dropped"], int) and row["frames_dropped"] >= 0
        assert row["run_fps"] > 0 and row["teacher_fps"] > 0
        fps = row["fps"]
        assert 0 < fps["min"] <= fps["p5"] <= fps["median"]
        latency = row["latency_ms"]
        assert latency["samples"] == sum(frames)
        assert latency["p50"] <= latency["p95"] <= latency["max"]
        cpu = row["cpu_pct"]
        assert all(_number(cpu[k]) for k in ("server", "workers", "bench_client", "others", "steal"))
        assert cpu["workers"] > 0  # the run trained in the worker, not in the server
        assert row["server_rss_mib"] > 0 and row["join_s"] > 0

    targets = report["targets"]
    assert targets["viewers"] == 10  # the largest class at or below the targets' 100
    goals = {k: v for k, v in targets.items() if k != "viewers"}
    assert set(goals) == {"server_cpu_pct", "latency_p95_ms", "min_fps"}
    assert all(set(t) == {"target", "value", "ok"} and isinstance(t["ok"], bool) for t in goals.values())
