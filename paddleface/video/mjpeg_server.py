"""Serve a video file as a live HTTP MJPEG stream (``multipart/x-mixed-replace``), for trying
``paddleface detect http://...`` without a camera, and for the tests.

    python -m paddleface.video.mjpeg_server clip.mp4 --port 8090 [--fps 10] [--loop]

The stream is live: its clock starts when the first client connects; a client that connects
at second t of that clock gets the frame of second t (plus ``--start-frame``), then one frame
per 1/fps s. At the end of
the video the connection closes (``--loop``: starts over). Prints ``serving URL`` once ready.
"""
from __future__ import annotations

import argparse
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

BOUNDARY = "paddleface-frame"


def load_jpegs(path: str, quality: int = 90):
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
                      .tobytes())
    cap.release()
    return frames, fps


def make_handler(frames, fps: float, start_frame: int, loop: bool):
    clock = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            last = -1
            t0 = clock.setdefault("t0", time.monotonic())
            try:
                while True:
                    i = start_frame + int((time.monotonic() - t0) * fps)
                    if i >= len(frames):
                        if not loop:
                            return
                        i %= len(frames)
                    if i != last:
                        data = frames[i]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(data)}\r\n\r\n".encode())
                        self.wfile.write(data + b"\r\n")
                        self.wfile.flush()
                        last = i
                    next_t = t0 + (i - start_frame + 1) / fps
                    time.sleep(max(0.0, min(next_t - time.monotonic(), 1.0 / fps)))
            except (BrokenPipeError, ConnectionResetError):
                return
    return Handler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--port", type=int, default=8090, help="0: any free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--fps", type=float, default=None, help="default: the video's")
    p.add_argument("--start-frame", type=int, default=0)
    p.add_argument("--loop", action="store_true")
    args = p.parse_args(argv)
    frames, fps = load_jpegs(args.video)
    if not frames:
        print(f"error: {args.video}: not a readable video", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((args.host, args.port),
                                 make_handler(frames, args.fps or fps, args.start_frame,
                                              args.loop))
    server.daemon_threads = True
    print(f"serving http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
