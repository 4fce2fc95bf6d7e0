"""Export a run as one standalone PyTorch script that reproduces it (issue: record, replay, export).

The script is ShiftScope's own code for what the run needs, gathered into one file: the dataset
generators (and, for the digits, the data themselves, embedded), the layers and the run's
architecture, plus a plain training loop that does what `training.Trainer` does (seed, data order,
optimizer, warmup, the step-0 frame) and prints what the charts show, per layer and frame: the
mean, std and median of each tap's input (pre) and output (post), and the saturated and dead
fractions. It needs torch and numpy and nothing else; a learner can change CONFIG and run it again.

Being the same code (not a re-implementation), the script's numbers are the app's: for every
architecture and every norm the first frames agree to 1e-5 (tests/test_export.py). What it leaves
out: the instruments (gradient histograms, drift, ICS, the landscape), which are measurements
beside the run, not part of it.

    text = export_script(spec)             # the file's text
    text = export_script(spec, table)      # a run on uploaded data: the standardised table embedded
    name = script_name(spec)               # "shiftscope-mlp-batch.py"
"""

from __future__ import annotations

import ast
import base64
import gzip
import inspect
import textwrap
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app import __version__, probes
from app.datasets.classification import DIGITS_FILE
from app.datasets.upload import Table
from app.spec import RunSpec
from app.training import BatchSampler, build_optimizer

__all__ = ["export_script", "script_name"]

APP = Path(__file__).resolve().parent
# The modules a run needs, in the order they must run; each architecture adds its own.
COMMON = ["datasets/dataset.py", "objective.py", "nets/layers.py"]
DATA = {"classification": "datasets/classification.py", "sequences": "datasets/sequences.py"}
ARCH_MODULES = {
    "mlp": "nets/mlp.py",
    "resmlp": "nets/resmlp.py",
    "cnn": "nets/cnn.py",
    "transformer": "nets/transformer.py",
}
BUILDERS = {
    "mlp": "build_mlp(spec, data.features, data.classes)",
    "resmlp": "build_resmlp(spec, data.features, data.classes)",
    "cnn": "build_cnn(spec, data.classes)",
    "transformer": "build_transformer(spec, vocab_size=data.classes, max_len=data.features)",
}
# What the instruments would add; the script trains without them (the training is the same).
INSTRUMENTS = ("probe_gradients", "drift_lag", "ics_every", "landscape_every")


def script_name(spec: RunSpec) -> str:
    norm = spec.norm if spec.norm != "none" else "nonorm"
    return f"shiftscope-{spec.arch}-{norm}.py"


def export_script(spec: RunSpec, table: Table | None = None) -> str:
    """The standalone script that reproduces `spec`'s run (`table`: the uploaded data it trains on)."""
    upload = spec.arch != "transformer" and spec.dataset == "upload"
    assert not upload or table is not None, "a run on uploaded data exports with its table"
    modules = [
        *COMMON[:1],
        DATA["sequences" if spec.arch == "transformer" else "classification"],
        *COMMON[1:],
    ]
    modules.append(ARCH_MODULES[spec.arch])
    imports: list[str] = ["from __future__ import annotations"]
    bodies: list[str] = []
    for module in modules:
        module_imports, body = _inline(APP / module)
        imports += [line for line in module_imports if line not in imports]
        bodies.append(f"# {'=' * 94}\n# app/{module}\n{body}")
    for line in (
        "import argparse",
        "import json",
        "import math",
        "import time",
        "import numpy as np",
        "import torch",
        "from dataclasses import dataclass",
    ):
        if line not in imports:
            imports.append(line)
    digits = spec.arch == "cnn" or (spec.arch != "transformer" and spec.dataset == "digits")
    return "\n".join(
        [
            "#!/usr/bin/env python3",
            _docstring(spec),
            *_sorted_imports(imports),
            "",
            _config(spec),
            *bodies,
            f"# {'=' * 94}\n# The training loop: what app/training.py's Trainer does, less the instruments.",
            textwrap.dedent(inspect.getsource(BatchSampler)),
            textwrap.dedent(inspect.getsource(build_optimizer)),
            _training_loop(spec, upload),
            _digits_data() if digits and not upload else "",
            _uploaded_data(table) if upload and table is not None else "",
            'if __name__ == "__main__":\n    main()\n',
        ]
    )


