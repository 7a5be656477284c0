"""Malformed requests against a running ``paddleface serve``, generated with Hypothesis.

Every request is written byte by byte on its own socket (``Connection: close``), so bodies
can be cut short, headers made huge and bodies sent slowly, which an HTTP client library
would not allow. Hypothesis draws the malformations (``@given`` with a fixed seed and no
example database, so a run is repeatable); each outcome is one of:

- ``"2xx"``, ``"4xx"``, ``"5xx"``: the status class of the response;
- ``"closed"``: the server closed the connection without a response (a body shorter than
  its ``Content-Length`` whose client stopped sending: nobody is left to answer);
- ``"hang"``: no response within ``timeout`` seconds.

A 5xx or a hang fails the Hypothesis property, which then shrinks it to a minimal request
and raises. ``bench/serve_fuzz.py`` runs thousands; ``tests/test_serve_fuzz.py`` a short run.
"""
from __future__ import annotations

import base64
import collections
import io
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

BAD = ("5xx", "hang")
HUB = "/predict/ultra_light_fast_generic_face_detector_1mb_320"
CONTENT_TYPES = ["image/jpeg", "image/png", "application/json", "multipart/form-data",
                 "multipart/form-data; boundary=", "text/plain", "application/octet-stream",
                 "application/x-www-form-urlencoded", "", "image/*", "multipart/mixed; boundary=x",
                 "application/json; charset=utf-16", "IMAGE/JPEG", "\x00\xff", "a" * 5000]


def seed_images(photo_bgr: np.ndarray) -> Dict[str, bytes]:
    """The photo encoded as JPEG, PNG, GIF and WebP (the mutation seeds)."""
    import cv2
    from PIL import Image
    small = cv2.resize(photo_bgr, (160, 120))
    out = {fmt: cv2.imencode(f".{fmt}", small)[1].tobytes() for fmt in ("jpg", "png", "webp")}
    buf = io.BytesIO()
    Image.fromarray(small[:, :, ::-1]).save(buf, format="GIF")
    out["gif"] = buf.getvalue()
    return out


def mutate(data: bytes, ops) -> bytes:
    """Apply ``ops`` = [(kind, position, payload)]: flip, insert, delete, overwrite, cut,
    duplicate a span; positions wrap around the data."""
    b = bytearray(data)
    for kind, pos, payload in ops:
        if not b:
            break
        i = pos % len(b)
        if kind == "flip":
            b[i] ^= 1 << (pos % 8)
        elif kind == "insert":
            b[i:i] = payload
        elif kind == "delete":
            del b[i:i + 1 + len(payload)]
        elif kind == "overwrite":
            b[i:i + len(payload)] = payload
        elif kind == "cut":
            del b[i:]
        elif kind == "duplicate":
            b[i:i] = b[i:i + 64]
    return bytes(b)


def multipart(body: bytes, boundary: str = "fuzzboundary", field_name: str = "image",
              filename: str = "x.jpg") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + body + \
        f"\r\n--{boundary}--\r\n".encode()


@dataclass
class Request:
    """A raw request: ``send`` bytes of body (``length`` declared, default the real one)."""

    path: str
    body: bytes
    content_type: Optional[str]
    length: Optional[int] = None
    extra_headers: List[str] = field(default_factory=list)
    chunk: int = 0  # > 0: send the body this many bytes at a time ...
    delay: float = 0.0  # ... with this pause between pieces
    kind: str = ""  # which malformation (for the per-kind counts)

    def head(self, port: int) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        lines.append(f"Content-Length: {len(self.body) if self.length is None else self.length}")
        lines += self.extra_headers
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def send(port: int, req: Request, timeout: float) -> str:
    """Send ``req`` and classify the answer (see the module doc)."""
    deadline = time.time() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(req.head(port))
            if req.chunk:
                for k in range(0, len(req.body), req.chunk):
                    s.sendall(req.body[k:k + req.chunk])
                    time.sleep(req.delay)
            else:
                s.sendall(req.body)
            if req.length is not None and req.length > len(req.body):
                # a body shorter than its Content-Length: the client stops sending (EOF).
                # Only here: uvicorn takes a half-close as a disconnect and drops the answer
                s.shutdown(socket.SHUT_WR)
        except socket.timeout:
            return "hang"
        except OSError:
            pass  # the server answered (and closed) before reading all of it
        data = b""
        try:
            while b"\r\n" not in data:
                s.settimeout(max(deadline - time.time(), 0.01))
                piece = s.recv(4096)
                if not piece:
                    break
                data += piece
        except socket.timeout:
            return "hang"
        except OSError:
            pass  # reset: whatever arrived before it is classified below
    if not data.startswith(b"HTTP/1."):
        return "closed"
    try:
        status = int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return "closed"
    return f"{status // 100}xx"


