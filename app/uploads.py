"""Your own data over HTTP: `POST /api/dataset` puts a CSV into one live session's memory.

The websocket carries at most `max_message_bytes` a message and is rate limited, so the file
comes as a plain HTTP body instead, read no further than `upload_max_bytes`. It names its
session by the upload token that only that websocket was told (in `hello`); the parsed table
lives on the `Session` and goes when the connection does. Parsing runs off the event loop,
`upload_parsers` at a time.

    POST /api/dataset?label=species&name=iris.csv   X-Upload-Token: <hello.upload.token>
    <the CSV bytes>
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterable
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse

from app.allocator import release_freed_memory
from app.bodies import http_error, read_bounded
from app.config import Settings
from app.datasets.classification import TEST_FRACTION
from app.datasets.upload import Table, TableError, TableLimits, parse_table
from app.nets.cnn import IMAGE_PIXELS
from app.security import origin_allowed
from app.session import Session

__all__ = ["TOKEN_HEADER", "dataset_preview", "receive_upload", "session_of", "upload_hello", "upload_limits"]

TOKEN_HEADER = "x-upload-token"
SCATTER_POINTS = 1000  # a two-feature table's preview plots at most this many rows
MAX_NAME_CHARS = 80


def upload_limits(settings: Settings) -> TableLimits:
    return TableLimits(
        max_bytes=settings.upload_max_bytes,
        max_rows=settings.upload_max_rows,
        max_features=settings.upload_max_features,
        max_classes=settings.upload_max_classes,
        min_rows_per_class=settings.upload_min_rows_per_class,
    )


def upload_hello(session: Session, settings: Settings) -> dict[str, Any]:
    """What `hello` tells a connection about uploading: its token, the route and the limits."""
    return {
        "token": session.upload_token,
        "path": "api/dataset",
        "max_bytes": settings.upload_max_bytes,
        "max_rows": settings.upload_max_rows,
        "max_features": settings.upload_max_features,
        "max_classes": settings.upload_max_classes,
        "min_rows_per_class": settings.upload_min_rows_per_class,
    }


def session_of(sessions: Iterable[Session], token: str | None) -> Session | None:
    """The open session this upload token names (compared in constant time), if any."""
    if not token:
        return None
    found = None
    for session in sessions:
        if hmac.compare_digest(session.upload_token.encode(), token.encode()):
            found = session
    return found


async def receive_upload(
    request: Request, sessions: set[Session], settings: Settings, parsers: asyncio.Semaphore
) -> JSONResponse:
    """Read, parse and attach one CSV; the answer is the table's preview or a structured error."""
    headers = request.headers
    if not origin_allowed(headers.get("origin"), headers.get("host"), settings.allowed_origins):
        return http_error(403, "origin", "uploads are taken from this server's own page only")
    session = session_of(sessions, request.headers.get(TOKEN_HEADER))
    if session is None:
        return http_error(
            403, "no_session", "the upload token names no open connection: reload the page and upload again"
        )
    if session.uploading:
        return http_error(409, "upload_in_progress", "this page is uploading a file already: wait for it")
    session.uploading = True
    try:
        body = await read_bounded(request, settings.upload_max_bytes)
        if body is None:
            too_large = (
                f"the file is larger than {settings.upload_max_bytes:,} bytes (SHIFTSCOPE_UPLOAD_MAX_BYTES)"
            )
            return http_error(413, "too_large", too_large, [_file_error("too_large", too_large)])
        label = request.query_params.get("label") or None
        limits = upload_limits(settings)
        async with parsers:
            try:
                table = await asyncio.to_thread(parse_table, body, limits, label)
            except TableError as refusal:
                return http_error(422, "invalid_csv", str(refusal), [refusal.to_wire()])
            finally:
                del body
                await asyncio.to_thread(release_freed_memory)  # a parse's temporaries go back to the OS
        if session not in sessions:
            closed = "the connection closed while the file was read: nothing was kept"
            return http_error(410, "session_closed", closed)
        others = (other.table for other in sessions if other is not session)
        held = sum(other.nbytes for other in others if other is not None)
        if settings.upload_max_total_bytes and held + table.nbytes > settings.upload_max_total_bytes:
            return http_error(
                503,
                "uploads_full",
                "the server holds as much uploaded data as it may (SHIFTSCOPE_UPLOAD_MAX_TOTAL_BYTES): "
                "try again later or with a smaller file",
            )
        session.table = table
        name = (request.query_params.get("name") or "upload.csv")[:MAX_NAME_CHARS]
        return JSONResponse({"type": "dataset", "name": name, **dataset_preview(table)})
    finally:
        session.uploading = False


def _file_error(code: str, message: str) -> dict[str, Any]:
    return {
        "field": "file",
        "reason": code,
        "row": None,
        "column": None,
        "column_name": None,
        "message": message,
    }


def dataset_preview(table: Table) -> dict[str, Any]:
    """A small description of a table for the page: its size, its classes, and for two features
    the rows themselves (standardised, at most SCATTER_POINTS, evenly spaced)."""
    counts = np.bincount(table.y, minlength=table.classes)
    test_rows = int(table.rows * TEST_FRACTION)
    preview: dict[str, Any] = {
        "rows": table.rows,
        "features": table.features,
        "classes": table.classes,
        "train_rows": table.rows - test_rows,
        "test_rows": test_rows,
        "label": table.label_name,
        "feature_names": list(table.feature_names),
        "class_names": list(table.class_names),
        "class_counts": [int(c) for c in counts],
        "bytes": table.nbytes,
        "cnn": table.features == IMAGE_PIXELS,  # 8x8 images: the CNN may train on it
        "scatter": None,
    }
    if table.features == 2:
        picked = np.linspace(0, table.rows - 1, min(table.rows, SCATTER_POINTS)).round().astype(np.int64)
        points = np.round(table.x[picked].astype(np.float64), 4)
        preview["scatter"] = {
            "x": points[:, 0].tolist(),
            "y": points[:, 1].tolist(),
            "label": table.y[picked].tolist(),
        }
    return preview