def _docstring(spec: RunSpec) -> str:
    off = [name for name in INSTRUMENTS if getattr(spec, name)]
    left_out = (
        f"\nLeft out: the instruments this run had on ({', '.join(off)}); they measure beside the run and\n"
        "do not change its training.\n"
        if off
        else ""
    )
    what = f"{spec.arch}, depth {spec.depth}, norm {spec.norm}"
    if spec.arch != "transformer":
        what += f", width {spec.width}, {spec.activation}, {spec.dataset}"
    return f'''"""A ShiftScope run as a standalone PyTorch script: {what}.

Exported from ShiftScope {__version__} on {datetime.now(UTC):%Y-%m-%d}. It builds the same data, network,
initial weights, data order, optimizer and schedule as the run did in ShiftScope (this is
ShiftScope's own code, gathered into one file), trains it and prints what ShiftScope's charts show:
for each layer, the mean, std and median (p50) of what goes into it (pre) and what comes out
(post), and the fractions of units saturated or dead. ShiftScope summarises the first examples of
each batch (at most a few thousand values a tensor); so does this script.

    python {script_name(spec)}              # the whole run, a table every emit_every steps
    python {script_name(spec)} --frames 3   # the first three frames only
    python {script_name(spec)} --json       # one JSON line a frame, for your own plots

It needs torch and numpy, and no network. Change the values in RunSpec below and run it again.{left_out}"""'''


def _config(spec: RunSpec) -> str:
    lines = [
        "# " + "=" * 94,
        "# The run. RunSpec is ShiftScope's description of one run; every field the code reads.",
        "",
        "",
        "@dataclass(frozen=True)",
        "class RunSpec:",
    ]
    for field in fields(spec):
        value = getattr(spec, field.name)
        lines.append(f"    {field.name}: {type(value).__name__} = {value!r}")
    lines += ["", "", "CONFIG = RunSpec()", ""]
    return "\n".join(lines)


def _inline(path: Path) -> tuple[list[str], str]:
    """A module's imports (those of app's own modules and __future__ dropped) and the rest of its
    source (its docstring as a comment, `__all__` dropped)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: set[int] = set()
    imports: list[str] = []
    header = ""
    for node in tree.body:
        span = range(node.lineno - 1, (node.end_lineno or node.lineno))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            header = "\n".join(f"# {line}".rstrip() for line in str(node.value.value).splitlines())
            drop.update(span)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            drop.update(span)
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module == "__future__" or (module or "").startswith("app"):
                continue
            imports.append(" ".join(lines[i].strip() for i in span))
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            drop.update(span)
    body = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n")
    if path.name == "classification.py":  # the digits come embedded at the end of the script
        reading = '    with gzip.open(DIGITS_FILE, "rt") as f:'
        if reading not in body:  # loud, not a script that looks for a file it does not have
            raise RuntimeError(f"app/{path.name} no longer reads the digits with {reading.strip()!r}")
        embedded = '    with gzip.open(io.BytesIO(base64.b64decode(DIGITS_CSV_GZ)), "rt") as f:'
        body = body.replace(reading, embedded)
        imports += ["import base64", "import io"]
    return imports, f"{header}\n\n{body}\n" if header else f"{body}\n"


def _sorted_imports(imports: list[str]) -> list[str]:
    """One import line per module, `from x import` names merged, __future__ first."""
    plain: set[str] = set()
    names: dict[str, set[str]] = {}
    for line in imports:
        if line.startswith("from "):
            module, _, imported = line[5:].partition(" import ")
            names.setdefault(module, set()).update(n.strip() for n in imported.strip("()").split(","))
        else:
            plain.add(line)
    future = names.pop("__future__", set())
    merged = [f"from {module} import {', '.join(sorted(found))}" for module, found in sorted(names.items())]
    return [f"from __future__ import {', '.join(sorted(future))}", "", *sorted(plain), *merged]


def _training_loop(spec: RunSpec, upload: bool = False) -> str:
    """The loop, with the probes' own constants and summary rule (not restated here)."""
    filled = {
        "MAX_SUMMARY_VALUES": repr(probes.MAX_SUMMARY_VALUES),
        "FRAME_SUMMARY_VALUES": repr(probes.FRAME_SUMMARY_VALUES),
        "MIN_SUMMARY_VALUES": repr(probes.MIN_SUMMARY_VALUES),
        "SATURATION_FRACTION": repr(probes.SATURATION_FRACTION),
        "GELU_DEAD_BELOW": repr(probes.GELU_DEAD_BELOW),
        "summary_values": inspect.getsource(probes.summary_values).rstrip(),
    }
    text = TRAINING.replace("BUILD_NETWORK", BUILDERS[spec.arch])
    if upload:
        text = text.replace(LOAD_BUILT_IN, "uploaded_dataset(spec.seed)")
    for key, value in filled.items():
        text = text.replace("{" + key + "}", value)
    return text


