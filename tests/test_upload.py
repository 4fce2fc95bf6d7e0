"""Your own data (issue #13): a CSV parsed, checked and standardised (app/datasets/upload.py),
uploaded over HTTP into one live session (app/uploads.py), and trained on like any dataset."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from app.budget import DataShape, RunCost
from app.datasets.upload import Table, TableError, TableLimits, parse_table
from app.export import export_script, script_name
from app.spec import RunSpec
from app.training import Trainer
from tests.conftest import LiveServer
from tests.test_web import _until as web_until

LIMITS = TableLimits()
SMALL = {"depth": 2, "width": 16, "steps": 30, "emit_every": 5, "eval_every": 10, "bins": 16, "device": "cpu"}


def _csv(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    lines = ([",".join(header)] if header else []) + [",".join(str(cell) for cell in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def _blobs(
    rows: int = 120, features: int = 2, classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, on scales far from standard (the parser must fix them)."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % classes
    x = rng.normal(size=(rows, features)) * np.linspace(1, 50, features) + y[:, None] * 3 + 100
    return x, y


def _blob_csv(rows: int = 120, features: int = 2, classes: int = 3, names: tuple[str, ...] = ()) -> bytes:
    x, y = _blobs(rows, features, classes)
    labels = [names[k] if names else str(k) for k in y]
    header = [f"f{i}" for i in range(features)] + ["label"]
    return _csv([[f"{v:.6f}" for v in row] + [label] for row, label in zip(x, labels, strict=True)], header)


# ----------------------------------------------------------------------------- the parser


def test_standardised_like_numpy_and_labels_are_class_indices() -> None:
    x, y = _blobs(rows=90, features=3, classes=3)
    names = ("virginica", "setosa", "versicolor")
    table = parse_table(_blob_csv(rows=90, features=3, classes=3, names=names), LIMITS)
    parsed = np.array([[float(f"{v:.6f}") for v in row] for row in x])
    expected = (parsed - parsed.mean(axis=0)) / parsed.std(axis=0)
    assert table.x.dtype == np.float32 and table.x.shape == (90, 3)
    np.testing.assert_allclose(table.x, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(table.x.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(table.x.std(axis=0), 1, atol=1e-6)
    assert table.class_names == ("setosa", "versicolor", "virginica")  # alphabetical
    assert [table.class_names[k] for k in table.y] == [names[k] for k in y]
    assert table.feature_names == ("f0", "f1", "f2") and table.label_name == "label"


def test_a_constant_column_becomes_zeros_and_numeric_labels_sort_by_value() -> None:
    rows = [[7.5, i, [2, 10, 9][i % 3]] for i in range(30)]
    table = parse_table(_csv(rows), LIMITS)  # no header: the label is the last column
    assert np.all(table.x[:, 0] == 0)
    assert table.class_names == ("2", "9", "10")  # by value, not "10" < "2"
    assert table.feature_names == ("x1", "x2") and table.label_name == "label"


def test_the_label_column_is_the_named_one_or_label_or_the_last() -> None:
    rows = [[i % 2, i * 0.5, i * 2.0] for i in range(20)]
    named = parse_table(_csv(rows, ["kind", "a", "b"]), LIMITS, label="kind")
    assert named.label_name == "kind" and named.feature_names == ("a", "b") and named.classes == 2
    by_name = parse_table(_csv(rows, ["Label", "a", "b"]), LIMITS)
    assert by_name.label_name == "Label" and by_name.feature_names == ("a", "b")
    rows_last = [[i * 0.5, i * 2.0, i % 2] for i in range(20)]
    assert parse_table(_csv(rows_last, ["a", "b", "y"]), LIMITS).label_name == "y"
    # A byte-order mark (Excel's UTF-8 CSV) and CRLF line ends are fine.
    crlf = b"\xef\xbb\xbf" + _csv(rows, ["kind", "a", "b"]).replace(b"\n", b"\r\n")
    assert parse_table(crlf, LIMITS, label="kind").feature_names == ("a", "b")


def test_the_split_is_seeded_80_20_and_covers_every_row() -> None:
    table = parse_table(_blob_csv(rows=150), LIMITS)
    data = table.dataset(seed=3)
    assert (len(data.x_train), len(data.x_test)) == (120, 30)
    assert data.features == 2 and data.classes == 3 and data.name == "upload"
    again, other = table.dataset(seed=3), table.dataset(seed=4)
    assert bool((again.x_test == data.x_test).all()) and not bool((other.x_test == data.x_test).all())
    rows = {tuple(r) for r in np.vstack([data.x_train.numpy(), data.x_test.numpy()]).tolist()}
    assert rows == {tuple(r) for r in table.x.tolist()}


BAD: dict[str, tuple[bytes, str, int | None, int | None, str]] = {
    # name: (file, code, row, column, words the message must hold)
    "non-numeric": (b"a,b,label\n1,2,x\n3,oops,y\n", "non_numeric", 3, 2, "'oops' is not a number"),
    "formula": (b"a,b,label\n=SUM(A1),2,x\n", "non_numeric", 2, 1, "spreadsheet formula"),
    "missing value": (b"a,b,label\n1,,x\n", "missing_value", 2, 2, "missing"),
    "missing label": (b"a,b,label\n1,2,x\n1,2, \n", "missing_label", 3, 3, "label is empty"),
    "ragged": (b"a,b,label\n1,2,x\n1,2\n", "ragged", 3, None, "2 columns, but row 1 has 3"),
    "nan": (b"a,b,label\n1,2,x\n1,NaN,y\n", "non_finite", 3, 2, "'NaN' is not a finite number"),
    "inf": (b"a,b,label\n-inf,2,x\n", "non_finite", 2, 1, "not a finite number"),
    "huge exponent": (b"a,b,label\n1e999,2,x\n", "non_finite", 2, 1, "'1e999'"),
    "not utf-8": (b"a,b,label\n1,2,x\n1,\xe9,y\n", "not_utf8", 3, 2, "not UTF-8"),
    "empty": (b"", "empty", None, None, "empty"),
    "blank lines": (b"\n\r\n  \n", "empty", None, None, "empty"),
    "only header": (b"a,b,label\n", "only_header", 1, None, "no data rows"),
    "one column": (b"label\nx\ny\n", "too_few_columns", 1, None, "at least one feature"),
    "one class": (b"a,label\n" + b"1,x\n" * 10, "too_few_classes", None, None, "two classes"),
    "too few rows": (b"a,label\n" + b"1,x\n" * 6 + b"2,y\n" * 2, "too_few_rows", None, 2, "'y' has 2"),
    "unterminated quote": (b'a,label\n1,"x\n', "bad_csv", 2, None, "not CSV"),
    "no such label": (b"a,b\n1,2\n", "no_label_column", 1, None, "no column is named 'kind'"),
    "long label": (b"a,label\n1," + b"x" * 101 + b"\n", "label_too_long", 2, 2, "at most 100"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_file_is_refused_naming_the_row_column_and_reason(case: str) -> None:
    data, code, row, column, words = BAD[case]
    with pytest.raises(TableError) as refused:
        parse_table(data, LIMITS, label="kind" if case == "no such label" else None)
    error = refused.value
    assert (error.code, error.row, error.column) == (code, row, column), str(error)
    assert words in str(error)
    if row is not None:
        assert str(error).startswith(f"row {row}")
    if column is not None:
        assert f"column {column}" in str(error)
    wire = error.to_wire()
    assert wire["row"] == row and wire["column"] == column and wire["reason"] == code
    assert wire["message"] == str(error)


def test_the_limits_are_the_settings_and_name_the_row() -> None:
    limits = TableLimits(max_bytes=2000, max_rows=20, max_features=3, max_classes=3, min_rows_per_class=1)
    with pytest.raises(TableError, match="at most 2,000") as large:
        parse_table(b"1,2\n" * 600, limits)
    assert large.value.code == "too_large"
    with pytest.raises(TableError, match="more than 20 data rows") as rows:
        parse_table(b"a,label\n" + b"1,0\n2,1\n" * 11, limits)
    assert (rows.value.code, rows.value.row) == ("too_many_rows", 22)
    with pytest.raises(TableError, match="5 columns; at most 4") as wide:
        parse_table(b"1,2,3,4,0\n", limits)
    assert wide.value.code == "too_many_columns"
    with pytest.raises(TableError, match="'d' would be class 4; at most 3 classes") as many:
        parse_table(b"a,label\n1,a\n2,b\n3,c\n4,d\n", limits)
    assert (many.value.code, many.value.row, many.value.column) == ("too_many_classes", 5, 2)
    # A column named (the header) in the error.
    with pytest.raises(TableError, match=r"row 2, column 2 \(petal\)"):
        parse_table(b"sepal,petal,label\n1,x,a\n", limits)


# ----------------------------------------------------------------------------- training on it


def _frames(spec: RunSpec, table: Table, count: int = 4) -> list[dict[str, Any]]:
    frames = []
    for snapshot in Trainer(spec, table).run(threading.Event()):
        frames.append(snapshot.to_wire())
        if len(frames) == count:
            break
    return frames


def test_mlp_resmlp_and_cnn_train_on_a_table_and_the_same_config_is_the_same_run() -> None:
    table = parse_table(_blob_csv(rows=200, features=5, classes=4), LIMITS)
    for arch in ("mlp", "resmlp"):
        position = "pre" if arch == "resmlp" else "before"
        spec = RunSpec(arch=arch, dataset="upload", norm="layer", norm_position=position, **SMALL)
        trainer = Trainer(spec, table)
        assert trainer.data.features == 5 and trainer.data.classes == 4
        assert RunCost.of(spec, DataShape(5, 4, 200)).parameters == trainer.parameter_count
        first, second = _frames(spec, table), _frames(spec, table)
        assert first[-1]["step"] == 15 and [f["loss"] for f in first] == [f["loss"] for f in second]
        assert [f["layers"] for f in first] == [f["layers"] for f in second]
    images = parse_table(_blob_csv(rows=100, features=64, classes=2), LIMITS)
    cnn = RunSpec(arch="cnn", dataset="upload", depth=2, width=8, batch_size=16, steps=10, device="cpu")
    trainer = Trainer(cnn, images)
    priced = RunCost.of(cnn, DataShape(64, 2, 100)).parameters  # an upper bound, as for the digits
    assert trainer.parameter_count <= priced < RunCost.of(replace(cnn, dataset="digits")).parameters
    assert _frames(cnn, images, 2)[-1]["loss"] is not None


def test_the_exported_script_embeds_the_table_and_reproduces_the_run(tmp_path: Path) -> None:
    table = parse_table(_blob_csv(rows=100, features=3, classes=3), LIMITS)
    spec = RunSpec(dataset="upload", norm="batch", activation="tanh", **SMALL)
    text = export_script(spec, table)
    assert "UPLOAD_X = " in text and "DIGITS_CSV_GZ = " not in text
    path = tmp_path / script_name(spec)
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path), "--frames", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    ours = _frames(spec, table, 3)
    assert [f["step"] for f in theirs] == [f["step"] for f in ours]
    for mine, script in zip(ours, theirs, strict=True):
        assert script["loss"] == pytest.approx(mine["loss"], abs=1e-5)
        for app_layer, layer in zip(mine["layers"], script["layers"], strict=True):
            assert layer["pre"]["mean"] == pytest.approx(app_layer["pre"]["mean"], abs=1e-5)
            assert layer["post"]["std"] == pytest.approx(app_layer["post"]["std"], abs=1e-5)


# ----------------------------------------------------------------------------- the real server


@contextmanager
def _session(server: LiveServer) -> Iterator[tuple[ClientConnection, dict[str, Any]]]:
    with connect(server.ws, compression=None, max_size=None, open_timeout=10) as ws:
        hello = orjson.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        yield ws, hello["upload"]


def _send(ws: ClientConnection, message: dict[str, Any]) -> None:
    ws.send(orjson.dumps(message).decode())


def _until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    return web_until(ws, predicate, timeout)  # a training run here may take a minute


def _upload(server: LiveServer, token: str, data: bytes, **params: str) -> httpx.Response:
    return httpx.post(
        f"{server.http}/api/dataset",
        content=data,
        params=params,
        headers={"X-Upload-Token": token},
        timeout=60,
    )


def _error(ws: ClientConnection) -> dict[str, Any]:
    return _until(ws, lambda m: m["type"] == "error")


def test_hello_tells_the_token_and_limits(live_server: LiveServer) -> None:
    with _session(live_server) as (_, upload), _session(live_server) as (_, other):
        assert len(upload["token"]) >= 24 and upload["token"] != other["token"]
        assert upload["path"] == "api/dataset"
        assert (upload["max_bytes"], upload["max_rows"], upload["max_features"], upload["max_classes"]) == (
            5 * 2**20,
            20_000,
            256,
            50,
        )


def test_an_upload_trains_like_any_dataset_and_a_bad_one_keeps_nothing(live_server: LiveServer) -> None:
    with _session(live_server) as (ws, upload):
        # Before any upload, a config naming it is refused by field.
        _send(ws, {"type": "start", "config": {"dataset": "upload", **SMALL}})
        refused = _error(ws)
        assert refused["code"] == "invalid_config" and refused["errors"][0]["field"] == "dataset"
        assert "upload a CSV first" in refused["message"]
        # A bad file: the error names the row and column; nothing is kept.
        bad = _upload(live_server, upload["token"], b"a,b,label\n1,2,x\n3,oops,y\n")
        assert bad.status_code == 422
        body = bad.json()
        assert (
            body["code"] == "invalid_csv"
            and body["errors"][0]["row"] == 3
            and body["errors"][0]["column"] == 2
        )
        assert body["message"].startswith("row 3, column 2 (b): 'oops' is not a number")
        _send(ws, {"type": "start", "config": {"dataset": "upload", **SMALL}})
        assert _error(ws)["errors"][0]["field"] == "dataset"
        # A good one: the preview, then a run on it.
        good = _upload(live_server, upload["token"], _blob_csv(rows=150, classes=3), name="blobs.csv")
        assert good.status_code == 200, good.text
        preview = good.json()
        assert (preview["rows"], preview["features"], preview["classes"]) == (150, 2, 3)
        assert (preview["train_rows"], preview["test_rows"]) == (120, 30)
        assert preview["class_counts"] == [50, 50, 50] and preview["name"] == "blobs.csv"
        assert len(preview["scatter"]["x"]) == 150 and set(preview["scatter"]["label"]) == {0, 1, 2}
        _send(ws, {"type": "start", "config": {"dataset": "upload", **SMALL}})
        started = _until(ws, lambda m: m["type"] == "started")
        assert started["config"]["dataset"] == "upload"
        # 2 features in, 3 classes out: the first Linear is 2 x 16, the head 16 x 3.
        assert started["params"] == Trainer(RunSpec(dataset="upload", **SMALL), _table(150)).parameter_count
        frame = _until(ws, lambda m: m["type"] == "frame" and m["test_acc"] is not None and m["step"] > 0)
        assert 0 <= frame["test_acc"] <= 1
        assert (
            _until(ws, lambda m: m["type"] == "state" and m["state"] in ("done", "failed"))["state"] == "done"
        )
        # Compare mode: both twins train on it.
        _send(ws, {"type": "start", "config": {"dataset": "upload", **SMALL}, "compare": {"norm": "batch"}})
        runs = set()
        while runs != {"A", "B"}:
            runs.add(_until(ws, lambda m: m["type"] == "frame")["run"])
        assert _until(ws, lambda m: m["type"] == "state" and "run" not in m and m["state"] == "done")
        # The CNN needs 64 features; the transformer reads no dataset.
        _send(ws, {"type": "start", "config": {"dataset": "upload", "arch": "cnn", "steps": 10}})
        cnn = _error(ws)
        assert cnn["errors"][0]["field"] == "dataset" and "has 2 features, it needs 64" in cnn["message"]
        _send(ws, {"type": "start", "config": {"dataset": "upload", "arch": "transformer"}})
        assert _error(ws)["errors"][0]["field"] == "dataset"
        # A failed upload after a good one replaces nothing: the good table stays.
        assert _upload(live_server, upload["token"], b"\xff\xfe").status_code == 422
        _send(ws, {"type": "start", "config": {"dataset": "upload", **SMALL}})
        assert _until(ws, lambda m: m["type"] in ("started", "error"))["type"] == "started"


def _table(rows: int) -> Table:
    return parse_table(_blob_csv(rows=rows, classes=3), LIMITS)


def test_uploads_are_refused_without_a_live_token_or_past_the_byte_limit(live_server: LiveServer) -> None:
    with _session(live_server) as (_, upload):
        stranger = _upload(live_server, "not-a-token", _blob_csv())
        assert stranger.status_code == 403 and stranger.json()["code"] == "no_session"
        cross_site = httpx.post(
            f"{live_server.http}/api/dataset",
            content=_blob_csv(),
            headers={"X-Upload-Token": upload["token"], "Origin": "http://evil.example"},
        )
        assert cross_site.status_code == 403
        big = b"1,2,0\n" * (5 * 2**20 // 6 + 10)
        declared = _upload(live_server, upload["token"], big)
        assert declared.status_code == 413 and declared.json()["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
            for _ in range(6):
                yield b"1,2,0\n" * (2**20 // 6)

        streamed = httpx.post(
            f"{live_server.http}/api/dataset", content=chunks(), headers={"X-Upload-Token": upload["token"]}
        )
        assert streamed.status_code == 413 and "larger than 5,242,880 bytes" in streamed.json()["message"]


def test_the_data_are_gone_when_the_session_ends(live_server: LiveServer) -> None:
    stats = f"{live_server.http}/api/stats"
    with _session(live_server) as (ws, upload):
        assert _upload(live_server, upload["token"], _blob_csv(rows=100)).status_code == 200
        assert httpx.get(stats).json()["uploads"] >= 1
        session = next(s for s in live_server.app.state.sessions if s.upload_token == upload["token"])
        assert session.table is not None and session.table.rows == 100
        _send(ws, {"type": "start", "config": {"dataset": "upload", **SMALL, "steps": 100_000}})
        _until(ws, lambda m: m["type"] == "frame")
    # The server notices the close on its own loop: wait for it, by the condition, with a deadline.
    deadline = time.monotonic() + 30
    while session in live_server.app.state.sessions:
        assert time.monotonic() < deadline, "the session did not end"
        time.sleep(0.05)
    assert session.table is None
    late = _upload(live_server, upload["token"], _blob_csv())
    assert late.status_code == 403 and late.json()["code"] == "no_session"


def test_the_export_embeds_the_sessions_table_or_refuses_by_field(live_server: LiveServer) -> None:
    url = f"{live_server.http}/api/export-script"
    config = {"dataset": "upload", **SMALL}
    with _session(live_server) as (_, upload):
        refused = httpx.post(url, json={"config": config}, headers={"X-Upload-Token": upload["token"]})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "dataset"
        assert _upload(live_server, upload["token"], _blob_csv(rows=100)).status_code == 200
        script = httpx.post(url, json={"config": config}, headers={"X-Upload-Token": upload["token"]})
        assert (
            script.status_code == 200
            and "UPLOAD_ROWS, UPLOAD_FEATURES, UPLOAD_CLASSES = 100, 2, 3" in script.text
        )
        compile(script.text, "exported.py", "exec")
        # The CNN reads 8x8 images: a two-feature table is refused for it, as a start is.
        cnn = httpx.post(
            url, json={"config": {**config, "arch": "cnn"}}, headers={"X-Upload-Token": upload["token"]}
        )
        assert cnn.status_code == 422 and "needs 64" in cnn.json()["message"], cnn.text


def test_a_class_experiment_on_uploaded_data_is_refused_by_field(live_server: LiveServer) -> None:
    with _session(live_server) as (ws, upload):
        assert _upload(live_server, upload["token"], _blob_csv(rows=100)).status_code == 200
        _send(ws, {"type": "room_open"})
        _until(ws, lambda m: m["type"] == "room")
        config = {"dataset": "upload", **SMALL}
        _send(ws, {"type": "experiment_open", "field": "lr", "values": [0.1, 1], "config": config})
        error = _error(ws)
        assert error["errors"][0]["field"] == "config.dataset" and "built-in dataset" in error["message"]
        # The room's own run (the teacher's session's) trains on the teacher's data.
        _send(ws, {"type": "start", "config": config})
        assert _until(ws, lambda m: m["type"] == "started")["config"]["dataset"] == "upload"
        _send(ws, {"type": "room_close"})


def test_a_sweep_on_uploaded_data(live_server: LiveServer) -> None:
    with _session(live_server) as (ws, upload):
        assert _upload(live_server, upload["token"], _blob_csv(rows=100)).status_code == 200
        config = {"dataset": "upload", **SMALL}
        _send(ws, {"type": "sweep", "config": config, "lrs": [0.1, 1.0], "steps": 20})
        result = _until(ws, lambda m: m["type"] == "sweep_result")
        assert result["lr"] == 0.1 and result["final_loss"] is not None


def test_a_table_prices_the_run_it_feeds() -> None:
    small, wide = DataShape(2, 2, 100), DataShape(256, 50, 20_000)
    spec = RunSpec(dataset="upload", depth=2, width=16)
    assert RunCost.of(spec, wide).parameters - RunCost.of(spec, small).parameters == (256 - 2) * 16 + 48 * 17
    many = DataShape(2, 2, 20_000)  # 4,000 test rows to pass over at every evaluation
    assert RunCost.of(spec, many).eval_flops > RunCost.of(spec, small).eval_flops
    assert RunCost.of(replace(spec, arch="transformer")) == RunCost.of(
        replace(spec, arch="transformer", dataset="digits")
    )
