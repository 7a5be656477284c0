"""Serve a folder over HTTP on this machine, optionally cross-origin isolated.

``python -m paddleface.web.static_server DIR [--port 8000] [--no-isolation]`` serves an exported
web folder. Cross-origin isolation (the ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp`` headers) is what lets the page's WebAssembly use
threads (SharedArrayBuffer); without it onnxruntime-web runs on one thread. The tests and
``bench/web_latency.py`` use :func:`start` with extra folders mounted beside it.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path
from typing import Dict, Optional, Tuple

ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin",
                     "Cross-Origin-Embedder-Policy": "require-corp"}
# .mjs must be served as JavaScript (module scripts are refused otherwise), .wasm as
# application/wasm (streaming compilation needs it)
MIME_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
              ".onnx": "application/octet-stream", ".json": "application/json"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def __init__(self, *args, isolated: bool, mounts: Dict[str, Path], **kwargs):
        self.isolated = isolated
        self.mounts = mounts
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        for prefix, folder in self.mounts.items():  # /prefix/rest -> folder/rest
            if path.startswith(prefix + "/"):
                rest = super().translate_path("/" + path[len(prefix) + 1:])
                return str(folder / Path(rest).relative_to(self.directory))
        return super().translate_path(path)

    def end_headers(self):
        if self.isolated:
            for k, v in ISOLATION_HEADERS.items():
                self.send_header(k, v)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, *args):  # quiet: tests and benchmarks print their own lines
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        import sys
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # the browser closed the page while a file was on its way
        super().handle_error(request, client_address)


def start(root, isolated: bool = True, mounts: Optional[Dict[str, Path]] = None,
          port: int = 0) -> Tuple[_Server, str]:
    """Serve ``root`` (and each ``mounts`` prefix such as ``"/photos"`` from its folder) on
    127.0.0.1 in a daemon thread; returns (server, base URL). ``server.shutdown()`` stops it."""
    handler = functools.partial(_Handler, directory=str(root), isolated=isolated,
                                mounts={k.rstrip("/"): Path(v) for k, v in (mounts or {}).items()})
    server = _Server(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-isolation", action="store_true",
                   help="leave out the COOP/COEP headers (the page then runs one thread)")
    args = p.parse_args(argv)
    server, url = start(args.folder, not args.no_isolation, port=args.port)
    print(f"serving {args.folder} at {url}/ (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