def _digits_data() -> str:
    encoded = base64.b64encode(DIGITS_FILE.read_bytes()).decode()
    wrapped = "\n".join(textwrap.wrap(encoded, 100))
    return (
        "# The 8x8 handwritten digits (UCI, 1797 images; see ShiftScope's app/data/DIGITS-LICENSE.md),\n"
        "# as ShiftScope ships them: gzipped CSV, 64 pixels 0-16 and the label a row.\n"
        f'DIGITS_CSV_GZ = """\n{wrapped}\n"""\n'
    )


def _uploaded_data(table: Table) -> str:
    """The standardised table as the run trained on it, bit for bit: gzipped float32 features and
    int64 labels, base64 encoded, split by the seed as ShiftScope splits it (split_rows)."""

    def encoded(array: np.ndarray) -> str:
        text = base64.b64encode(gzip.compress(array.tobytes(), mtime=0)).decode()
        return "\n".join(textwrap.wrap(text, 100))

    names = ", ".join(table.feature_names[:6]) + (" ..." if table.features > 6 else "")
    return (
        f"# Your uploaded table, standardised (each feature column: mean 0, std 1 over all rows), as\n"
        f"# ShiftScope trained on it: {table.rows} rows, {table.features} features ({names}),\n"
        f"# label {table.label_name!r}, classes in this order: {list(table.class_names)[:20]!r}\n"
        f"UPLOAD_ROWS, UPLOAD_FEATURES, UPLOAD_CLASSES = {table.rows}, {table.features}, {table.classes}\n"
        f'UPLOAD_X = """\n{encoded(table.x)}\n"""\n'
        f'UPLOAD_Y = """\n{encoded(table.y)}\n"""\n\n\n'
        "def uploaded_dataset(seed):\n"
        '    """The uploaded table split 80/20 by the seed, as ShiftScope splits it."""\n'
        "    x = np.frombuffer(gzip.decompress(base64.b64decode(UPLOAD_X)), dtype=np.float32)\n"
        "    y = np.frombuffer(gzip.decompress(base64.b64decode(UPLOAD_Y)), dtype=np.int64)\n"
        "    x = torch.from_numpy(x.reshape(UPLOAD_ROWS, UPLOAD_FEATURES).copy())\n"
        "    y = torch.from_numpy(y.copy())\n"
        '    return split_rows("upload", x, y, UPLOAD_CLASSES, torch.Generator().manual_seed(seed))\n'
    )


