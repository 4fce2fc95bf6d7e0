"""The training benchmark runs end to end in its smoke mode and prints well-formed JSON.

No timing thresholds: the numbers only have to exist and be positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
    "rounds",
}


def test_quick_bench_prints_rows_of_positive_numbers() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert report["config"]["threads"] == 1
    rows = report["rows"]
    assert [(row["depth"], row["width"]) for row in rows] == [(4, 64)]
    row = rows[0]
    assert set(row) == COLUMNS
    for column in COLUMNS - {"e20fps_cost_pct"}:
        value = row[column]
        assert isinstance(value, int | float) and not isinstance(value, bool), (column, value)
        assert value > 0, (column, value)
    assert isinstance(row["frame_bytes"], int) and isinstance(row["emit_every_20fps"], int)


def test_instrument_bench_quick_json() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "bench_instruments.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = {row["variant"]: row for row in json.loads(result.stdout)["rows"]}
    assert {"all off", "probe_gradients", "ics_every=10", "landscape_every=20", "compare (A+B)"} <= set(rows)
    assert rows["all off"]["percent_of_off"] == 100.0
    assert all(row["steps_per_s"] > 0 for row in rows.values())
