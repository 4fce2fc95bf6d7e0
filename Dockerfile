# ShiftScope in one container: CPU-only torch, a non-root user, configured by env vars.
#   docker build -t shiftscope .
#   docker run --rm -p 8000:8000 shiftscope
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHIFTSCOPE_HOST=0.0.0.0 \
    SHIFTSCOPE_PORT=8000

WORKDIR /srv/shiftscope

# torch first, from the CPU wheel index (--index-url, not --extra-index-url: that would let
# pip take a ~2.7 GB CUDA build), in its own layer so code changes do not reinstall it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY app ./app
COPY templates ./templates
COPY static ./static
# Editable: the app finds templates/ and static/ beside its package, here in /srv/shiftscope.
RUN pip install -e . \
    && useradd --create-home --uid 10001 shiftscope
USER 10001

EXPOSE 8000
# slim has no curl: ask /healthz with Python's urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('SHIFTSCOPE_PORT', '8000')}/healthz\", timeout=4)"]

# python -m app reads SHIFTSCOPE_* settings and turns per-message deflate off.
CMD ["python", "-m", "app"]
