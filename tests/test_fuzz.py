"""Property-based fuzz of the message schema through the real websocket of a real server.

Hypothesis sends sequences of near-valid messages (the seven types with random, mutated, wrongly
typed, huge, nested, unicode or extra fields; configs of every architecture, valid ones and ones
an architecture refuses; learning-rate sweeps) and garbage (text, bytes, non-objects, bad JSON).
Whatever arrives, the server answers with JSON objects that have a `type`, never closes with
1011, closes with 1008 only for the documented policy reasons, logs no unhandled exception,
keeps its warm workers and stays healthy.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.config import Settings
from app.schemas import ARCHS, MAX_SWEEP_POINTS, RunConfig
from tests.conftest import LiveServer, serve
from tests.test_web import eventually

SERVER_TYPES = {"hello", "started", "frame", "sweep_result", "state", "error", "queued", "busy"}
# Every error code a client may cause; run_failed is not one: it would mean a config the schema
# let through broke the trainer. idle cannot happen here; rate_limited should not (the fuzz server
# allows 1000 messages a second) but would be a documented close.
ERROR_CODES = {"bad_json", "invalid_message", "invalid_config", "over_budget", "no_run", "too_large"}
POLICY_CLOSES = {"too_large", "rate_limited"}  # the 1008 reasons a fuzzing client can trigger
MAX_MESSAGE_BYTES = Settings().max_message_bytes


class Recorder(logging.Handler):
    """Keeps the server's ERROR records: an unhandled exception is logged at ERROR or above."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Client:
    """One connection reused across examples; reopened after a policy close."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.ws: ClientConnection | None = None
        self._stack = ExitStack()
        self.nonces = itertools.count()
        self.policy_closes = 0
        self.seen: Counter[str] = Counter()  # answers by type, errors by code, starts by arch
        self.exchanges = 0  # batches sent: the health check needs a fuzz to have run

    def open(self) -> ClientConnection:
        if self.ws is None:
            self._stack = ExitStack()
            self.ws = self._stack.enter_context(
                connect(self.server.ws, compression=None, max_size=None, open_timeout=10)
            )
            hello = self.read()
            assert hello["type"] == "hello"
        return self.ws

    def read(self) -> dict[str, Any]:
        assert self.ws is not None
        message = orjson.loads(self.ws.recv(timeout=20))
        check_answer(message)
        self.count(message)
        return message

    def count(self, message: dict[str, Any]) -> None:
        self.seen[message["code"] if message["type"] == "error" else message["type"]] += 1
        if message["type"] == "started":
            self.seen["started sweep" if "sweep" in message else f"started {message['config']['arch']}"] += 1

    def closed(self, error: ConnectionClosed, last: dict[str, Any] | None) -> None:
        """The server closed on us: only a 1008 policy close after its error message is allowed."""
        self.close()  # the next example (or Hypothesis's shrinking) starts on a fresh connection
        assert error.rcvd is not None, f"closed without a close frame: {error}"
        assert error.rcvd.code == 1008, f"closed with {error.rcvd.code} {error.rcvd.reason!r}"
        assert error.rcvd.reason in POLICY_CLOSES, error.rcvd.reason
        assert last is not None and last["type"] == "error" and last["code"] == error.rcvd.reason, last
        self.policy_closes += 1

    def close(self) -> None:
        self._stack.close()
        self.ws = None


def check_answer(message: Any) -> None:
    assert isinstance(message, dict) and message.get("type") in SERVER_TYPES, message
    if message["type"] == "error":
        assert message["code"] in ERROR_CODES | POLICY_CLOSES, message
        assert isinstance(message["message"], str) and isinstance(message["errors"], list)
        assert all(set(e) == {"field", "message"} for e in message["errors"]), message


# ----------------------------------------------------------------------------- strategies

FIELDS = list(RunConfig.model_fields)
TYPES = ["start", "sweep", "pause", "resume", "step", "stop", "set"]
HUGE = st.sampled_from([2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)])
unicode = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # no lone surrogates
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    HUGE,
    st.floats(allow_nan=False, allow_infinity=False),  # NaN/inf: below, where they are meant
    unicode,
)
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(unicode, inner, max_size=4)),
    max_leaves=12,
)


def _field_values(name: str) -> st.SearchStrategy[Any]:
    """Values for one config field: mostly plausible ones around its bounds and choices."""
    info = RunConfig.model_fields[name]
    default = info.default
    choices = getattr(info.annotation, "__args__", None)
    plausible: list[st.SearchStrategy[Any]] = [st.just(default)]
    if choices and all(isinstance(c, str) for c in choices):
        plausible.append(st.sampled_from(choices))
        plausible.append(st.sampled_from([c.upper() for c in choices] + [c + " " for c in choices]))
    lo = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
    hi = next((m.le for m in info.metadata if hasattr(m, "le")), None)
    if isinstance(default, bool) or default is None:
        pass
    elif isinstance(default, int):
        plausible.append(st.integers(lo - 2, min(hi, 64) + 2) if lo is not None else st.integers(-2, 66))
        plausible.append(st.sampled_from([v for v in (lo, hi, lo - 1, hi + 1) if v is not None]))
        plausible.append(st.sampled_from([float(default), str(default)]))  # strict: wrong types
    elif isinstance(default, float):
        plausible.append(st.floats(lo, hi) if lo is not None else st.floats(0, 1))
        plausible.append(
            st.sampled_from([v for v in (lo, hi, -1.0, 1e308, 5e-324, math.inf) if v is not None])
        )
        plausible.append(st.sampled_from([int(default) if default >= 1 else 1, str(default), True]))
    return st.one_of(*plausible, nested)


def _choices_of(name: str) -> list[Any]:
    return list(RunConfig.model_fields[name].annotation.__args__)  # type: ignore[union-attr]


def _choices(name: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(_choices_of(name))


# Valid configs of small, short runs (tiny nets, <= 300 steps) of every architecture: these start
# real runs, which the following messages (pause, step, set, resume, stop, another start) then
# act on. Each architecture gets only the fields it reads, with values it takes.
COMMON = {
    "noise": st.floats(0, 1),
    "activation": _choices("activation"),
    "init": _choices("init"),
    "init_std": st.floats(1e-4, 10),
    "optimizer": _choices("optimizer"),
    "lr": st.floats(1e-5, 10),
    "batch_size": st.integers(1, 64),
    "seed": st.integers(0, 2**31 - 1),
    "device": st.sampled_from(["auto", "cpu"]),
    "emit_every": st.integers(1, 20),
    "bins": st.integers(8, 64),
    "eval_every": st.integers(1, 500),
    "width": st.sampled_from([2, 4, 8, 16]),
    "groups": st.sampled_from([1, 2]),  # divides every width above
    "task": _choices("task"),
    "seq_len": st.integers(2, 8),
    "vocab": st.integers(2, 16),
    "d_model": st.sampled_from([8, 16]),
    "heads": st.sampled_from([1, 2, 4, 8]),  # divides every d_model above
}


# The default cnn and transformer are over the fuzz server's budget: their valid configs set these.
SMALL: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "cnn": {"depth": st.integers(1, 2), "width": st.sampled_from([2, 4, 8])},
    "transformer": {
        "depth": st.integers(1, 2),
        "d_model": st.sampled_from([8, 16]),
        "seq_len": st.integers(2, 6),
        "batch_size": st.integers(1, 32),
        "eval_batch_size": st.sampled_from([16, 64]),  # 0, the whole test set, is over the budget
        # Each evaluation writes the test answers token by token: priced, it must be rare here.
        "eval_every": st.integers(100, 1000),
    },
}


def _valid_configs(arch: str) -> st.SearchStrategy[dict[str, Any]]:
    rules = ARCHS[arch]  # type: ignore[index]
    datasets = [rules.fixed["dataset"][0]] if "dataset" in rules.fixed else _choices_of("dataset")
    optional: dict[str, st.SearchStrategy[Any]] = {
        "dataset": st.sampled_from(datasets),
        "depth": st.integers(1, min(4, rules.max_depth)),
        "norm": st.sampled_from(rules.norms),
        "norm_position": st.sampled_from(rules.placements),
        **COMMON,
    }
    # "arch" itself is optional for the default architecture: leaving it out means mlp.
    required = {"arch": st.just(arch)} if arch != RunConfig.model_fields["arch"].default else {}
    if not required:
        optional["arch"] = st.just(arch)
    required |= SMALL.get(arch, {})
    return st.fixed_dictionaries(
        {**required, "steps": st.integers(1, 300), "max_steps_per_s": st.sampled_from([0, 0, 200, 1000])},
        optional={name: value for name, value in optional.items() if name not in {*rules.unread, *required}},
    )


ARCH_NAMES = list(ARCHS)
valid_configs = st.sampled_from(ARCH_NAMES).flatmap(_valid_configs)


def _refusals(arch: str) -> list[tuple[str, Any]]:
    """(field, value) pairs the architecture refuses in an otherwise valid config of its own."""
    rules = ARCHS[arch]  # type: ignore[index]
    out: list[tuple[str, Any]] = [("norm", n) for n in _choices_of("norm") if n not in rules.norms]
    out += [("norm_position", p) for p in _choices_of("norm_position") if p not in rules.placements]
    if rules.max_depth < 24:
        out.append(("depth", rules.max_depth + 1))
    if rules.max_width is not None:
        out.append(("width", rules.max_width + 1))
    for name, (value, _) in rules.fixed.items():
        out += [(name, other) for other in _choices_of(name) if other != value][:2]
    if "heads" not in rules.unread:
        out.append(("heads", 3))  # divides no d_model drawn above (8, 16) nor the default (64)
    return out


def _with(config: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    return {**config, name: value}


# A valid config of one architecture with a field it does not read or a value it does not take:
# the architecture refuses it (invalid_config, naming the field).
refused_configs = st.sampled_from(ARCH_NAMES).flatmap(
    lambda arch: st.one_of(
        st.tuples(_valid_configs(arch), st.sampled_from(sorted(ARCHS[arch].unread))).flatmap(  # type: ignore[index]
            lambda d: COMMON.get(d[1], _field_values(d[1])).map(lambda value: _with(d[0], d[1], value))
        ),
        st.tuples(_valid_configs(arch), st.sampled_from(_refusals(arch))).map(lambda d: _with(d[0], *d[1])),
    )
)
# A valid config of one architecture relabelled as another: refused when the other does not read
# one of its fields or takes other values, valid when the two agree.
relabelled_configs = st.tuples(valid_configs, st.sampled_from(ARCH_NAMES)).map(
    lambda d: _with(d[0], "arch", d[1])
)
# A valid config with one field (or an unknown one) set to anything.
mutated_configs = st.tuples(valid_configs, st.one_of(st.sampled_from(FIELDS), unicode), nested).map(
    lambda drawn: {**drawn[0], drawn[1]: drawn[2]}
)
configs = st.one_of(
    valid_configs,
    refused_configs,
    relabelled_configs,
    mutated_configs,
    st.fixed_dictionaries({}, optional={name: _field_values(name) for name in FIELDS}),
    st.dictionaries(st.one_of(st.sampled_from(FIELDS), unicode), nested, max_size=6),
    nested,  # mostly not an object at all
)
rarely = st.integers(0, 9).map(lambda i: i == 7)  # ~1 in 10 (not 0 or 9: drawn more often)
sometimes = st.integers(0, 3).map(lambda i: i == 2)  # ~1 in 4
# Sweep fields: mostly in bounds (1 to 12 rates in [1e-5, 10], 10 to 5000 steps), sometimes not.
sweep_lrs = st.one_of(
    st.lists(st.floats(1e-5, 10), min_size=1, max_size=3),
    st.sampled_from([[1e-5, 10.0], [0.1] * MAX_SWEEP_POINTS]),  # at the bounds
    st.sampled_from([[], [0.1] * (MAX_SWEEP_POINTS + 1), [1e-6], [11.0], [0.1, -1.0], [True], ["0.1"]]),
    st.lists(st.one_of(st.floats(), scalars), max_size=4),
    nested,
)
# Short sweeps, so that the fuzz's runtime stays what it was; the upper bound only at the edge.
sweep_steps = st.one_of(
    st.integers(10, 40),
    st.sampled_from([10, 5000, 9, 5001, 0, -10, 10.0, "20", None]),
    scalars,
)
# compare: fields that differ for run B (of the same or another architecture), or anything.
compares = st.one_of(
    st.sampled_from([{"lr": 0.1}, {"norm": "batch"}, {"norm": "none"}, {"arch": "resmlp"}, {"steps": 7}]),
    st.sampled_from(ARCH_NAMES)
    .flatmap(_valid_configs)
    .map(lambda config: {k: v for k, v in config.items() if k not in ("steps", "max_steps_per_s")}),
    nested,
)


@st.composite
def structured(draw: st.DrawFn) -> str:
    """A message of one of the seven types (or a near miss) with random or mutated fields."""
    near_misses = st.sampled_from(["START", "Pause", "", " stop", "frame", "hello", "Sweep", "sweep_result"])
    # one_of() would treat equal branches as one: weight by drawing a branch number instead.
    kind = draw(st.one_of(near_misses, unicode) if draw(sometimes) else st.sampled_from(TYPES))
    message: dict[str, Any] = {"type": kind}
    if draw(rarely):
        message = {}  # no type
    elif draw(rarely):
        message["type"] = draw(nested)  # a type that is not a string
    if kind in ("start", "sweep") or draw(rarely):
        message["config"] = draw(configs)
    if kind in ("start", "sweep") and draw(rarely):
        message["compare"] = draw(compares)
    if kind == "sweep" or draw(rarely):
        message["lrs"] = draw(sweep_lrs)
    if (kind == "sweep" and not draw(rarely)) or draw(rarely):  # a sweep's steps default to 300
        message["steps"] = draw(sweep_steps)
    if kind == "set" or draw(rarely):
        message["lr"] = draw(
            st.one_of(st.floats(1e-5, 10), st.floats(1e-5, 10), st.floats(), scalars, nested)
        )
    if draw(rarely):
        message[draw(unicode)] = draw(nested)  # an extra field
    # Python's json writes NaN/Infinity (not JSON) and integers of any size: both must be refused.
    return json.dumps(message, ensure_ascii=draw(st.booleans()))


garbage = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
    st.binary(max_size=200),  # a binary frame
    nested.map(json.dumps),  # valid JSON, mostly not an object
    st.sampled_from(
        [
            "",
            "{",
            "null",
            "[]",
            '{"type":"start","config":{"lr":NaN}}',
            '{"type":"start","config":{"depth":1e999}}',
            '{"type":"start","type":"stop"}',
            '{"type":"start","config":{"depth":8,"depth":99}}',
            '{"type":"set","lr":1e-400}',
            '{"type":"start","config":{"seed":-0}}',
            "[" * 5000 + "]" * 5000,  # deeper than any JSON parser's recursion limit
            '{"a":' * 2000 + "1" + "}" * 2000,
            "\ufeff" + '{"type":"stop"}',
            '{"type":"stop"}\x00',
        ]
    ),
)
OVERSIZED = '{"type":"start","config":{"pad":"' + "y" * MAX_MESSAGE_BYTES + '"}}'
# Valid starts and commands (which act on live runs), near-valid starts, structured messages and
# garbage; one batch in ~25 ends with an oversized message, which the server answers with a
# policy close (the client then reconnects).
starts = valid_configs.map(lambda config: json.dumps({"type": "start", "config": config}))
bad_starts = st.one_of(
    refused_configs,
    relabelled_configs,
    mutated_configs,
    st.fixed_dictionaries({}, optional={name: _field_values(name) for name in FIELDS}),
).map(lambda config: json.dumps({"type": "start", "config": config}))
# Valid sweeps: a few short points (the sweep answers a sweep_result per point), at times with a
# twin; the commands that follow then act on the sweep ('set' is refused during one).
sweeps = st.tuples(
    valid_configs,
    st.lists(st.floats(1e-5, 10), min_size=1, max_size=3),
    st.integers(10, 40),
    st.one_of(st.none(), st.none(), st.sampled_from([{"lr": 0.1}, {"norm": "none"}, {"seed": 7}])),
).map(
    lambda d: json.dumps(
        {"type": "sweep", "config": d[0], "lrs": d[1], "steps": d[2]} | ({"compare": d[3]} if d[3] else {})
    )
)
commands = st.sampled_from(TYPES[2:]).map(
    lambda kind: json.dumps({"type": kind, "lr": 0.01} if kind == "set" else {"type": kind})
)
messages = st.tuples(
    st.lists(st.one_of(starts, sweeps, bad_starts, commands, structured(), garbage), min_size=1, max_size=6),
    st.integers(0, 24),
).map(lambda drawn: drawn[0] + ([OVERSIZED] if drawn[1] == 24 else []))


# ----------------------------------------------------------------------------- the fuzz

# Small budgets: fuzzed starts are refused (over_budget) or train tiny nets, not 24 x 512 ones.
FUZZ_SETTINGS = Settings(
    max_runs=1,
    max_messages_per_s=1000,
    message_burst=1000,
    max_parameters=100_000,
    max_activation_values=200_000,
    max_train_flops=3e10,  # evaluations and a per-layer-call floor are priced too
)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[LiveServer, Recorder]]:
    recorder = Recorder()
    # "uvicorn" does not propagate to the root logger; uvicorn.error, asyncio and app.* do.
    loggers = [logging.getLogger(name) for name in ("", "uvicorn")]
    with serve(FUZZ_SETTINGS) as server:  # after uvicorn has configured its loggers
        for logger in loggers:
            logger.addHandler(recorder)
        try:
            pool = server.app.state.pool
            eventually(lambda: pool.busy_count == 0, timeout=60)
            yield server, recorder
        finally:
            for logger in loggers:
                logger.removeHandler(recorder)


@pytest.fixture(scope="module")
def client(fuzz_server: tuple[LiveServer, Recorder]) -> Iterator[Client]:
    client = Client(fuzz_server[0])
    yield client
    client.close()


def _exchange(client: Client, batch: list[str | bytes], settle: bool) -> None:
    """Send `batch`, then a marker the server refuses by name; read every answer up to it.

    With `settle`, then wait (up to 1 s) for a run the batch started to send a frame (a sweep: a
    point's result), so that the next batches find a live run to pause, step, set, resume, stop or
    replace."""
    ws = client.open()
    client.exchanges += 1
    nonce = f"sync-{next(client.nonces)}"  # the refusal quotes it: "(got 'sync-7')"
    last: dict[str, Any] | None = None
    try:
        for text in batch:
            ws.send(text)
        ws.send(orjson.dumps({"type": nonce}).decode())
        while True:
            last = client.read()
            if last["type"] == "error" and f"'{nonce}'" in last["message"]:
                break
        if settle and any(isinstance(text, str) and '"start"' in text for text in batch):
            deadline = time.monotonic() + 1.0
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    last = orjson.loads(ws.recv(timeout=remaining))
                except TimeoutError:
                    break
                check_answer(last)
                client.count(last)
                if last["type"] in ("frame", "sweep_result") or (
                    last["type"] == "state" and last["state"] != "running"
                ):
                    break
    except ConnectionClosed as error:
        if last is None or last["type"] != "error":
            # Closed while we were sending: the policy error is still in the receive buffer.
            try:
                while True:
                    last = client.read()
            except ConnectionClosed:
                pass
        client.closed(error, last)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(batch=messages, settle=st.sampled_from([False, False, True]))
# Generated batches end oversized only now and then (and which ones depends on the schema the
# strategies are drawn from): one explicit example makes sure a policy close is always exercised.
@example(batch=['{"type":"pause"}', OVERSIZED], settle=False)
# Likewise a start of each architecture besides the default and a sweep (with a twin) that trains.
@example(
    batch=[
        json.dumps(
            {"type": "start", "config": {"arch": "transformer", "d_model": 8, "seq_len": 4, "steps": 30}}
        )
    ],
    settle=True,
)
@example(batch=[json.dumps({"type": "start", "config": {"arch": "resmlp", "steps": 30}})], settle=True)
@example(
    batch=[json.dumps({"type": "start", "config": {"arch": "cnn", "depth": 1, "width": 4, "steps": 30}})],
    settle=True,
)
@example(
    batch=[
        '{"type":"sweep","config":{"dataset":"xor"},"compare":{"norm":"batch"},"lrs":[0.01,0.5],"steps":10}',
        '{"type":"set","lr":0.1}',  # refused: it must wait, or during a sweep each point has its rate
    ],
    settle=True,
)
def fuzz(client: Client, batch: list[str | bytes], settle: bool) -> None:
    """The fuzz pass: called with only `client`, Hypothesis runs every example on it."""
    _exchange(client, batch, settle)


def test_fuzzed_messages_get_answers_never_a_crash(client: Client) -> None:
    fuzz(client=client)


def test_after_the_fuzz_the_server_is_healthy(
    fuzz_server: tuple[LiveServer, Recorder], client: Client
) -> None:
    server, recorder = fuzz_server
    if not client.exchanges:  # run alone (or first): the fuzz this test checks after runs here
        fuzz(client=client)
    client.close()
    pool = server.app.state.pool
    pids = sorted(w.pid for w in pool.workers)
    assert httpx.get(f"{server.http}/healthz").json() == {"status": "ok"}
    eventually(lambda: not server.app.state.sessions and pool.busy_count == 0)
    assert sorted(w.pid for w in pool.workers) == pids and all(w.process.is_alive() for w in pool.workers)
    assert not recorder.records, [recorder.format(r) for r in recorder.records]
    # The fuzz reached every kind of answer: refusals of each sort, policy closes, live runs of
    # every architecture and sweeps that trained their points.
    print(dict(client.seen), "policy closes:", client.policy_closes)
    assert client.policy_closes >= 1
    reached = ERROR_CODES | {"started", "frame", "state", "sweep_result", "started sweep"}
    reached |= {f"started {arch}" for arch in ARCH_NAMES}
    assert all(client.seen[kind] for kind in reached), [kind for kind in reached if not client.seen[kind]]
    # A fresh client still trains a run end to end.
    with connect(server.ws, compression=None, open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send(
            orjson.dumps({"type": "start", "config": {"dataset": "xor", "depth": 2, "steps": 5}}).decode()
        )
        while (message := orjson.loads(ws.recv(timeout=30)))["type"] != "state" or message[
            "state"
        ] == "running":
            check_answer(message)
        assert message["state"] == "done"
