"""The HTTP service: ``POST /detect``, PaddleHub's ``POST /predict/<module>``, ``GET /models``,
``GET /healthz``, the try-it page at ``/``, each model's in-browser page at ``/web/<id>/``
(:mod:`paddleface.serve.web`) and FastAPI's OpenAPI docs at ``/docs``."""
from __future__ import annotations

import json
import os
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Union

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..registry import REGISTRY
from .inputs import RequestError, decode_base64_image, decode_upload
from .models import HUB_MODULES, DetectorPool, hub_protocol
from .web import add_web_routes

PAGE = Path(__file__).with_name("page.html")
CONFIG_ENV = "PADDLEFACE_SERVE_CONFIG"  # how `paddleface serve --workers N` configures each worker


@dataclass
class ServeConfig:
    model: str = "rfb-lm"  # the default model, loaded at start-up
    preload: List[str] = field(default_factory=list)  # more models loaded at start-up
    device: Optional[str] = "cpu"
    engine: str = "auto"
    threads: Optional[int] = None
    max_body_bytes: int = 16 << 20
    max_pixels: int = 50_000_000
    max_images: int = 16  # per JSON request


# ----------------------------------------------------------------------------- schemas (docs)
class FaceOut(BaseModel):
    box: List[float]  # x1 y1 x2 y2, pixels of the sent image
    score: float
    label: str = "face"  # the class: one of the model's labels ("face", "masked_face")
    landmarks: Optional[List[List[float]]] = None  # 5 (x, y): eyes, nose, mouth corners


class ImageResult(BaseModel):
    width: int
    height: int
    faces: List[FaceOut]
    decode_ms: float
    detect_ms: float


class DetectResponse(BaseModel):
    model: str
    threshold: float
    nms_iou: float
    long_side: Union[int, str, None]
    images: List[ImageResult]
    total_ms: float


class ErrorResponse(BaseModel):
    error: str


class HubFace(BaseModel):
    left: float
    right: float
    top: float
    bottom: float
    confidence: float


class HubImage(BaseModel):
    data: List[HubFace]


class HubResponse(BaseModel):
    status: str  # "000" on success (PaddleHub's codes)
    msg: str
    results: Union[List[HubImage], str]


ERRORS = {code: {"model": ErrorResponse} for code in (400, 404, 413, 503)}
DETECT_BODY = {
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["image"],
            "properties": {"image": {"type": "string", "format": "binary",
                                     "description": "one image file (repeat the field for more)"}}}},
        "application/json": {"schema": {
            "type": "object", "required": ["images"],
            "properties": {"images": {"type": "array", "items": {"type": "string"},
                                      "description": "base64 images (or data: URLs)"},
                           "model": {"type": "string"}, "threshold": {"type": "number"},
                           "nms_iou": {"type": "number"},
                           "long_side": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}}},
        "image/*": {"schema": {"type": "string", "format": "binary",
                               "description": "the raw bytes of one image"}},
    }}}
HUB_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["images"],
        "properties": {"images": {"type": "array", "items": {"type": "string"}},
                       "confs_threshold": {"type": "number", "default": 0.5},
                       "iou_threshold": {"type": "number", "default": 0.5}}}}}}}
JSON_OPTIONS = {"images", "model", "threshold", "nms_iou", "long_side"}
# serving_method kwargs of the hub module that only matter inside PaddleHub's own process
HUB_IGNORED = {"batch_size", "use_gpu", "visualization", "output_dir", "paths", "data"}


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses request bodies over ``limit`` bytes with 413: at once when Content-Length says
    so, otherwise as soon as the streamed (chunked) body passes the limit."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_large_response(self.limit)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        return await self.app(scope, limited_receive, send)


def too_large_response(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"the request body is over this service's limit of "
                                  f"{limit / (1 << 20):.0f} MB."}, status_code=413)


def error_sentence(exc: RequestValidationError) -> str:
    """FastAPI's validation error list as one sentence naming the first bad parameter."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
    return f"{where or 'the request'}: {err.get('msg', 'invalid value')}."


def parse_long_side(value) -> Optional[int]:
    """``640``, ``"640"`` or ``"origin"`` -> pixels, None for origin (no resize), -1 when
    absent (the model's default)."""
    if value is None:
        return -1
    if value == "origin":
        return None
    try:
        side = int(str(value))
    except ValueError:
        side = 0
    if not 32 <= side <= 4096:
        raise RequestError(400, f"long_side must be a whole number of pixels from 32 to 4096 or "
                                f"'origin', not {value!r}.")
    return side


def parse_fraction(name: str, value, lo_open: bool = True):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"{name} must be a number, not {value!r}.")
    if not (0 < value <= 1 if lo_open else 0 <= value < 1):
        raise RequestError(400, f"{name} must be in {'(0, 1]' if lo_open else '[0, 1)'}, "
                                f"not {value}.")
    return float(value)


def faces_json(faces) -> List[dict]:
    return [f.to_dict() for f in faces]


