# ShiftScope in one container: torch (CPU by default), a non-root user, configured by env vars.
#   docker build -t shiftscope .
#   docker run --rm -p 8000:8000 shiftscope
# Build arguments (docs/deploy.md, "The image"):
#   BASE_IMAGE       a Python 3.11+ image with `python3 -m venv` (default: the official slim one)
#   TORCH_INDEX_URL  where torch comes from: the CPU wheel index by default; a CUDA build with
#                    e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
#   TORCH_FIND_LINKS a folder of wheels inside the build (podman build -v DIR:/wheels) to take
#                    torch from instead of any index; empty by default
#   TORCH_VERSION    the torch release (2.13.0)
ARG BASE_IMAGE=python:3.11-slim

# --- build: a virtual environment with the dependencies, copied whole into the runtime stage.
FROM ${BASE_IMAGE} AS build

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# A virtual environment, so that a Debian-packaged Python (PEP 668: no pip into the system) and
# the official image's Python behave alike.
RUN python3 -m venv /opt/venv

# torch first, in its own layer so that a dependency change does not fetch it again. From the
# CPU index with --index-url (not --extra-index-url, which would let pip take a ~2.7 GB CUDA
# build), without its dependencies: those come from PyPI with the app's in the next step.
# --no-compile: bytecode is compiled below for the modules the server imports only.
RUN if [ -n "$TORCH_FIND_LINKS" ]; then \
        pip install --no-compile --no-deps --no-index --find-links "$TORCH_FIND_LINKS" "torch==${TORCH_VERSION}"; \
    else \
        pip install --no-compile --no-deps --index-url "$TORCH_INDEX_URL" "torch==${TORCH_VERSION}"; \
    fi

# The app's dependencies, read from pyproject.toml; the app itself is not installed: it runs from
# its source tree, where app/main.py finds templates/ and static/ beside the package. pip also
# brings torch's own dependencies (sympy, networkx, ...; the nvidia-* libraries for CUDA).
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print(*tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && pip install --no-compile -r /tmp/requirements.txt \
    && pip check

# Smaller (measured for the CPU build: -190 MB, -100 MB of bytecode): torch's C++ test binaries
# and headers (only for compiling extensions, which the app never does); bytecode only for what
# the server and its workers import at start-up, compiled by importing it once.
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && rm -rf "$site/torch/test" "$site/torch/include" \
    && find "$site/torch/bin" -mindepth 1 ! -name torch_shm_manager -delete \
    && python -W ignore -c "import torch, torch._dynamo, numpy, fastapi, uvicorn, uvicorn.protocols.websockets.websockets_sansio_impl, pydantic, pydantic_settings, jinja2, orjson, segno, plotly, h11, websockets"

# --- runtime: the base image, the virtual environment and the app's source tree.
FROM ${BASE_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/shiftscope \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHIFTSCOPE_HOST=0.0.0.0 \
    SHIFTSCOPE_PORT=8000

RUN useradd --create-home --uid 10001 --user-group shiftscope

COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/shiftscope
# Owned by root and read-only to the app's user.
COPY app ./app
COPY templates ./templates
COPY static ./static

USER 10001:10001
EXPOSE 8000

# No curl in slim images: ask /healthz with the venv's Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('SHIFTSCOPE_PORT', '8000')}/healthz\", timeout=4)"]

# python -m app reads the SHIFTSCOPE_* settings and bounds the transport (app/serve.py).
CMD ["/opt/venv/bin/python", "-m", "app"]
