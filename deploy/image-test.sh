#!/usr/bin/env bash
# Build the Dockerfile with podman, run the image, and check it from outside (`make image-test`).
#
# Where the official base cannot be pulled and torch's CPU index is out of reach (this project's
# machines and CI), it builds the image as docs/deploy.md describes:
#   - a Debian bookworm base made with debootstrap and `podman import`, passed as BASE_IMAGE;
#   - torch from the CPU wheel already on the machine (found with `pip download`), mounted into
#     the build and passed as TORCH_FIND_LINKS; the rest from PyPI through the host's CA bundle;
#   - podman with runc (crun fails here setting RLIMIT_NPROC) and the host's network.
# Then it runs the container on a loopback port, hardened as compose.yaml runs it (read-only,
# no capabilities), waits for /readyz, plays a run over the websocket (deploy/smoke.py), again
# through deploy/Caddyfile run by Debian's caddy, checks that every process in it runs as a
# non-root user and that the image's HEALTHCHECK passes, and reports build time and image size.
#
# Everything lives in one temporary folder, podman's image store included (--root), and is
# removed on exit, failure or not: nothing is cached between runs, nothing touches the host's
# own podman images. Needs root (debootstrap, rootful podman), podman, runc, debootstrap, caddy.
#
# Environment: PYTHON (the client's Python, with `websockets`; default .venv/bin/python),
# DEBIAN_MIRROR (default http://deb.debian.org/debian), TORCH_VERSION (2.13.0),
# TORCH_WHEEL_DIR (a folder holding the CPU torch wheel; default: `pip download` finds it),
# KEEP_WORK=1 (leave the temporary folder and its images for a post-mortem).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
BASE_TAG=localhost/shiftscope-base:bookworm
IMAGE_TAG=localhost/shiftscope:image-test
CONTAINER=shiftscope-image-test

say() { printf 'image-test: %s\n' "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and rootful podman)"
for tool in podman runc debootstrap caddy; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install podman runc debootstrap caddy)"
done
"$PYTHON" -c "import websockets" 2>/dev/null || fail "$PYTHON has no websockets (make install-dev)"

work=$(mktemp -d /var/tmp/shiftscope-image-test.XXXXXX)
store="$work/storage"
# podman with its own image store and state in $work: the host's images and containers are
# never listed, reused or removed.
pm() { podman --root "$store/root" --runroot "$store/run" --runtime runc "$@"; }

caddy_pid=""
cleanup() {
    local status=$?
    set +e
    [ -n "$caddy_pid" ] && kill "$caddy_pid" 2>/dev/null && wait "$caddy_pid" 2>/dev/null
    if [ "$status" != 0 ] && pm container exists "$CONTAINER" 2>/dev/null; then
        say "the container's last log lines:"
        pm logs --tail 40 "$CONTAINER" 2>&1 | sed 's/^/    /'
    fi
    pm rm --force --time 0 "$CONTAINER" >/dev/null 2>&1
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        say "kept $work and its images: podman --root $store/root --runroot $store/run images"
        exit "$status"
    fi
    pm rmi --all --force >/dev/null 2>&1
    # Anything podman left mounted inside the store, then the folder itself.
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. A stand-in for python:3.11-slim: Debian bookworm's own Python 3.11, minimal.
start=$SECONDS
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/rootfs" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
tar -C "$work/rootfs" -c . | pm import --quiet - "$BASE_TAG" >/dev/null
rm -rf "$work/rootfs"
say "base image (debootstrap + import): $((SECONDS - start)) s"

# 2. The CPU build of torch, from this machine (pip's find-links) or, elsewhere, pip's index.
#    Asking for the +cpu local version can never fetch a CUDA build.
mkdir -p "$work/wheels"
if [ -n "${TORCH_WHEEL_DIR:-}" ]; then
    cp "$TORCH_WHEEL_DIR"/torch-"$TORCH_VERSION"+cpu-*.whl "$work/wheels/"
else
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work/wheels" \
        "torch==$TORCH_VERSION+cpu" 2>"$work/pip.log" \
        || { cat "$work/pip.log" >&2; fail "no CPU wheel of torch $TORCH_VERSION found (set TORCH_WHEEL_DIR)"; }
fi
say "torch wheel: $(basename "$work"/wheels/torch-*.whl)"

# 3. The image: the Dockerfile unchanged, the base and torch's source as build arguments.
#    --format docker keeps the HEALTHCHECK (the OCI format has none).
start=$SECONDS
pm build --format docker --network host --pull=never \
    --volume "$CA_BUNDLE:$CA_BUNDLE:ro" \
    --volume "$work/wheels:/wheels:ro" \
    --build-arg BASE_IMAGE="$BASE_TAG" \
    --build-arg TORCH_FIND_LINKS=/wheels \
    --build-arg TORCH_VERSION="$TORCH_VERSION" \
    --tag "$IMAGE_TAG" . >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; fail "podman build"; }
