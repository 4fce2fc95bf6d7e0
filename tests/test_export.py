"""Export as script (issue: record, replay, export): the exported file, run on its own in a fresh
Python, reproduces the app's run. For each architecture and every norm of the MLP, the script's
first three frames agree with the Trainer's to 1e-5: per layer, the mean, std and median of what
goes into each tap (pre) and what comes out (post), and the saturated and dead fractions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.export import export_script, script_name
from app.spec import RunSpec
from app.training import Trainer

FRAMES = 3
SMALL = {"steps": 40, "emit_every": 2, "eval_every": 20, "device": "cpu"}
CASES = {
    **{
        f"mlp-{norm}": RunSpec(depth=4, width=32, norm=norm, groups=4, activation="tanh", **SMALL)
        for norm in ("none", "batch", "layer", "group", "rms")
    },
    "mlp-after-relu-momentum": RunSpec(
        dataset="spiral",
        depth=3,
        width=16,
        activation="relu",
        norm="batch",
        norm_position="after",
        optimizer="momentum",
        init="kaiming",
        **SMALL,
    ),
    "mlp-noisy-bn-adam-warmup": RunSpec(
        depth=3, width=24, norm="batch", noisy_norm=True, optimizer="adam", lr=0.01, warmup_steps=4, **SMALL
    ),
    "resmlp": RunSpec(
        arch="resmlp", dataset="moons", depth=2, width=16, norm="layer", norm_position="pre", **SMALL
    ),
    "cnn": RunSpec(arch="cnn", depth=2, width=8, norm="batch", activation="relu", batch_size=32, **SMALL),
    "transformer": RunSpec(
        arch="transformer",
        depth=2,
        d_model=32,
        heads=4,
        norm="layer",
        norm_position="post",
        optimizer="adam",
        lr=0.01,
        activation="gelu",
        **SMALL,
    ),
}


def _app_frames(spec: RunSpec) -> list[dict[str, Any]]:
    frames = []
    for snapshot in Trainer(spec).run(threading.Event()):
        frames.append(snapshot.to_wire())
        if len(frames) == FRAMES:
            break
    return frames


def _script_frames(spec: RunSpec, folder: Path) -> list[dict[str, Any]]:
    path = folder / script_name(spec)
    path.write_text(export_script(spec), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path), "--frames", str(FRAMES), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,  # no ShiftScope on its path
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("case", list(CASES))
def test_the_exported_script_reproduces_the_first_frames(case: str, tmp_path: Path) -> None:
    spec = CASES[case]
    ours, theirs = _app_frames(spec), _script_frames(spec, tmp_path)
    assert [f["step"] for f in theirs] == [f["step"] for f in ours] == [0, 2, 4]
    for mine, script in zip(ours, theirs, strict=True):
        assert script["loss"] == pytest.approx(mine["loss"], abs=1e-5)
        assert [layer["name"] for layer in script["layers"]] == [layer["name"] for layer in mine["layers"]]
        for app_layer, layer in zip(mine["layers"], script["layers"], strict=True):
            for side in ("pre", "post"):
                for stat in ("mean", "std", "p50"):
                    assert layer[side][stat] == pytest.approx(app_layer[side][stat], abs=1e-5), (
                        case,
                        mine["step"],
                        layer["name"],
                        side,
                        stat,
                    )
            assert layer["saturated"] == pytest.approx(app_layer["saturated"], abs=1e-6)
            assert layer["dead"] == pytest.approx(app_layer["dead"], abs=1e-6)


def test_the_script_is_one_readable_file_with_the_run_in_it() -> None:
    spec = replace(CASES["mlp-batch"], lr=0.37, seed=11, probe_gradients=True)
    text = export_script(spec)
    assert text.startswith("#!/usr/bin/env python3\n")
    assert "    lr: float = 0.37" in text and "    seed: int = 11" in text
    assert "from app" not in text and "import app" not in text  # standalone
    assert "Left out: the instruments this run had on (probe_gradients)" in text
    assert 'DIGITS_CSV_GZ = """' in text  # the digits travel inside the file
    assert 'DIGITS_CSV_GZ = """' not in export_script(replace(spec, dataset="spiral"))
    compile(text, "exported.py", "exec")


def test_the_server_exports_a_config_as_a_download_and_refuses_bad_ones_by_field() -> None:
    import httpx

    from app.config import Settings
    from tests.conftest import serve

    with serve(Settings(max_message_bytes=4096)) as server:
        url = f"{server.http}/api/export-script"
        reply = httpx.post(url, json={"config": {"norm": "batch", "lr": 0.25}})
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/x-python")
        assert reply.headers["content-disposition"] == 'attachment; filename="shiftscope-mlp-batch.py"'
        assert "    lr: float = 0.25" in reply.text and "    norm: str = 'batch'" in reply.text
        # Compare mode: run B's config, A's with the compare fields changed.
        twin = httpx.post(url, json={"config": {"norm": "none"}, "compare": {"norm": "layer"}, "run": "B"})
        assert twin.status_code == 200 and "    norm: str = 'layer'" in twin.text
        bad = httpx.post(url, json={"config": {"depth": 0}})
        assert bad.status_code == 422
        assert bad.json()["code"] == "invalid_config" and bad.json()["errors"][0]["field"] == "depth"
        assert httpx.post(url, content=b"{nope").json()["code"] == "bad_json"
        assert httpx.post(url, json={"config": {}, "run": "B"}).json()["code"] == "bad_request"
        huge = httpx.post(url, json={"config": {"x": "y" * 8000}})
        assert huge.status_code == 413 and huge.json()["code"] == "too_large"
        assert httpx.get(f"{server.http}/healthz").json() == {"status": "ok"}