def request_strategy(seeds: Dict[str, bytes], slow: bool = True):
    """A Hypothesis strategy of malformed :class:`Request` s (every kind in the module doc)."""
    from hypothesis import strategies as st

    ops = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "overwrite", "cut",
                                               "duplicate"]),
                             st.integers(0, 1 << 20), st.binary(min_size=1, max_size=24)),
                   min_size=1, max_size=6)
    mutated = st.builds(mutate, st.sampled_from(sorted(seeds.values())), ops)
    path = st.sampled_from(["/detect", "/detect?long_side=origin", "/detect?threshold=0.5",
                            "/detect?model=ulfd-rfb-320", HUB])
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=12)
    bad_b64 = st.text(max_size=200) | st.builds(
        lambda b, cut: base64.b64encode(b).decode()[:cut] + "=*", mutated, st.integers(0, 400))

    raw = st.builds(lambda p, b, ct: Request(p, b, ct), path, mutated,
                    st.sampled_from(["image/jpeg", "image/png", "application/octet-stream"]))
    multipart_ok = st.builds(lambda p, b: Request(p, multipart(b),
                                                  "multipart/form-data; boundary=fuzzboundary"),
                             path, mutated)
    multipart_cut = st.builds(
        lambda p, b, cut, lie: Request(p, multipart(b)[:cut],
                                       "multipart/form-data; boundary=fuzzboundary",
                                       length=(len(multipart(b)) if lie else None)),
        path, st.sampled_from(sorted(seeds.values())), st.integers(0, 4000), st.booleans())
    wrong_type = st.builds(lambda p, b, ct: Request(p, b, ct), path,
                           mutated | st.binary(max_size=300), st.sampled_from(CONTENT_TYPES))
    as_json = st.builds(lambda p, v: Request(p, json.dumps({"images": v}).encode(),
                                             "application/json"),
                        path, st.lists(bad_b64, min_size=0, max_size=3))
    json_junk = st.builds(lambda p, v, cut: Request(p, json.dumps(v).encode()[:cut],
                                                    "application/json"),
                          path, json_values, st.integers(0, 500))
    deep = st.builds(lambda p, n: Request(p, b"[" * n + b"]" * n, "application/json"),
                     path, st.integers(1000, 200000))
    huge_header = st.builds(
        lambda p, n, many: Request(p, seeds["jpg"], "image/jpeg",
                                   extra_headers=([f"X-Fuzz-{k}: {'a' * 64}" for k in range(n // 64)]
                                                  if many else [f"X-Fuzz: {'a' * n}"])),
        path, st.integers(8000, 200000), st.booleans())
    kinds = {"mutated image": raw, "multipart": multipart_ok, "multipart cut": multipart_cut,
             "content type": wrong_type, "base64": as_json, "json": json_junk,
             "deep json": deep, "huge header": huge_header}
    if slow:
        kinds["slow body"] = st.builds(
            lambda p, b: Request(p, b, "image/jpeg", chunk=max(len(b) // 8, 1), delay=0.05),
            path, mutated)

    def tagged(name, strategy):
        return strategy.map(lambda r: Request(**{**r.__dict__, "kind": name}))
    return st.one_of(*(tagged(k, v) for k, v in kinds.items()))


def run_fuzz(port: int, seeds: Dict[str, bytes], examples: int, timeout: float = 30.0,
             seed: int = 0, on_request: Optional[Callable[[int], None]] = None,
             slow: bool = True, by_kind: Optional[collections.Counter] = None
             ) -> collections.Counter:
    """Send ``examples`` Hypothesis-drawn malformed requests; return the outcome counts
    (and add ``(kind, outcome)`` counts to ``by_kind``). Raises (after Hypothesis shrinks
    it) on the first 5xx or hang."""
    from hypothesis import HealthCheck, Phase, given, seed as hyp_seed, settings

    import warnings

    from hypothesis.errors import HypothesisWarning
    warnings.filterwarnings("ignore", category=HypothesisWarning)  # reprs of large bodies
    counts: collections.Counter = collections.Counter()

    @hyp_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(request_strategy(seeds, slow=slow))
    def property_no_5xx_no_hang(req):
        outcome = send(port, req, timeout)
        counts[outcome] += 1
        if by_kind is not None:
            by_kind[req.kind, outcome] += 1
        if on_request:
            on_request(sum(counts.values()))
        assert outcome not in BAD, (outcome, req.path, req.content_type, req.length,
                                    len(req.body), req.body[:80])

    property_no_5xx_no_hang()
    return counts
