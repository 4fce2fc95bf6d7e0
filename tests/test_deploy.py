"""The deployment files: Kubernetes manifests and compose.yaml against their schemas (offline), the
properties a websocket app behind a proxy needs, and deploy/Caddyfile run for real by Caddy in
front of a websocket server on loopback. The image itself is built and run by `make image-test`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

from tests.browser_fixtures import free_port, program

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
UVICORN_PING_S = 20  # uvicorn's websocket ping interval: a proxy's read timeout must exceed it
# The oldest Kubernetes the manifests claim to work on, and the newest schemas bundled.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in k8s_documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def app_container() -> dict[str, Any]:
    (container,) = k8s_object("Deployment", "shiftscope")["spec"]["template"]["spec"]["containers"]
    return container


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())  # merge keys (<<) resolved


def cpu_cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    documents = k8s_documents()
    assert {doc["kind"] for doc in documents} >= {"Deployment", "Service", "Ingress"}
    for doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    deployment = copy.deepcopy(k8s_object("Deployment", "shiftscope"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGett"] = container["readinessProbe"].pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_readiness_asks_readyz_and_liveness_healthz() -> None:
    container = app_container()
    port_names = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names


def test_every_pod_runs_as_non_root_with_resource_limits() -> None:
    deployments = [doc for doc in k8s_documents() if doc["kind"] == "Deployment"]
    assert len(deployments) == 2  # the app and Redis
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_admission_is_sized_to_the_cpu_limit() -> None:
    """cpu_count() in a pod is the node's: the run capacity must be set, below the CPU limit."""
    container = app_container()
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["SHIFTSCOPE_HOST"] == "0.0.0.0"
    assert 0 < float(env["SHIFTSCOPE_RUN_CAPACITY"]) < cpu_cores(container["resources"]["limits"]["cpu"])
    public_names = k8s_object("Ingress", "shiftscope")["spec"]["tls"][0]["hosts"]
    assert json.loads(env["SHIFTSCOPE_ALLOWED_HOSTS"]) == public_names


def test_redis_url_names_the_redis_service() -> None:
    env = {item["name"]: item.get("value") for item in app_container()["env"]}
    service = k8s_object("Service", "shiftscope-redis")
    match = re.fullmatch(r"redis://([\w-]+):(\d+)/\d+", env["SHIFTSCOPE_REDIS_URL"])
    assert match is not None
    assert match[1] == service["metadata"]["name"]
    assert int(match[2]) in {port["port"] for port in service["spec"]["ports"]}


def test_services_select_their_pods() -> None:
    for name in ("shiftscope", "shiftscope-redis"):
        selector = k8s_object("Service", name)["spec"]["selector"]
        labels = k8s_object("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


def test_ingress_keeps_a_browser_on_one_pod_and_websockets_open() -> None:
    ingress = k8s_object("Ingress", "shiftscope")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > UVICORN_PING_S
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    service = k8s_object("Service", "shiftscope")
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}


# --- compose ----------------------------------------------------------------------------------


