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
    )
