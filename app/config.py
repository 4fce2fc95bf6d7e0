"""Settings: process-wide configuration from the environment (prefix SHIFTSCOPE_).

SHIFTSCOPE_PORT=9000 SHIFTSCOPE_HOST=0.0.0.0 make run
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the app listens and the limits it enforces."""

    model_config = SettingsConfigDict(env_prefix="SHIFTSCOPE_", extra="ignore")

    host: str = "127.0.0.1"  # the container sets 0.0.0.0 explicitly
    port: int = 8000
    max_message_bytes: int = 64 * 1024  # larger client messages are refused
    log_level: str = "info"
