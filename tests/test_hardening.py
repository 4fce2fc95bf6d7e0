"""Hardening round 2 (what a hostile visitor of the public demo could still do), through the
real server: each test failed before its fix."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from app.schemas import MAX_NESTING
from app.security import CONTENT_SECURITY_POLICY
from tests.conftest import LiveServer
from tests.test_web import SMALL, _open, _send, _state, _until


def test_deep_nesting_gets_a_typed_error_and_the_connection_survives(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Item 7: a 6 KB start whose config nests 1,000 objects raised RecursionError in the error
    # formatter; the socket dropped without a close frame and a traceback was logged each time.
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    with caplog.at_level(logging.ERROR), _open(live_server) as ws:
        for _ in range(3):
            ws.send('{"type":"start","config":{"depth":' + deep + "}}")
            error = _until(ws, lambda m: m["type"] == "error")
            assert error["code"] == "bad_json" and f"deeper than {MAX_NESTING}" in error["message"]
        # Nesting within the limit reaches the config's validation; the quoted value is bounded.
        nested = {"x": {"y": [[["long" * 50] * 5] * 5]}}  # 5 KB, 6 levels
        _send(ws, {"type": "start", "config": {"depth": nested}})
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "invalid_config" and error["errors"][0]["field"] == "depth"
        assert len(orjson.dumps(error)) < 1000, error
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 5}})
        assert _until(ws, _state("done"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_the_page_and_every_response_carry_the_security_headers(live_server: LiveServer) -> None:
    # Item 8: GET / sent no frame-ancestors / X-Frame-Options, Referrer-Policy or CSP.
    for path in ("/", "/static/js/main.js", "/healthz", "/no-such-page"):
        response = httpx.get(f"{live_server.http}{path}")
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self';" in headers["content-security-policy"]  # no inline, no eval
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"


def test_thousands_of_unknown_keys_cost_one_short_error(live_server: LiveServer) -> None:
    # Item 4: a 49 KB config with 5,000 unknown keys got a 283 KB reply listing 5,000 errors.
    config = {f"k{i}": 0 for i in range(5000)}
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": config})
        reply = ws.recv(timeout=30)
        error = orjson.loads(reply)
        assert error["code"] == "invalid_config" and len(reply) < 1000, len(reply)
        assert error["errors"][0]["field"] == "config" and "5000 keys" in error["message"]
        assert "k0, k1, k2, k3, k4 and 4995 more" in error["message"]
        # B's fields too, named as compare's.
        _send(ws, {"type": "start", "config": {}, "compare": config})
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["errors"][0]["field"] == "compare" and len(orjson.dumps(error)) < 1000
        # Many problems within the field count: at most ten listed, and the count of the rest.
        wrong = {name: "x" for name in ("depth", "width", "lr", "steps", "seed", "bins", "batch_size")}
        wrong |= {name: "x" for name in ("noise", "groups", "init_std", "emit_every", "eval_every")}
        _send(ws, {"type": "start", "config": wrong})
        error = _until(ws, lambda m: m["type"] == "error")
        assert len(error["errors"]) == 11 and error["errors"][-1]["message"] == "... and 2 more problems"


# Item 5: instruments, evaluation and generation were not priced. Each of these was accepted
# before (only 6 x weights x batch x steps was counted) and would have run for hours.
LARGEST_MLP = {"dataset": "digits", "depth": 24, "width": 512, "batch_size": 1024, "steps": 2000}
LARGEST_TRANSFORMER = {"arch": "transformer", "depth": 10, "d_model": 256, "heads": 16, "seq_len": 32}


@pytest.mark.parametrize(
    ("config", "field"),
    [
        # ICS every step: 26 extra forward-backward passes a step (0.075 steps/s measured).
        ({**LARGEST_MLP, "ics_every": 1, "steps": 200}, "ics_every"),
        ({**LARGEST_MLP, "landscape_every": 1, "steps": 400}, "landscape_every"),
        # An evaluation in batches of 1 every step: ~1.1 s each at 24 x 512, 2,000 times.
        (
            {**LARGEST_MLP, "batch_size": 64, "norm": "batch", "eval_every": 1, "eval_batch_size": 1},
            "eval_every",
        ),
        # The largest transformer at the default eval_every: 21 evaluations of ~42 s (generation 35 s).
        ({**LARGEST_TRANSFORMER, "batch_size": 6}, "eval_every"),
    ],
)
def test_instruments_and_evaluation_are_priced(live_server: LiveServer, config: dict, field: str) -> None:
    with _open(live_server) as ws:
        _send(ws, {"type": "start", "config": config})
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "over_budget", error
        assert field in {e["field"] for e in error["errors"]}, error
        assert "FLOPs (training" in error["message"]


def test_the_same_work_priced_lower_is_admitted(live_server: LiveServer) -> None:
    # The transformer above for 1,000 steps with evaluations 500 apart fits, as do all presets
    # (tests/test_presets.py starts each one).
    with _open(live_server) as ws:
        _send(
            ws,
            {
                "type": "start",
                "config": {**LARGEST_TRANSFORMER, "batch_size": 6, "steps": 1000, "eval_every": 500},
            },
        )
        assert _until(ws, lambda m: m["type"] in ("started", "error"))["type"] == "started"
        _send(ws, {"type": "stop"})
        _until(ws, _state("stopped"), timeout=60)
