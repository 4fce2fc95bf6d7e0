"""The load benchmark runs end to end in its smoke mode and prints a well-formed JSON report.

No timing thresholds: the machine is shared, so the numbers only have to exist and make sense.
"""

from __future__ import annotations

from tests.conftest import ROOT, run_script_json

BENCH = ROOT / "bench" / "load.py"


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_quick_load_bench_reports_every_measurement() -> None:
    report = run_script_json(BENCH, "--quick", "--json", timeout=240)
    assert set(report) == {"config", "load", "throughput", "targets"}

    config = report["config"]
    runs, sessions = config["runs"], config["sessions"]
    assert config["quick"] is True and sessions == 10 and runs == config["cores"] >= 1
    assert len(config["loadavg_at_start"]) == len(config["loadavg_at_end"]) == 3

    load = report["load"]
    assert load["idle_sessions"] == sessions and load["streaming_runs"] == runs
    assert load["connected"] == sessions + runs  # the server counted every session
    assert len(load["frames_per_run"]) == len(load["fps_per_run"]) == runs
    assert all(isinstance(n, int) and n > 0 for n in load["frames_per_run"])  # every run streamed
    assert isinstance(load["frames_dropped"], int)
    latency = load["latency_ms"]
    assert latency["samples"] == sum(load["frames_per_run"])
    assert all(_number(latency[k]) for k in ("p50", "p95", "max"))
    assert latency["p50"] <= latency["p95"] <= latency["max"]
    lag = load["loop_lag_ms"]
    assert all(_number(lag[k]) and lag[k] >= 0 for k in ("p50_ms", "p99_ms", "max_ms"))
    cpu = load["cpu_pct"]
    assert _number(cpu["server"]) and _number(cpu["bench_client"]) and len(cpu["workers"]) == runs
    assert sum(cpu["workers"]) > 0  # the runs trained in the workers, not in the server
    busy = load["busy"]
    assert busy["queued"] == config["queue"] and busy["tries"] == 2
    assert busy["close_codes"] == [1013]  # "try again later"
    assert 0 < busy["reply_ms"]["median"] <= busy["reply_ms"]["max"]
    assert load["config"]["max_steps_per_s"] > 0

    throughput = report["throughput"]
    assert throughput["config"]["max_steps_per_s"] == 0
    assert throughput["solo_steps_per_s"] > 0 and throughput["fair_share_steps_per_s"] > 0
    assert len(throughput["steps_per_s"]) == len(throughput["pct_of_fair_share"]) == runs
    assert all(r > 0 for r in throughput["steps_per_s"])
    assert throughput["solo_steps_per_cpu_s"] > 0 and throughput["together_steps_per_cpu_s"] > 0
    assert throughput["cpu_efficiency_pct"] > 0

    targets = report["targets"]
    assert set(targets) == {"sessions", "fps", "latency_p95_ms", "loop_lag_p99_ms", "fair_share_pct"}
    assert all(set(t) == {"target", "value", "ok"} and isinstance(t["ok"], bool) for t in targets.values())