build_s=$((SECONDS - start))
size=$(pm image inspect --format '{{.Size}}' "$IMAGE_TAG")
base_size=$(pm image inspect --format '{{.Size}}' "$BASE_TAG")
say "build: $build_s s; image $((size / 1000000)) MB (of which the base $((base_size / 1000000)) MB)"

# 4. Run it on a free loopback port (the host's network: no bridge or port mapping needed; the
#    image binds 0.0.0.0 by default, overridden here so the test is never reachable off-host).
#    Explicit ulimits: podman's defaults (or --ulimit host) are refused here ("error setting
#    rlimit ... operation not permitted"); lower ones are allowed, and these are ample.
port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
pm run --detach --name "$CONTAINER" --network host \
    --env SHIFTSCOPE_HOST=127.0.0.1 --env SHIFTSCOPE_PORT="$port" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --memory 2g --pids-limit 512 "$IMAGE_TAG" \
    >/dev/null 2>"$work/run.log" || { cat "$work/run.log" >&2; fail "podman run"; }
# (podman logs that it cannot schedule the healthcheck without systemd: step 6 runs it itself.)
"$PYTHON" deploy/smoke.py "http://127.0.0.1:$port" || fail "smoke test"

# 5. The same through deploy/Caddyfile (Debian's caddy on loopback): the websocket upgrade, the
#    Host header that the app's Origin check compares, the affinity cookie.
proxy_port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
admin_port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
SHIFTSCOPE_UPSTREAM=127.0.0.1 SHIFTSCOPE_UPSTREAM_PORT="$port" SHIFTSCOPE_PROXY_PORT="$proxy_port" \
    CADDY_ADMIN="localhost:$admin_port" XDG_CONFIG_HOME="$work/caddy" XDG_DATA_HOME="$work/caddy" \
    caddy run --adapter caddyfile --config deploy/Caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
"$PYTHON" deploy/smoke.py "http://127.0.0.1:$proxy_port" --ready-timeout 30 \
    || { tail -20 "$work/caddy.log" >&2; fail "smoke test through Caddy"; }
kill "$caddy_pid" && wait "$caddy_pid" 2>/dev/null || true
caddy_pid=""

# 6. Nobody in the container is root: the server, its fork server and its workers.
uids=$(pm exec "$CONTAINER" /opt/venv/bin/python -c \
    "import os; print(' '.join(sorted({str(os.stat(f'/proc/{p}').st_uid) for p in os.listdir('/proc') if p.isdigit()})))")
processes=$(pm exec "$CONTAINER" /opt/venv/bin/python -c \
    "import os; print(sum(p.isdigit() for p in os.listdir('/proc')))")
case " $uids " in
    *" 0 "*) fail "a process runs as root (uids: $uids)" ;;
esac
say "processes in the container: $processes, uids: $uids"

# 7. The image's own HEALTHCHECK, run by podman.
pm healthcheck run "$CONTAINER" >/dev/null || fail "the HEALTHCHECK did not pass"
say "HEALTHCHECK: healthy"
say "passed: build $build_s s, image $((size / 1000000)) MB"
