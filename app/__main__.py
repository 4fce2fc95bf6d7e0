"""`python -m app`: serve with the settings from the environment and bounded transports
(app/serve.py: header size and time limits, a connection cap, per-message deflate off)."""

from __future__ import annotations

import uvicorn

from app.config import Settings
from app.serve import uvicorn_options

if __name__ == "__main__":
    settings = Settings()
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        **uvicorn_options(settings),
    )
