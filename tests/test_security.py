"""Admission and abuse controls: origin, host, token, rate, size, budget, run time, idle."""

from __future__ import annotations

import socket

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from app.budget import LAYER_CALL_FLOPS, RunCost
from app.config import Settings
from app.security import FailureThrottle, RateLimit, origin_allowed, token_valid
from app.spec import RunSpec
from tests.conftest import LiveServer, serve
from tests.test_web import SMALL, _open, _send, _state, _until

HOST = "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("http://127.0.0.1:8000", True),  # same origin
        ("https://127.0.0.1:8000", True),
        ("https://lab.example.org", True),  # on the allow-list
        ("null", False),
        ("http://127.0.0.1:8001", False),
        ("http://127.0.0.1", False),
        ("http://127.0.0.1:8000.evil.example", False),
        ("http://evil.example", False),
        ("http://evil.example/127.0.0.1:8000", False),
        ("https://lab.example.org.evil.example", False),
        ("https://lab.example.org:443", False),  # exact match only
        ("file://127.0.0.1:8000", False),
        ("", False),
    ],
)
def test_origin_check(origin: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, HOST, ["https://lab.example.org"]) is allowed


def test_token_check() -> None:
    assert token_valid(None, None) and token_valid("anything", "")
    assert token_valid("s3cret", "s3cret")
    assert not token_valid(None, "s3cret") and not token_valid("s3cre", "s3cret")


def test_rate_limit_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limit = RateLimit(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limit.allow() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one more token
    assert [limit.allow(), limit.allow()] == [True, False]
    now[0] = 100.0  # refills to the burst, no further
    assert sum(limit.allow() for _ in range(10)) == 3


def test_run_cost() -> None:
    cost = RunCost.of(RunSpec(dataset="digits", depth=2, width=10, norm="batch", batch_size=8, steps=100))
    weights = 64 * 10 + 10 * 10 + 10 * 10
    assert cost.parameters == weights + (10 + 10 + 10) + 2 * 2 * 10
    assert cost.activation_values == 8 * 10 * 2
    layers = 3  # Linear calls a pass makes, each priced at least LAYER_CALL_FLOPS
    assert cost.train_flops == (6 * weights * 8 + layers * LAYER_CALL_FLOPS) * 100
    # Evaluations at steps 0, 100 and the end (priced as 100 // eval_every + 2), two passes each
    # (eval mode and batch statistics) over the 359 test digits, in one batch.
    assert cost.eval_flops == 3 * 2 * (2 * weights * 359 + layers * LAYER_CALL_FLOPS)
    assert cost.instrument_flops == 0
    probed = RunCost.of(RunSpec(dataset="digits", depth=2, width=10, batch_size=8, steps=100, ics_every=10))
    one_step = 6 * weights * 8 + layers * LAYER_CALL_FLOPS
    assert probed.instrument_flops == 10 * (layers + 1) * one_step  # G, then one pass per layer


def test_trusted_hosts_default_to_loopback_names_on_loopback() -> None:
    assert "localhost" in Settings(host="127.0.0.1").trusted_hosts()
    off_loopback = Settings(host="0.0.0.0")  # hardening round 2, item 6: it was ["*"]
    assert "*" not in off_loopback.trusted_hosts() and "localhost" in off_loopback.trusted_hosts()
    assert socket.gethostname().lower() in off_loopback.trusted_hosts() and off_loopback.ip_hosts_allowed()
    assert not Settings(host="0.0.0.0", allowed_hosts=["lab.example.org"]).ip_hosts_allowed()
    assert Settings(host="0.0.0.0", allowed_hosts=["lab.example.org"]).trusted_hosts() == ["lab.example.org"]


def test_cross_site_origin_is_refused_at_the_handshake(live_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        with connect(live_server.ws, origin="http://evil.example", open_timeout=10):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403
    same = f"http://127.0.0.1:{live_server.port}"
    with connect(live_server.ws, origin=same, open_timeout=10) as ws:  # type: ignore[arg-type]
        assert '"hello"' in str(ws.recv(timeout=10))


def test_unknown_host_header_is_refused(live_server: LiveServer) -> None:
    import httpx

    response = httpx.get(f"{live_server.http}/healthz", headers={"Host": "rebound.evil.example"})
    assert response.status_code == 400


def test_access_token_is_checked_at_the_handshake() -> None:
    with serve(Settings(access_token="s3cret", max_runs=1)) as server:
        for url in (server.ws, server.ws + "?token=wrong"):
            with pytest.raises(InvalidStatus):
                with connect(url, open_timeout=10):
                    pass
        with connect(server.ws + "?token=s3cret", open_timeout=10) as ws:
            assert '"hello"' in str(ws.recv(timeout=10))


def test_a_flood_gets_a_policy_close() -> None:
    with serve(Settings(max_messages_per_s=5, message_burst=10, max_runs=1)) as server, _open(server) as ws:
        for _ in range(30):
            try:
                ws.send('{"type":"pause"}')
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed) as info:
            _until(ws, lambda m: m["type"] == "error" and m["code"] == "rate_limited")
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


def test_an_oversized_message_gets_a_policy_close(live_server: LiveServer) -> None:
    with _open(live_server) as ws:
        ws.send('{"type":"start","config":{"pad":"' + "x" * 70_000 + '"}}')
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "too_large" and "65536" in error["message"]
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


def test_over_budget_runs_are_refused_naming_the_limit() -> None:
    with (
        serve(Settings(max_train_flops=1e9, max_parameters=50_000, max_runs=1)) as server,
        _open(server) as ws,
    ):
        _send(ws, {"type": "start", "config": {"depth": 4, "width": 200, "steps": 5000}})
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "over_budget"
        fields = {e["field"]: e["message"] for e in error["errors"]}
        assert set(fields) == {"width", "steps"}
        assert "50,000" in fields["width"] and "1e+09" in fields["steps"]
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 10}})
        assert _until(ws, _state("done"))["step"] == 10


