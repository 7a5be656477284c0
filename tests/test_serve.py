"""``paddleface serve`` as a real process on 127.0.0.1: the API, PaddleHub compatibility, bad
input, concurrent requests, the page in headless Chromium, and a short load run."""
import base64
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

requests = pytest.importorskip("requests")
pytest.importorskip("fastapi")

from paddleface.box_coder import decode_boxes  # noqa: E402
from paddleface.registry import REGISTRY  # noqa: E402
from paddleface.serve.inputs import image_dimensions  # noqa: E402
from paddleface.serve.process import ServiceProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "output" / "test-artifacts"
MAX_BODY_MB = 4
MAX_MEGAPIXELS = 4
HUB_640 = "ultra_light_fast_generic_face_detector_1mb_640"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service for the module: rfb-lm by default, ulfd-rfb-320 preloaded, ulfd-rfb-640
    loaded on first use; small body and pixel limits so the limits are cheap to reach."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    svc = ServiceProcess(["--model", "rfb-lm", "--preload", "ulfd-rfb-320",
                          "--max-body-mb", str(MAX_BODY_MB),
                          "--max-megapixels", str(MAX_MEGAPIXELS), "--no-access-log"], log=log)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def photos(shared):
    return {name: (shared / "images" / name).read_bytes() for name in
            ("crowd.jpg", "2.jpg", "13.jpg", "retinaface_test.jpg")}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post_raw(svc, data: bytes, **params):
    return requests.post(f"{svc.url}/detect", params=params, data=data,
                         headers={"Content-Type": "image/jpeg"}, timeout=120)


def expected_faces(detector, data: bytes):
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return [f.to_dict() for f in detector.detect(image)]


def assert_one_sentence_error(r, status, key="error"):
    assert r.status_code == status, (r.status_code, r.text)
    msg = r.json()[key]
    assert isinstance(msg, str) and msg.endswith(".") and "\n" not in msg and len(msg) < 240, msg
    return msg


# ------------------------------------------------------------------------------------ the API
def test_detect_body_forms_agree_with_in_process(service, photos, get_detector):
    data = photos["crowd.jpg"]
    multipart = requests.post(f"{service.url}/detect",
                              files={"image": ("crowd.jpg", data, "image/jpeg")}, timeout=120)
    raw = post_raw(service, data)
    as_json = requests.post(f"{service.url}/detect", json={"images": [b64(data)]}, timeout=120)
    bodies = [r.json() for r in (multipart, raw, as_json)]
    assert [r.status_code for r in (multipart, raw, as_json)] == [200, 200, 200]
    want = expected_faces(get_detector("rfb-lm"), data)
    assert len(want) > 10
    h, w = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    for body in bodies:
        assert body["model"] == "rfb-lm" and body["threshold"] == 0.6 and body["long_side"] == 640
        (image,) = body["images"]
        assert (image["width"], image["height"]) == (w, h)
        assert image["faces"] == want
        assert all(len(f["landmarks"]) == 5 for f in image["faces"])
        assert image["detect_ms"] > 0 and body["total_ms"] >= image["detect_ms"]


def test_several_images_and_per_request_options(service, photos):
    data = [photos["crowd.jpg"], photos["2.jpg"]]
    both = requests.post(f"{service.url}/detect",
                         json={"images": [b64(d) for d in data], "model": "ulfd-rfb-320"}).json()
    singles = [post_raw(service, d, model="ulfd-rfb-320").json()["images"][0]["faces"] for d in data]
    assert [im["faces"] for im in both["images"]] == singles
    assert both["long_side"] is None and all("landmarks" not in f for f in singles[0])

    default = post_raw(service, data[0]).json()["images"][0]["faces"]
    strict = post_raw(service, data[0], threshold=0.95).json()
    assert strict["threshold"] == 0.95
    strict_faces = strict["images"][0]["faces"]
    assert 0 < len(strict_faces) < len(default)
    assert strict_faces == [f for f in default if f["score"] >= 0.95]
    small = post_raw(service, data[0], long_side=320).json()
    assert small["long_side"] == 320 and small["images"][0]["faces"] != default


def test_long_side_matches_face_detector_argument(service, photos):
    from paddleface.detector import FaceDetector
    det = FaceDetector("rfb-lm", device="cpu", long_side=320, score_threshold=0.5)
    got = post_raw(service, photos["crowd.jpg"], long_side=320, threshold=0.5).json()
    assert got["images"][0]["faces"] == expected_faces(det, photos["crowd.jpg"])


