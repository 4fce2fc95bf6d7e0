"""`python -m app`: serve with the settings from the environment and per-message deflate off."""

from __future__ import annotations

import uvicorn

from app.config import Settings

if __name__ == "__main__":
    settings = Settings()
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_per_message_deflate=False,  # ~8x the server CPU for frame fan-out when on
        ws_max_size=4 * settings.max_message_bytes,  # the app closes past 1x; the transport past 4x
        ws_ping_interval=20.0,  # ping/pong: a vanished peer is dropped within ~40 s
        ws_ping_timeout=20.0,
    )