LOAD_BUILT_IN = "load_dataset(spec.dataset, spec.noise, spec.seed)"
TRAINING = '''
# What ShiftScope's probes (app/probes.py) summarise and call saturated or dead.
MAX_SUMMARY_VALUES = {MAX_SUMMARY_VALUES}
FRAME_SUMMARY_VALUES = {FRAME_SUMMARY_VALUES}
MIN_SUMMARY_VALUES = {MIN_SUMMARY_VALUES}
SATURATION_FRACTION = {SATURATION_FRACTION}
GELU_DEAD_BELOW = {GELU_DEAD_BELOW}


{summary_values}


def statistics(values, limit):
    """Mean, population std and median of the first examples of a (batch, ...) tensor holding at
    most `limit` values, as ShiftScope computes them; None where a value is not finite."""
    rows = max(1, limit // max(1, math.prod(values.shape[1:])))
    flat = values[:rows].detach().reshape(-1).float().cpu()
    if not bool(torch.isfinite(flat).all()):
        return None
    mean = flat.mean()
    std = (flat - mean).pow(2).mean().sqrt()
    median = float(np.percentile(flat.numpy().astype(np.float64), 50))
    return {"mean": mean.item(), "std": std.item(), "p50": median}


def fractions(activation, pre, post):
    """The saturated fraction (slope below 5% of its maximum) and the dead one (units that give
    nothing for the whole batch), over the whole batch."""
    saturated = dead = 0.0
    if activation == "sigmoid":
        saturated = (post * (1 - post) < SATURATION_FRACTION * 0.25).float().mean().item()
    elif activation == "tanh":
        saturated = (1 - post * post < SATURATION_FRACTION).float().mean().item()
    if activation in ("relu", "gelu"):
        off = (pre <= 0) if activation == "relu" else (pre < GELU_DEAD_BELOW)
        dead = off.reshape(off.shape[0], -1).all(dim=0).float().mean().item()
    return saturated, dead


def main():
    parser = argparse.ArgumentParser(description="Train the exported ShiftScope run.")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON line a frame")
    args = parser.parse_args()
    spec = CONFIG
    torch.set_num_threads(1)  # as ShiftScope trains: one thread a run
    device = torch.device("cuda" if spec.device == "cuda" else "cpu")
    data = load_task(spec.task, spec.seq_len, spec.vocab, spec.seed) if spec.arch == "transformer" else None
    data = data or load_dataset(spec.dataset, spec.noise, spec.seed)
    model = BUILD_NETWORK.to(device)
    taps = model.taps()
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    optimizer = build_optimizer(spec, model.parameters())
    sampler = BatchSampler(len(x_train), min(spec.batch_size, len(x_train)), spec.seed)
    limit = summary_values(len(taps))

    # Each tap's module: what it receives is `pre`, what it returns `post` (kept while armed).
    captured = {}
    armed = [False]

    def hook(index):
        def keep(module, inputs, output):
            if armed[0]:
                captured[index] = (inputs[0].detach(), output.detach())

        return keep

    modules = []
    for tap in taps:
        if all(m is not tap.module for m in modules):
            modules.append(tap.module)
    for index, module in enumerate(modules):
        module.register_forward_hook(hook(index))

    def frame(step, loss, logits, y, lr):
        armed[0] = False
        layers = []
        for tap in taps:
            pre, post = captured[next(i for i, m in enumerate(modules) if m is tap.module)]
            if tap.channels is not None:
                first, last = tap.channels
                pre, post = pre[:, first:last], post[:, first:last]
            saturated, dead = fractions(tap.activation, pre, post)
            layers.append(
                {"name": tap.name, "pre": statistics(pre, limit), "post": statistics(post, limit),
                 "saturated": saturated, "dead": dead}
            )
        finite = math.isfinite(loss)
        record = {"step": step, "loss": loss if finite else None, "train_acc": accuracy(logits, y), "lr": lr,
                  "layers": layers}
        if finite and (step % spec.eval_every == 0 or step == spec.steps):
            model.eval()
            with torch.no_grad():
                record["test_acc"] = accuracy(model(x_test), y_test)
            model.train()
        show(record)

    def show(record):
        if args.json:
            print(json.dumps(record), flush=True)
            return
        acc = f"  test acc {record['test_acc']:.3f}" if "test_acc" in record else ""
        loss = "non-finite" if record["loss"] is None else f"{record['loss']:.4f}"
        print(f"step {record['step']:6d}  loss {loss}  train acc {record['train_acc']:.3f}{acc}")
        for layer in record["layers"]:
            pre, post = layer["pre"], layer["post"]
            cells = [f"{layer['name']:>16s}"]
            for name, stats in (("pre", pre), ("post", post)):
                cells.append(f"{name} " + ("non-finite" if stats is None else
                             f"mean {stats['mean']:+.3f} std {stats['std']:.3f} p50 {stats['p50']:+.3f}"))
            if layer["saturated"]:
                cells.append(f"saturated {layer['saturated']:.2f}")
            if layer["dead"]:
                cells.append(f"dead {layer['dead']:.2f}")
            print("  ".join(cells))

    # Step 0: the untrained network on the first batch, leaving no trace in any buffer.
    frames = 1
    with torch.no_grad():
        saved = [b.clone() for b in model.buffers()]
        idx = sampler.peek_indices().to(device)
        x, y = x_train[idx], y_train[idx]
        armed[0] = True
        if spec.noisy_norm:
            model.resample_noise()
        logits = model(x)
        for old, live in zip(saved, model.buffers()):
            live.copy_(old)
        frame(0, cross_entropy(logits, y).item(), logits, y, spec.lr)

    started = time.perf_counter()
    for step in range(1, spec.steps + 1):
        if args.frames and frames >= args.frames:
            break
        # Linear warmup: step s of the first `warmup_steps` trains at s / warmup_steps of the rate.
        lr = spec.lr * min(1.0, step / spec.warmup_steps) if spec.warmup_steps > 0 else spec.lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        probing = step % spec.emit_every == 0 or step == spec.steps
        idx = sampler.next_indices().to(device)
        x, y = x_train[idx], y_train[idx]
        if spec.noisy_norm:
            model.resample_noise()  # this step's noise
        armed[0] = probing
        logits = model(x)
        loss = cross_entropy(logits, y)
        finite = bool(torch.isfinite(loss).item())
        if finite:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if probing or not finite:
            if not probing:  # a diverging step is always shown
                armed[0] = True
                with torch.no_grad():
                    model(x)
            frame(step, loss.item(), logits, y, lr)
            frames += 1
        if not finite:
            print(f"diverged at step {step}")
            return
    if not args.json:
        print(f"done: {step} steps in {time.perf_counter() - started:.1f} s")
'''