def test_models_healthz_docs_page(service):
    models = requests.get(f"{service.url}/models").json()
    by_id = {m["id"]: m for m in models["models"]}
    assert set(by_id) == set(REGISTRY) and models["default"] == "rfb-lm"
    assert by_id["rfb-lm"]["loaded"] and by_id["ulfd-rfb-320"]["loaded"]
    assert not by_id["lwfd-mnv2-0.1"]["servable"]
    assert by_id["ulfd-rfb-640"]["hub_modules"] == [HUB_640]
    health = requests.get(f"{service.url}/healthz").json()
    assert health["status"] == "ok" and health["pid"] == service.proc.pid
    spec = requests.get(f"{service.url}/openapi.json").json()
    assert {"/detect", "/predict/{module_name}", "/models", "/healthz"} <= set(spec["paths"])
    assert set(spec["paths"]["/detect"]["post"]["requestBody"]["content"]) == {
        "multipart/form-data", "application/json", "image/*"}
    assert "swagger" in requests.get(f"{service.url}/docs").text.lower()
    page = requests.get(f"{service.url}/")
    assert page.status_code == 200 and 'id="canvas"' in page.text


# ------------------------------------------------------------------------------- PaddleHub
def box_area(boxes):
    return (np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
            * np.clip(boxes[..., 3] - boxes[..., 1], 0, None))


def paddlehub_postprocess(conf, boxes, width, height, confs_threshold, iou_threshold):
    """PaddleHub's ULFD module post-processing, written from its processor.py: faces with
    probability > confs_threshold, the 200 most probable, greedy NMS (IoU with 1e-5 in the
    denominator, boxes with IoU <= iou_threshold survive), boxes scaled to the image."""
    probs = conf[:, 1]
    mask = probs > confs_threshold
    cand = np.concatenate([boxes[mask], probs[mask, None]], axis=1)
    order = list(np.argsort(cand[:, 4])[-200:])
    picked = []
    while order:
        best = order.pop()
        picked.append(best)
        if not order:
            break
        rest = cand[order, :4]
        lt = np.maximum(rest[:, :2], cand[best, :2])
        rb = np.minimum(rest[:, 2:], cand[best, 2:4])
        inter = np.clip(rb - lt, 0, None).prod(axis=1)
        iou = inter / (box_area(rest) + box_area(cand[best, :4]) - inter + 1e-5)
        order = [i for i, v in zip(order, iou) if v <= iou_threshold]
    out = cand[picked]
    out[:, [0, 2]] *= width
    out[:, [1, 3]] *= height
    return [{"left": float(b[0]), "right": float(b[2]), "top": float(b[1]), "bottom": float(b[3]),
             "confidence": float(b[4])} for b in out]


def test_paddlehub_client_request_and_response(service, photos, get_detector):
    """The request the PaddleHub module's README sends, and its response shape and values."""
    images = [photos["crowd.jpg"], photos["13.jpg"]]
    r = requests.post(f"{service.url}/predict/{HUB_640}",
                      headers={"Content-type": "application/json"},
                      data=json.dumps({"images": [b64(d) for d in images]}), timeout=300)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "msg", "results"} and body["status"] == "000" and body["msg"] == ""
    assert len(body["results"]) == 2
    det = get_detector("ulfd-rfb-640")
    for data, result in zip(images, body["results"]):
        assert set(result) == {"data"}
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        prepared = det.prepare(image)
        loc, conf, _ = det.forward(prepared.tensor[None])
        h, w = prepared.tensor.shape[1:]
        boxes = decode_boxes(loc[0], det.record.priors(h, w), det.record.priors.variances)
        want = paddlehub_postprocess(conf[0], boxes, image.shape[1], image.shape[0], 0.5, 0.5)
        assert len(result["data"]) == len(want) > 0
        for got, ref in zip(result["data"], want):
            assert set(got) == {"left", "right", "top", "bottom", "confidence"}
            assert got == pytest.approx(ref, abs=1e-3)
    strict = requests.post(f"{service.url}/predict/{HUB_640}", json={
        "images": [b64(images[0])], "confs_threshold": 0.9, "iou_threshold": 0.3,
        "visualization": False}).json()
    assert 0 < len(strict["results"][0]["data"]) < len(body["results"][0]["data"])
    assert min(f["confidence"] for f in strict["results"][0]["data"]) > 0.9


