"""``GET /web/<id>/<file>``: the web export of a model (``paddleface export ID --format web``),
made once per weights file and page version under ``$PADDLEFACE_HOME/web``, served with the
cross-origin-isolation headers (COOP/COEP) that onnxruntime-web's WASM threads need. The
try-it page's switch "in this browser" opens ``/web/<id>/index.html``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Dict

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..errors import PaddleFaceError
from ..registry import get_record
from .inputs import RequestError

_locks: Dict[str, threading.Lock] = {}
_guard = threading.Lock()


def web_export(model_id: str) -> Path:
    """The folder of ``model_id``'s web export, exported on first use (seconds: ONNX export,
    and once per machine ``npm ci`` of the runtime)."""
    from .. import web
    from ..export import export_model
    from ..weights import home, resolve_weights
    record = get_record(model_id)
    weights = resolve_weights(record)
    h = hashlib.sha256(weights.name.encode())
    for name in web.PAGE_FILES + ("package-lock.json",):
        h.update((web.WEB_DIR / name).read_bytes())
    out = home() / "web" / f"{model_id}-{h.hexdigest()[:12]}"
    with _guard:
        lock = _locks.setdefault(model_id, threading.Lock())
    with lock:
        if not (out / "index.html").is_file():
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                export_model(record, "web", tmp, str(weights))
                os.replace(tmp, out)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def add_web_routes(app: FastAPI) -> None:
    from ..web.static_server import ISOLATION_HEADERS, MIME_TYPES

    @app.get("/web/{model_id}/{path:path}", include_in_schema=False)
    async def web_file(model_id: str, path: str):
        if get_record_or_none(model_id) is None:
            raise RequestError(404, f"unknown model id {model_id!r}")
        try:
            folder = await run_in_threadpool(web_export, model_id)
        except PaddleFaceError as e:
            raise RequestError(503, str(e)) from None
        file = (folder / (path or "index.html")).resolve()
        if folder.resolve() not in file.parents or not file.is_file():
            raise RequestError(404, f"/web/{model_id}/{path}: no such file in the web export")
        return FileResponse(file, headers={**ISOLATION_HEADERS, "Cache-Control": "no-cache"},
                            media_type=MIME_TYPES.get(file.suffix))


def get_record_or_none(model_id: str):
    try:
        return get_record(model_id)
    except PaddleFaceError:
        return None
