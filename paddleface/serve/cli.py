"""The ``paddleface serve`` subcommand."""
from __future__ import annotations

from ..registry import REGISTRY


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the detectors over HTTP (API, PaddleHub-compatible "
                                     "/predict, and a page to try them)")
    p.add_argument("--model", "-m", default="rfb-lm", choices=sorted(REGISTRY), metavar="ID",
                   help="the default model, loaded at start-up (others load on first use)")
    p.add_argument("--preload", default="", metavar="ID,ID",
                   help="more models to load at start-up, e.g. ulfd-rfb-640 for PaddleHub clients")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8866, help="8866, as PaddleHub Serving")
    p.add_argument("--workers", type=int, default=1,
                   help="processes, each with its own copy of the models")
    p.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    p.add_argument("--engine", default="auto", help="FaceDetector's engine (auto, onnxruntime, "
                                                    "inference, dygraph)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per predictor (default: all cores; with several workers "
                        "use cores / workers)")
    p.add_argument("--max-body-mb", type=float, default=16, help="larger bodies get 413")
    p.add_argument("--max-megapixels", type=float, default=50,
                   help="larger images get 413 before they are decoded")
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument("--graceful-timeout", type=float, default=20, metavar="SECONDS",
                   help="on SIGTERM/SIGINT: stop accepting, let requests in flight finish for "
                        "up to this long, then exit 0 (default 20, below Docker's and "
                        "Kubernetes' 30 s before SIGKILL)")
    p.set_defaults(func=run_serve)


def run_serve(args) -> int:
    from .app import ServeConfig, config_to_env
    from .lifecycle import serve
    from .memory import limit_malloc_arenas
    limit_malloc_arenas()  # with --workers 1 the app runs in this process
    preload = [m for m in args.preload.split(",") if m]
    unknown = [m for m in preload if m not in REGISTRY]
    if unknown:
        from ..errors import PaddleFaceError
        raise PaddleFaceError(f"--preload: unknown model ids {', '.join(unknown)}")
    config_to_env(ServeConfig(model=args.model, preload=preload, device=args.device,
                              engine=args.engine, threads=args.threads,
                              max_body_bytes=int(args.max_body_mb * (1 << 20)),
                              max_pixels=int(args.max_megapixels * 1e6)))
    # an import string and a factory: with --workers N, each worker process builds its own app
    return serve("paddleface.serve.app:app_from_env", host=args.host, port=args.port,
                 workers=args.workers, access_log=not args.no_access_log,
                 graceful_timeout=args.graceful_timeout)
