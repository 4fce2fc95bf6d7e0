"""The training benchmark runs end to end in its smoke mode and prints well-formed JSON.

No timing thresholds: the numbers only have to exist and be positive.
"""

from __future__ import annotations

from tests.conftest import ROOT, run_script_json

BENCH = ROOT / "bench" / "bench_training.py"

COLUMNS = {
    "depth",
    "width",
    "bare_steps_s",
    "e1_steps_s",
    "e1_pct",
    "e10_steps_s",
    "e10_pct",
    "frame_bytes",
    "encode_us",
    "collect_ms",
    "snapshot_ms",
    "emit_every_20fps",
    "e20fps_steps_s",
    "e20fps_fps",
    "e20fps_pct",
    "e20fps_cost_pct",  # 100 - e20fps_pct: may be negative on a noisy machine
    "cost_at_20fps_pct",  # the same, scaled to 20 frames/s: may be negative too
    "rounds",
}


def test_quick_bench_prints_rows_of_positive_numbers() -> None:
    report = run_script_json(BENCH, "--quick", "--json", timeout=120)

    assert report["config"]["threads"] == 1
    rows = report["rows"]
    assert [(row["depth"], row["width"]) for row in rows] == [(4, 64)]
    row = rows[0]
    assert set(row) == COLUMNS
    for column in COLUMNS - {"e20fps_cost_pct", "cost_at_20fps_pct"}:
        value = row[column]
        assert isinstance(value, int | float) and not isinstance(value, bool), (column, value)
        assert value > 0, (column, value)
    assert isinstance(row["frame_bytes"], int) and isinstance(row["emit_every_20fps"], int)
    scaled = row["e20fps_cost_pct"] * 20 / row["e20fps_fps"]
    assert abs(row["cost_at_20fps_pct"] - scaled) < 1e-9 * max(1.0, abs(scaled))


def test_instrument_bench_quick_json() -> None:
    report = run_script_json(ROOT / "bench" / "bench_instruments.py", "--quick", "--json", timeout=300)
    rows = {row["variant"]: row for row in report["rows"]}
    assert {"all off", "probe_gradients", "ics_every=10", "landscape_every=20", "compare (A+B)"} <= set(rows)
    assert rows["all off"]["percent_of_off"] == 100.0
    assert all(row["steps_per_s"] > 0 for row in rows.values())


def test_architecture_bench_quick_json() -> None:
    report = run_script_json(
        ROOT / "bench" / "bench_architectures.py",
        "--quick",
        "--json",
        "--presets",
        "resmlp-pre-post",
        "transformer-one-token",
        timeout=300,
    )
    rows = {row["preset"]: row for row in report["rows"]}
    assert set(rows) == {"resmlp-pre-post", "transformer-one-token"}
    assert rows["transformer-one-token"]["arch"] == "transformer"
    for row in rows.values():
        assert row["a_steps_s"] > 0 and row["b_steps_s"] > 0 and row["twins_steps_s"] > 0
        assert row["to_effect_s"] >= 0
