"""The shared conformance script, run against the real app over a real websocket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer

CHECK = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "protocol_check.py"


@pytest.mark.skipif(not CHECK.exists(), reason=f"{CHECK} is not beside this checkout")
def test_protocol_conformance(live_server: LiveServer) -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK), str(live_server.port)], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checks hold" in result.stdout and "failing" not in result.stdout