def create_app(config: Optional[ServeConfig] = None) -> FastAPI:
    cfg = config or ServeConfig()
    pool = DetectorPool(device=cfg.device, engine=cfg.engine, threads=cfg.threads)
    started = time.time()

    @asynccontextmanager
    async def lifespan(app):
        # load at start-up so the first request is not the one that waits for it
        for model_id in [cfg.model, *cfg.preload]:
            await run_in_threadpool(pool.get, model_id)
        yield

    app = FastAPI(title="PaddleFace", version="0.1.0", lifespan=lifespan,
                  description="Face detection (ULFD, Face-Detector-1MB, RetinaFace-mnet, "
                              "BlazeFace) over HTTP. Errors are `{\"error\": sentence}`.")
    app.state.pool = pool
    app.state.config = cfg
    app.add_middleware(BodySizeLimit, limit=cfg.max_body_bytes)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        if request.url.path.startswith("/predict/"):
            return JSONResponse({"status": "101" if exc.status != 404 else "111",
                                 "msg": exc.message, "results": ""}, status_code=exc.status)
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge):
        return too_large_response(cfg.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": error_sentence(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        msg = {404: f"no such endpoint {request.url.path}; see /docs.",
               405: f"{request.method} is not allowed on {request.url.path}; see /docs."
               }.get(exc.status_code, f"{exc.detail}.")
        return JSONResponse({"error": msg}, status_code=exc.status_code)

    # ------------------------------------------------------------------------- reading bodies
    async def read_images(request: Request) -> tuple:
        """(list of (name, encoded bytes or base64 text, is_base64), JSON options)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            try:
                form = await request.form(max_files=cfg.max_images,
                                          max_part_size=cfg.max_body_bytes)
            except BodyTooLarge:
                raise
            except Exception:
                raise RequestError(400, "the multipart body could not be parsed.") from None
            try:  # uploads over 1 MB are spooled to temporary files: close them
                uploads = form.getlist("image")
                if not uploads:
                    raise RequestError(400, "the multipart body has no 'image' field.")
                if any(isinstance(up, str) for up in uploads):
                    raise RequestError(400, "the 'image' field must be a file, not text.")
                return [(f"image {i} ({up.filename or 'upload'})", await up.read(), False)
                        for i, up in enumerate(uploads)], {}
            finally:
                await form.close()
        body = await request.body()
        if ctype == "application/json":
            try:
                doc = json.loads(body)
            except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not JSON we take
                raise RequestError(400, "the body is not valid JSON.") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
                raise RequestError(400, 'the JSON body must be an object with "images": '
                                        "a list of base64 strings.")
            unknown = set(doc) - JSON_OPTIONS
            if unknown:
                raise RequestError(400, f"unknown JSON keys {sorted(unknown)}; allowed: "
                                        f"{sorted(JSON_OPTIONS)}.")
            images = doc.pop("images")
            if not images:
                raise RequestError(400, '"images" is an empty list.')
            if len(images) > cfg.max_images:
                raise RequestError(400, f"{len(images)} images in one request, over the limit "
                                        f"of {cfg.max_images}.")
            return [(f"images[{i}]", s, True) for i, s in enumerate(images)], doc
        if not body:
            raise RequestError(400, "the request body is empty: send an image (multipart field "
                                    "'image', raw bytes or JSON base64).")
        return [("the body", body, False)], {}

    def decode(name, payload, is_base64):
        if is_base64:
            return decode_base64_image(payload, name, cfg.max_pixels)
        return decode_upload(payload, name, cfg.max_pixels)

    # ------------------------------------------------------------------------- endpoints
    @app.post("/detect", responses={200: {"model": DetectResponse}, **ERRORS},
              openapi_extra=DETECT_BODY, summary="Detect faces in one or more images")
    async def detect(request: Request,
                     model: Optional[str] = Query(None, description="model id (GET /models)"),
                     threshold: Optional[float] = Query(None, gt=0, le=1,
                                                        description="final score threshold"),
                     nms_iou: Optional[float] = Query(None, gt=0, le=1),
                     long_side: Optional[str] = Query(
                         None, description="any-size models: resize the long side to this many "
                                           "pixels, or 'origin'")):
        """The image as a multipart upload (field `image`), the raw body, or JSON
        `{"images": [base64, ...]}`; options in the query string (or the JSON object)."""
        t0 = time.perf_counter()
        items, options = await read_images(request)
        model_id = options.get("model", model) or cfg.model
        thr = parse_fraction("threshold", options.get("threshold", threshold))
        iou = parse_fraction("nms_iou", options.get("nms_iou", nms_iou))
        side = parse_long_side(options.get("long_side", long_side))
        record = REGISTRY.get(model_id)
        if record is not None and side != -1 and record.preprocess.resize != "long_side":
            raise RequestError(400, f"long_side applies to the any-size models; {model_id} "
                                    f"resizes every image to {record.preprocess.size[0]}x"
                                    f"{record.preprocess.size[1]}.")

        def run():
            det = pool.variant(model_id, threshold=thr, nms_iou=iou, long_side=side)
            out = []
            for name, payload, is_b64 in items:
                t1 = time.perf_counter()
                image = decode(name, payload, is_b64)
                t2 = time.perf_counter()
                faces = det.detect(image)
                t3 = time.perf_counter()
                out.append({"width": image.shape[1], "height": image.shape[0],
                            "faces": faces_json(faces), "decode_ms": round((t2 - t1) * 1e3, 2),
                            "detect_ms": round((t3 - t2) * 1e3, 2)})
            return det, out

        det, results = await run_in_threadpool(run)
        p = det.record.preprocess
        used_side = (det.long_side if det.long_side != -1 else p.long_side) \
            if p.resize == "long_side" else None
        return JSONResponse({
            "model": model_id, "threshold": det.protocol.final_threshold,
            "nms_iou": det.protocol.nms_iou,
            "long_side": "origin" if p.resize == "long_side" and used_side is None else used_side,
            "images": results, "total_ms": round((time.perf_counter() - t0) * 1e3, 2)})

    @app.post("/predict/{module_name}", responses={200: {"model": HubResponse}},
              openapi_extra=HUB_BODY, summary="PaddleHub Serving compatible prediction")
    async def hub_predict(module_name: str, request: Request):
        """`hub serving start -m ultra_light_fast_generic_face_detector_1mb_{320,640}`'s
        endpoint: JSON `{"images": [base64, ...]}` -> `{"status": "000", "msg": "",
        "results": [{"data": [{"left", "right", "top", "bottom", "confidence"}]}]}`."""
        model_id = HUB_MODULES.get(module_name)
        if model_id is None:
            raise RequestError(404, f"Module {module_name} is not available; this service "
                                    f"serves {', '.join(HUB_MODULES)}.")
        try:
            doc = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not JSON we take
            raise RequestError(400, "the body is not valid JSON; send application/json "
                                    '{"images": [base64, ...]}.') from None
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not doc["images"]:
            raise RequestError(400, 'the JSON body must be an object with "images": a non-empty '
                                    "list of base64 strings.")
        unknown = set(doc) - {"images", "confs_threshold", "iou_threshold"} - HUB_IGNORED
        if unknown:
            raise RequestError(400, f"unknown arguments {sorted(unknown)} for {module_name}.")
        if len(doc["images"]) > cfg.max_images:
            raise RequestError(400, f"{len(doc['images'])} images in one request, over the "
                                    f"limit of {cfg.max_images}.")
        conf = parse_fraction("confs_threshold", doc.get("confs_threshold", 0.5), lo_open=False)
        iou = parse_fraction("iou_threshold", doc.get("iou_threshold", 0.5))

        def run():
            record = REGISTRY[model_id]
            det = pool.variant(model_id, protocol=hub_protocol(record, conf, iou))
            results = []
            for i, text in enumerate(doc["images"]):
                faces = det.detect(decode_base64_image(text, f"images[{i}]", cfg.max_pixels))
                results.append({"data": [
                    {"left": float(f.box[0]), "right": float(f.box[2]), "top": float(f.box[1]),
                     "bottom": float(f.box[3]), "confidence": float(f.score)} for f in faces]})
            return results

        return JSONResponse({"status": "000", "msg": "", "results": await run_in_threadpool(run)})

    @app.get("/models", summary="The model ids, their input rules and whether they are loaded")
    def models():
        from ..weights import weights_available
        loaded = set(pool.loaded())
        out = []
        for r in REGISTRY.values():
            p = r.preprocess
            out.append({
                "id": r.id, "description": r.description, "landmarks": r.landmarks,
                "labels": list(r.labels),
                "resize": p.resize, "input_size": list(p.size) if p.size else None,
                "default_long_side": p.long_side if p.resize == "long_side" else None,
                "default_threshold": r.detection.final_threshold or r.detection.score_threshold,
                "nms_iou": r.detection.nms_iou, "params": r.params,
                "servable": r.checkpoint is not None, "weights": weights_available(r) or "download",
                "loaded": r.id in loaded, "default": r.id == cfg.model,
                "hub_modules": [m for m, i in HUB_MODULES.items() if i == r.id]})
        return {"default": cfg.model, "models": out}

    @app.get("/healthz", summary="Liveness: the worker answers and its default model is loaded")
    def healthz():
        return {"status": "ok", "pid": os.getpid(), "loaded": pool.loaded(),
                "uptime_s": round(time.time() - started, 1)}

    add_web_routes(app)  # /web/<id>/: the model's web export, cross-origin isolated

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    return app


def config_from_env() -> ServeConfig:
    raw = os.environ.get(CONFIG_ENV)
    return ServeConfig(**json.loads(raw)) if raw else ServeConfig()


def app_from_env() -> FastAPI:
    """uvicorn's factory for ``--workers N``: every worker process builds its app (and loads
    its models) from the configuration the command line put in the environment."""
    from ..cli_args import quiet_paddle
    from .memory import limit_malloc_arenas
    # a worker process is new: what `paddleface serve` set up in its own process is not here
    quiet_paddle()
    limit_malloc_arenas()
    # import paddle here, in the main thread under uvicorn's signal handlers, which
    # import_paddle keeps (the models load in a thread, where they could not be restored)
    from ..paddle_runtime import import_paddle
    import_paddle()
    return create_app(config_from_env())


def config_to_env(cfg: ServeConfig) -> None:
    os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