# ------------------------------------------------------------------------------- bad input
def big_png(width, height) -> bytes:
    ok, buf = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    return buf.tobytes()


def bad_requests(photos):
    """(name, path, requests.post keyword arguments, expected status, JSON key of the
    sentence) of one bad request each."""
    crowd = photos["crowd.jpg"]
    jpeg, as_json = {"Content-Type": "image/jpeg"}, {"Content-Type": "application/json"}
    over_body = b"\xff" * int((MAX_BODY_MB + 1) * (1 << 20))

    def chunks():  # a chunked body with no Content-Length: the limit must apply while streaming
        for _ in range(MAX_BODY_MB + 1):
            yield b"\xff" * (1 << 20)

    hub = f"/predict/{HUB_640}"
    return [
        ("text upload", "/detect",
         {"files": {"image": ("notes.txt", b"not an image at all", "text/plain")}}, 400, "error"),
        ("truncated jpeg", "/detect", {"data": crowd[:200], "headers": jpeg}, 400, "error"),
        ("empty body", "/detect", {}, 400, "error"),
        ("empty upload", "/detect", {"files": {"image": ("x.jpg", b"", "image/jpeg")}}, 400, "error"),
        ("multipart without image", "/detect",
         {"files": {"photo": ("x.jpg", crowd, "image/jpeg")}}, 400, "error"),
        ("malformed json", "/detect", {"data": b'{"images": [', "headers": as_json}, 400, "error"),
        ("json without images", "/detect", {"json": {"image": "x"}}, 400, "error"),
        ("bad base64", "/detect", {"json": {"images": ["%%%"]}}, 400, "error"),
        ("threshold out of range", "/detect", {"params": {"threshold": 2}, "data": crowd},
         400, "error"),
        ("unknown model", "/detect", {"params": {"model": "yolo"}, "data": crowd}, 404, "error"),
        ("model without weights", "/detect",
         {"params": {"model": "lwfd-mnv2-0.1"}, "data": crowd}, 404, "error"),
        ("unknown hub module", "/predict/pyramidbox_lite_mobile",
         {"json": {"images": [b64(crowd)]}}, 404, "msg"),
        ("hub malformed json", hub, {"data": b"{", "headers": as_json}, 400, "msg"),
        ("body over the limit", "/detect", {"data": over_body, "headers": jpeg}, 413, "error"),
        ("chunked body over the limit", "/detect", {"data": chunks(), "headers": jpeg},
         413, "error"),
        ("image over the pixel limit", "/detect",
         {"data": big_png(2600, 2000), "headers": {"Content-Type": "image/png"}}, 413, "error"),
        ("hub image over the pixel limit", hub,
         {"json": {"images": [b64(big_png(2600, 2000))]}}, 413, "msg"),
    ]


def test_bad_input_gets_a_sentence_and_the_next_request_works(service, photos):
    good = post_raw(service, photos["2.jpg"]).json()
    for name, path, kwargs, status, key in bad_requests(photos):
        try:
            r = requests.post(service.url + path, timeout=120, **kwargs)
        except requests.ConnectionError as e:
            pytest.fail(f"{name}: the service dropped the connection ({e})")
        msg = assert_one_sentence_error(r, status, key)
        if "pixel" in name:
            assert "2600x2000" in msg and "megapixels" in msg
        again = post_raw(service, photos["2.jpg"])
        assert again.status_code == 200, name
        assert again.json()["images"][0]["faces"] == good["images"][0]["faces"], name
    assert service.proc.poll() is None