def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((ROOT / "tests" / "assets" / "compose-spec.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_compose_matches_the_compose_spec_schema() -> None:
    errors = compose_validator().iter_errors(compose())
    messages = [f"{list(error.absolute_path)}: {error.message}" for error in errors]
    assert messages == []


def test_the_compose_schema_refuses_a_misspelt_field() -> None:
    broken = compose()
    broken["services"]["app"]["healthcheck"]["intervall"] = "10s"
    assert not compose_validator().is_valid(broken)


def test_compose_services_are_hardened_and_limited() -> None:
    services = compose()["services"]
    assert set(services) == {"app", "redis", "proxy"}
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert service.get("cap_add", []) in ([], ["NET_BIND_SERVICE"]), name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not str(service["user"]).startswith("0"), name
        assert {"cpus", "memory"} <= set(service["deploy"]["resources"]["limits"]), name
        assert "test" in service["healthcheck"], name


def test_compose_app_is_ready_before_the_proxy_and_reached_only_through_it() -> None:
    services = compose()["services"]
    app, proxy = services["app"], services["proxy"]
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    # FORWARDED_ALLOW_IPS=* is only safe while nothing but the proxy reaches the app.
    assert app["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert "ports" not in app and "ports" not in services["redis"]
    assert app["environment"]["SHIFTSCOPE_HOST"] == "0.0.0.0"
    cpu_limit = float(app["deploy"]["resources"]["limits"]["cpus"])
    assert 0 < float(app["environment"]["SHIFTSCOPE_RUN_CAPACITY"]) < cpu_limit


def test_compose_wires_redis_and_the_proxy_to_the_app() -> None:
    services = compose()["services"]
    app, proxy = services["app"], services["proxy"]
    assert app["environment"]["SHIFTSCOPE_REDIS_URL"] == "redis://redis:6379/0"
    assert proxy["environment"]["SHIFTSCOPE_UPSTREAM"] == "app"
    assert proxy["environment"]["SHIFTSCOPE_UPSTREAM_PORT"] == app["environment"]["SHIFTSCOPE_PORT"]
    assert app["expose"] == [app["environment"]["SHIFTSCOPE_PORT"]]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert any(port.endswith(f":{proxy['environment']['SHIFTSCOPE_PROXY_PORT']}") for port in proxy["ports"])


# --- the image --------------------------------------------------------------------------------


def test_dockerfile_defaults_to_the_slim_base_and_cpu_torch_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu\n" in dockerfile
    (user,) = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    assert int(user.split(":")[0]) != 0
    (healthcheck,) = re.findall(r"^HEALTHCHECK .*?CMD (\[.*?\])$", dockerfile, flags=re.MULTILINE | re.DOTALL)
    assert json.loads(healthcheck)[0] == "/opt/venv/bin/python" and "/healthz" in healthcheck


# --- Caddy, for real --------------------------------------------------------------------------


def caddy_binary() -> str:
    return program("caddy", "caddy")


def test_caddyfile_adapts_to_dynamic_replicas_with_cookie_affinity() -> None:
    adapted = subprocess.run(
        [caddy_binary(), "adapt", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SHIFTSCOPE_LB_SECRET": "s3cret"},
    )
    config = json.loads(adapted.stdout)
    (server,) = config["apps"]["http"]["servers"].values()
    (route,) = server["routes"]
    (proxy,) = route["handle"]
    assert proxy["handler"] == "reverse_proxy"
    assert proxy["dynamic_upstreams"] | {"refresh": None} == {
        "source": "a",
        "name": "app",
        "port": "8000",
        "refresh": None,
    }
    assert proxy["load_balancing"]["selection_policy"] == {
        "policy": "cookie",
        "name": "shiftscope_replica",
        "secret": "s3cret",
    }
    # Nothing may cut a quiet websocket before the app's next ping (durations in nanoseconds).
    for key in ("read_timeout", "write_timeout"):
        assert server.get(key, 0) == 0 or server[key] > UVICORN_PING_S * 1e9
    assert proxy.get("stream_timeout", 0) == 0 or proxy["stream_timeout"] > UVICORN_PING_S * 1e9
    assert server["listen"] == [":8080"]


class EchoUpstream:
    """A websocket echo server on loopback that records the handshakes it saw."""

    def __init__(self) -> None:
        self.handshakes: list[dict[str, str]] = []
        self.server = serve(self.echo, "127.0.0.1", 0, process_request=self.plain_http)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def plain_http(self, connection: ServerConnection, request: Any) -> Any:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return connection.respond(200, "upstream\n")
        self.handshakes.append({key.lower(): value for key, value in request.headers.raw_items()})
        return None

    def echo(self, websocket: ServerConnection) -> None:
        for message in websocket:
            websocket.send(f"echo {message}")


@pytest.fixture
def proxied_echo(tmp_path: Path) -> Iterator[tuple[EchoUpstream, int]]:
    """deploy/Caddyfile run by Caddy on a loopback port, in front of one EchoUpstream."""
    caddy = caddy_binary()
    upstream = EchoUpstream()
    upstream.thread.start()
    proxy_port = free_port()
    env = {
        **os.environ,
        "SHIFTSCOPE_UPSTREAM": "127.0.0.1",
        "SHIFTSCOPE_UPSTREAM_PORT": str(upstream.port),
        "SHIFTSCOPE_PROXY_PORT": str(proxy_port),
        "SHIFTSCOPE_LB_SECRET": "s3cret",
        "CADDY_ADMIN": f"localhost:{free_port()}",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    log = (tmp_path / "caddy.log").open("w")
    process = subprocess.Popen(
        [caddy, "run", "--adapter", "caddyfile", "--config", str(CADDYFILE)], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # until Caddy listens and reaches the upstream
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{proxy_port}/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "caddy.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()
            time.sleep(0.1)
        yield upstream, proxy_port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        upstream.server.shutdown()
        upstream.thread.join(timeout=5)


def test_caddy_sets_the_affinity_cookie_and_proxies_websockets(
    proxied_echo: tuple[EchoUpstream, int],
) -> None:
    upstream, proxy_port = proxied_echo
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy_port}/", timeout=5) as response:
        assert response.read() == b"upstream\n"
        cookies = response.headers.get_all("Set-Cookie")
    # The cookie names the chosen replica by an HMAC of its address under the configured secret.
    expected = hmac.new(b"s3cret", f"127.0.0.1:{upstream.port}".encode(), hashlib.sha256).hexdigest()
    assert any(cookie.startswith(f"shiftscope_replica={expected}") for cookie in cookies), cookies

    host = f"127.0.0.1:{proxy_port}"
    headers = {"Cookie": f"shiftscope_replica={expected}", "Origin": f"http://{host}"}
    with connect(f"ws://{host}/ws", additional_headers=headers, open_timeout=10) as websocket:
        websocket.send("frame 1")
        assert websocket.recv(timeout=10) == "echo frame 1"
        websocket.send("frame 2")
        assert websocket.recv(timeout=10) == "echo frame 2"
    (handshake,) = upstream.handshakes
    # The app's Origin check compares Origin with Host: the proxy must keep the browser's Host.
    assert handshake["host"] == host
    assert handshake["origin"] == f"http://{host}"
    assert handshake["upgrade"].lower() == "websocket"
    assert handshake["x-forwarded-for"] == "127.0.0.1"