def test_a_run_past_its_wall_clock_limit_ends_in_timeout() -> None:
    with serve(Settings(max_run_seconds=1.0, max_runs=1)) as server, _open(server) as ws:
        _send(ws, {"type": "start", "config": {**SMALL, "steps": 100_000, "max_steps_per_s": 50}})
        ended = _until(ws, lambda m: m["type"] == "state" and m["state"] != "running")
        assert ended["state"] == "timeout" and 0 < ended["step"] < 100_000


def test_an_idle_connection_is_closed() -> None:
    with serve(Settings(idle_timeout_s=0.3, max_runs=1)) as server, _open(server) as ws:
        error = _until(ws, lambda m: m["type"] == "error")
        assert error["code"] == "idle"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)


def test_failure_throttle_allows_a_burst_then_a_few_a_minute_per_address() -> None:
    now = [0.0]
    throttle = FailureThrottle(burst=3, per_minute=6.0, max_addresses=2, clock=lambda: now[0])
    for _ in range(3):
        assert not throttle.blocked("a")
        throttle.failed("a")
    assert throttle.blocked("a") and not throttle.blocked("b")  # per address
    now[0] = 10.0  # 6 a minute: one failure allowed again after 10 s
    assert not throttle.blocked("a")
    throttle.failed("a")
    assert throttle.blocked("a")
    throttle.failed("b")
    throttle.failed("c")  # a third address: the oldest bucket ("a") goes, memory stays bounded
    assert not throttle.blocked("a")


def test_wrong_tokens_are_throttled_per_address_even_the_right_one_after() -> None:
    # Hardening round 2, item 8: wrong tokens were never throttled (~1,000 tries/s).
    settings = Settings(access_token="s3cret", max_runs=1, token_failure_burst=3, token_failures_per_minute=1)
    with serve(settings) as server:
        for _ in range(3):
            with pytest.raises(InvalidStatus):
                with connect(server.ws + "?token=wrong", open_timeout=10):
                    pass
        # Out of guesses: refused unchecked, the right token included, for about a minute.
        with pytest.raises(InvalidStatus) as refused:
            with connect(server.ws + "?token=s3cret", open_timeout=10):
                pass
        assert refused.value.response.status_code == 403
        assert server.app.state.token_failures.blocked("127.0.0.1")