def test_image_dimensions_from_headers(photos):
    for ext in (".png", ".jpg", ".bmp", ".webp"):
        ok, buf = cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8))
        assert image_dimensions(buf.tobytes()) == (53, 37), ext
    ok, buf = cv2.imencode(".webp", np.zeros((37, 53, 3), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert image_dimensions(buf.tobytes()) == (53, 37)  # lossless WebP (VP8L)
    h, w = cv2.imdecode(np.frombuffer(photos["crowd.jpg"], np.uint8), cv2.IMREAD_COLOR).shape[:2]
    assert image_dimensions(photos["crowd.jpg"]) == (w, h)
    assert image_dimensions(b"GIF89a\x10\x00\x20\x00") == (16, 32)
    assert image_dimensions(b"hello world, not an image") is None


# ------------------------------------------------------------------------------- concurrency
def test_concurrent_requests_get_their_own_results(service, photos):
    """8 threads, two models and four photos interleaved: every answer equals the answer to
    the same request sent alone (a shared predictor run by two threads at once mixes up
    inputs and outputs)."""
    cases = [(name, model) for name in photos for model in ("rfb-lm", "ulfd-rfb-320")]
    alone = {c: post_raw(service, photos[c[0]], model=c[1]).json()["images"][0]["faces"]
             for c in cases}
    assert len({json.dumps(v) for v in alone.values()}) == len(cases)
    failures = []

    def client(k):
        session = requests.Session()
        for i in range(6):
            name, model = cases[(k + i) % len(cases)]
            r = session.post(f"{service.url}/detect", params={"model": model},
                             data=photos[name], headers={"Content-Type": "image/jpeg"})
            if r.status_code != 200 or r.json()["images"][0]["faces"] != alone[name, model]:
                failures.append((name, model, r.status_code))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_workers_each_load_the_model(tmp_path, photos):
    """--workers 2: two processes, each with its own detector, both answering."""
    with ServiceProcess(["--model", "ulfd-rfb-320", "--workers", "2", "--threads", "1",
                         "--no-access-log"], log=tmp_path / "serve.log") as svc:
        pids, deadline = set(), time.time() + 120
        while len(pids) < 2 and time.time() < deadline:
            health = requests.get(f"{svc.url}/healthz", timeout=10).json()
            assert health["loaded"] == ["ulfd-rfb-320"]
            pids.add(health["pid"])
        assert len(pids) == 2 and svc.proc.pid not in pids
        r = post_raw(svc, photos["2.jpg"])
        assert r.status_code == 200 and r.json()["model"] == "ulfd-rfb-320"


def test_short_load_run(tmp_path):
    """bench/serve_load.py for a few seconds: no errors, no wrong answers, flat memory."""
    out = tmp_path / "load.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "serve_load.py"), "--models",
                        "ulfd-rfb-320", "--clients", "4", "--seconds", "3", "--warmup", "2",
                        "--json", str(out), "--log-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = json.loads(out.read_text())
    print(r.stdout)
    assert row["errors"] == 0 and row["mismatches"] == 0 and row["healthy_after"]
    assert row["requests"] >= 20
    # a leak of one decoded 1600x898 photo per request would add ~4 MB per request here
    assert row["rss_end_mb"] - row["rss_start_mb"] < 32


# ------------------------------------------------------------------------------- the page
def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_page_in_headless_chromium(service, shared):
    """Upload crowd.jpg on the page, wait for the drawing: the boxes drawn number the faces
    the API returned, each box's edge is drawn on the canvas; a screenshot is kept."""
    if chromium_path() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); "
                    "Playwright's own browser download does not work here")
    sync_api = pytest.importorskip("playwright.sync_api")
    crowd = shared / "images" / "crowd.jpg"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "serve-page-crowd.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(service.url + "/")
            page.wait_for_function("document.querySelectorAll('#model option').length > 0")
            assert page.input_value("#model") == "rfb-lm"
            with page.expect_response(lambda r: "/detect" in r.url) as response_info:
                page.set_input_files("#file", str(crowd))
            api = response_info.value.json()
            page.wait_for_selector("body[data-state=done]", timeout=60_000)
            drawn = int(page.get_attribute("#canvas", "data-faces"))
            faces = api["images"][0]["faces"]
            assert drawn == len(faces) > 10
            assert page.locator("#faces tr").count() == len(faces) + 1
            assert page.inner_text("#status").startswith(f"{len(faces)} faces")
            # the middle of each box's left edge carries the box colour on the canvas
            green = page.evaluate("""(faces) => {
                const ctx = document.getElementById('canvas').getContext('2d');
                return faces.filter((f) => {
                    const [x1, y1, x2, y2] = f.box;
                    const p = ctx.getImageData(Math.round(x1), Math.round((y1 + y2) / 2), 1, 1).data;
                    return p[1] > 180 && p[0] < 90 && p[2] < 90;
                }).length;
            }""", faces)
            assert green == len(faces)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
