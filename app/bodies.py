"""The HTTP companions' request bodies: read no further than a limit, and refused in the same
`error` shape the websocket uses (docs/protocol.md).

    body = await read_bounded(request, settings.upload_max_bytes)
    if body is None:
        return http_error(413, "too_large", "the file is larger than ...")
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["http_error", "read_bounded"]


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The request's body, or None when it is larger than `limit` bytes: a declared
    Content-Length past it is refused unread, and a streamed body is never buffered past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def http_error(
    status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """An HTTP answer carrying a wire `error` message."""
    body = {"type": "error", "code": code, "message": message, "errors": errors or []}
    return JSONResponse(body, status_code=status)
