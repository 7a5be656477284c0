"""`paddleface export --format web`: the browser detector against `paddleface detect`.

One headless Chromium (Debian's, driven by Playwright) opens the exported folders, served on
127.0.0.1 with cross-origin isolation, and detects in the 26 shared photos with three
families: ulfd-rfb-320 (fixed size), rfb-lm at long side 640, blazeface-320 (letterbox). Each
photo runs twice in the page: decoded by Chromium, and as ImageData of OpenCV's decoded pixels
(what separates the JPEG decoders' difference from the detector's).
"""
import json
import shutil
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddleface.registry import get_record

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "output" / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "img" / "web-page.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# id -> long side given to both detectors (None: the model has a fixed / letterboxed size)
MODELS = {"ulfd-rfb-320": None, "rfb-lm": 640, "blazeface-320": None}
NEAR_THRESHOLD = 0.02  # faces whose Python score is this close to the threshold may differ
MAX_PIXEL_DIFF = 1.0
MAX_SCORE_DIFF = 2e-3
VIEWPORT = {"width": 1280, "height": 900}


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory, shared):
    """The three web exports, OpenCV's decoded pixels of every photo, a server for both."""
    if chromium_path() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); "
                    "Playwright's own browser download does not work here")
    pytest.importorskip("playwright.sync_api")
    from paddleface.export import export_model
    from paddleface.web.static_server import start
    root = tmp_path_factory.mktemp("web")
    for model_id in MODELS:
        export_model(get_record(model_id), "web", root / model_id)
    decoded = root / "decoded"
    decoded.mkdir()
    photos = sorted(p.name for p in (shared / "images").glob("*.jpg"))
    assert len(photos) == 26
    for name in photos:  # as paddleface.image_io reads them, then RGBA for an ImageData
        bgr = cv2.imdecode(np.fromfile(shared / "images" / name, np.uint8), cv2.IMREAD_UNCHANGED)
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA).tofile(decoded / f"{name}.rgba")
    server, url = start(root, isolated=True, mounts={"/photos": shared / "images"})
    yield {"root": root, "url": url, "photos": photos, "shared": shared}
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), headless=True,
                               args=CHROMIUM_FLAGS + ["--use-fake-device-for-media-stream"])
        yield b
        b.close()


def open_page(browser, site, model_id, context=None):
    page = context.new_page() if context else browser.new_page(viewport=VIEWPORT)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site['url']}/{model_id}/index.html")
    page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
    assert page.evaluate("crossOriginIsolated") is True
    assert not errors, errors
    return page


IN_PAGE = """async ({photos, longSide}) => {
  const m = await import('./detector.mjs');
  const out = [];
  for (const name of photos) {
    const url = '/photos/' + name;
    const chromium = await window.paddleface.detect(url, {longSide});
    const px = await m.readPixels(url);
    const cv = new Uint8ClampedArray(await (await fetch('../decoded/' + name + '.rgba')).arrayBuffer());
    let max = 0, sum = 0, differing = 0;
    for (let i = 0; i < cv.length; i++) {
      if ((i & 3) === 3) continue;
      const d = Math.abs(cv[i] - px.rgba[i]);
      if (d) { differing++; sum += d; if (d > max) max = d; }
    }
    const values = cv.length / 4 * 3;
    const opencv = await window.paddleface.detect(new ImageData(cv, px.width, px.height), {longSide});
    out.push({name, chromium, opencv, decode: {max, mean: sum / values, differing: differing / values}});
  }
  return out;
}"""


def match_faces(ours, ref, threshold):
    """Pairs (ref face, our face) by best IoU, and the faces of either side clear of the
    threshold by NEAR_THRESHOLD that found no partner."""
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0
    pairs, free = [], list(range(len(ours)))
    unmatched = []
    for r in ref:
        best = max(free, key=lambda k: iou(r["box"], ours[k]["box"]), default=None)
        if best is not None and iou(r["box"], ours[best]["box"]) > 0.5:
            pairs.append((r, ours[best]))
            free.remove(best)
        elif r["score"] >= threshold + NEAR_THRESHOLD:
            unmatched.append(("python only", r))
    unmatched += [("browser only", ours[k]) for k in free
                  if ours[k]["score"] >= threshold + NEAR_THRESHOLD]
    return pairs, unmatched


def differences(pairs):
    box = max((abs(a - b) for r, o in pairs for a, b in zip(r["box"], o["box"])), default=0.0)
    lm = max((abs(a - b) for r, o in pairs if "landmarks" in r
              for p, q in zip(r["landmarks"], o["landmarks"]) for a, b in zip(p, q)), default=0.0)
    score = max((abs(r["score"] - o["score"]) for r, o in pairs), default=0.0)
    return box, lm, score


def test_browser_detections_equal_python(site, browser, get_detector):
    """Same faces above the threshold (except within 0.02 of it), boxes and landmarks within
    1 px, scores within 2e-3, for the photos as Chromium decodes them and as OpenCV does."""
    from paddleface.detector import FaceDetector
    report, problems = {}, []
    for model_id, long_side in MODELS.items():
        det = FaceDetector(model_id, device="cpu", engine="onnxruntime", threads=1,
                           long_side=long_side if long_side else -1)
        threshold = det.protocol.final_threshold
        page = open_page(browser, site, model_id)
        rows = page.evaluate(IN_PAGE, {"photos": site["photos"], "longSide": long_side})
        page.close()
        worst = {k: {"box": 0.0, "landmarks": 0.0, "score": 0.0, "unmatched": 0, "faces": 0}
                 for k in ("chromium", "opencv")}
        for row in rows:
            ref = [f.to_dict() for f in det.detect(site["shared"] / "images" / row["name"])]
            for decoder in ("chromium", "opencv"):
                got = row[decoder]
                assert (got["width"], got["height"]) == tuple(
                    cv2.imread(str(site["shared"] / "images" / row["name"])).shape[1::-1])
                pairs, unmatched = match_faces(got["faces"], ref, threshold)
                box, lm, score = differences(pairs)
                w = worst[decoder]
                w["box"], w["landmarks"], w["score"] = (max(w["box"], box), max(w["landmarks"], lm),
                                                         max(w["score"], score))
                w["unmatched"] += len(unmatched)
                w["faces"] += len(ref)
                if unmatched or box > MAX_PIXEL_DIFF or lm > MAX_PIXEL_DIFF or score > MAX_SCORE_DIFF:
                    problems.append(f"{model_id} {row['name']} ({decoder} decode): box {box:.3f} px, "
                                    f"landmarks {lm:.3f} px, score {score:.2e}, unmatched {unmatched}")
        decode = [r["decode"] for r in rows]
        report[model_id] = dict(worst, decode_max=max(d["max"] for d in decode),
                                decode_mean=float(np.mean([d["mean"] for d in decode])),
                                decode_differing=float(np.mean([d["differing"] for d in decode])))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "web-equality.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    assert not problems, "\n".join(problems)


def big_png(width: int, height: int) -> bytes:
    """A real grayscale PNG of width x height (black), compressed row by row in little memory."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    z, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(z.compress(row))
    parts.append(z.flush())
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


def test_page_bad_input_camera_and_screenshot(site, browser, tmp_path):
    """A non-image, a 1x1 image, a 12000x12000 image and a denied camera each get a message and
    the page goes on detecting; camera frames are detected; the screenshot for the docs."""
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not a picture")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    huge = tmp_path / "huge.png"
    huge.write_bytes(big_png(12000, 12000))
    crowd = site["shared"] / "images" / "crowd.jpg"

    context = browser.new_context(viewport=VIEWPORT)  # no camera permission granted: getUserMedia is denied
    page = open_page(browser, site, "rfb-lm", context)
    messages = {}
    for path in (not_image, tiny, huge):
        page.set_input_files("#file", str(path))
        page.wait_for_function("document.body.dataset.state === 'error'")
        messages[path.name] = page.inner_text("#status")
        page.set_input_files("#file", str(crowd))  # the page keeps working
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        assert int(page.get_attribute("#canvas", "data-faces")) > 10
    page.click("#camera")
    page.wait_for_function("document.body.dataset.state === 'error'")
    messages["camera"] = page.inner_text("#status")
    page.set_input_files("#file", str(crowd))
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    print(json.dumps(messages, indent=1))
    assert "not an image" in messages["notes.jpg"]
    assert "1x1" in messages["tiny.png"] and "too small" in messages["tiny.png"]
    assert "12000x12000" in messages["huge.png"] and "limit" in messages["huge.png"]
    assert "camera is not available" in messages["camera"]
    # the screenshot of the docs: a photo with its faces and landmarks drawn, made small
    page.set_input_files("#file", str(site["shared"] / "images" / "retinaface_test.jpg"))
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    shot = cv2.resize(shot, (shot.shape[1] * 3 // 4, shot.shape[0] * 3 // 4),
                      interpolation=cv2.INTER_AREA)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(SCREENSHOT), shot, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    context.close()

    context = browser.new_context(viewport=VIEWPORT, permissions=["camera"])  # Chromium's fake camera
    page = open_page(browser, site, "ulfd-rfb-320", context)
    page.click("#camera")
    page.wait_for_function("Number(document.getElementById('canvas').dataset.frames || 0) >= 3",
                           timeout=60_000)
    assert page.inner_text("#status").startswith(("0 faces", "1 face")) or "camera frame" in \
        page.inner_text("#status")
    page.click("#stop")
    page.set_input_files("#file", str(crowd))
    page.wait_for_selector("body[data-state=done]", timeout=60_000)
    context.close()


RESIZE_CHECK = """
import {resizeLinear} from %s;
import fs from 'fs';
const cases = JSON.parse(fs.readFileSync(process.argv[2]));
const out = cases.map((c) => {
  const buf = fs.readFileSync(c.src);
  const T = c.dtype === 'float32' && !c.rgba ? Float32Array : Uint8Array;
  const src = T.from(new T(buf.buffer, buf.byteOffset, buf.byteLength / T.BYTES_PER_ELEMENT));
  let img = {width: c.w, height: c.h, data: src};
  if (c.rgba) {  // a canvas's pixels: RGBA, resized straight to RGB
    const rgba = new Uint8ClampedArray(c.w * c.h * 4);
    for (let i = 0, j = 0; i < src.length; i += 3, j += 4) {
      rgba[j] = src[i + 2]; rgba[j + 1] = src[i + 1]; rgba[j + 2] = src[i]; rgba[j + 3] = 200;
    }
    img = {width: c.w, height: c.h, data: rgba, layout: 'RGBA'};
  }
  const r = resizeLinear(img, c.dw, c.dh, c.inv[0], c.inv[1], c.dtype === 'float32');
  let data = r.data;
  if (c.rgba) {  // back to BGR for the comparison
    data = new r.data.constructor(r.data.length);
    for (let i = 0; i < data.length; i += 3) { data[i] = r.data[i + 2]; data[i + 1] = r.data[i + 1]; data[i + 2] = r.data[i]; }
  }
  fs.writeFileSync(c.dst, Buffer.from(data.buffer));
  return [r.width, r.height, r.layout];
});
console.log(JSON.stringify(out));
"""


def test_js_resize_is_opencv_inter_linear(tmp_path):
    """detector.mjs's resize against cv2.resize(INTER_LINEAR): uint8 identical (sizes by
    dsize and by fx/fy, downscale, upscale, exactly half, widths that are no multiple of 16),
    float32 within one float32 step of 255; from BGR and from a canvas's RGBA pixels."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    rng = np.random.default_rng(0)
    cases, refs = [], []
    for k, (w, h, dw, dh, by_factor) in enumerate([
            (1600, 898, 320, 240, False), (1600, 898, 640, 359, True), (333, 517, 320, 240, False),
            (640, 480, 320, 240, False), (50, 37, 320, 240, False), (901, 1203, 479, 640, True),
            (417, 333, 101, 77, False), (417, 333, 5, 77, False), (1000, 3, 640, 2, True)]):
        img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
        for dtype, rgba in (("uint8", False), ("float32", False), ("uint8", True),
                            ("float32", True)):
            src = img.astype(dtype)
            if by_factor:
                r = max(dw, dh) / max(w, h)
                ref, inv = cv2.resize(src, None, fx=r, fy=r, interpolation=cv2.INTER_LINEAR), (r, r)
            else:
                ref, inv = cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR), (dw / w, dh / h)
            name = f"{k}{dtype}{'rgba' if rgba else ''}"
            # RGBA cases: the uint8 pixels of a canvas, resized as uint8 or as float32
            (img if rgba else src).tofile(tmp_path / f"{name}.in")
            cases.append({"src": str(tmp_path / f"{name}.in"), "dst": str(tmp_path / f"{name}.out"),
                          "w": w, "h": h, "dw": ref.shape[1], "dh": ref.shape[0], "inv": inv,
                          "dtype": dtype, "rgba": rgba})
            refs.append(ref)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    module = json.dumps((ROOT / "paddleface" / "web" / "detector.mjs").as_uri())
    (tmp_path / "check.mjs").write_text(RESIZE_CHECK % module)
    r = subprocess.run([node, str(tmp_path / "check.mjs"), str(tmp_path / "cases.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for c, ref in zip(cases, refs):
        got = np.fromfile(c["dst"], dtype=c["dtype"]).reshape(ref.shape)
        diff = np.abs(got.astype(np.float64) - ref)
        if c["dtype"] == "uint8":
            assert diff.max() == 0, (c, int((diff > 0).sum()))
        else:
            assert diff.max() <= 3.1e-5, (c, diff.max())


def test_serve_switches_to_the_browser(site, browser):
    """`paddleface serve`: the page's switch opens the model's web export at /web/<id>/,
    served cross-origin isolated (so WASM runs 2 threads here), and it finds what /detect finds."""
    import urllib.error
    import urllib.request

    from paddleface.serve.process import ServiceProcess
    crowd = site["shared"] / "images" / "crowd.jpg"
    with ServiceProcess(["--model", "ulfd-rfb-320", "--no-access-log"]) as svc:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(svc.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length > 0")
        page.select_option("#where", "browser")
        page.wait_for_url("**/web/ulfd-rfb-320/**", timeout=300_000)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=300_000)
        assert page.evaluate("[crossOriginIsolated, window.paddleface.threads]") == [True, 2]
        with urllib.request.urlopen(svc.url + "/web/ulfd-rfb-320/ort/ort-wasm-simd-threaded.wasm") as r:
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert r.headers["Content-Type"] == "application/wasm"
        for bad in ("/web/ulfd-rfb-320/..%2F..%2Fdeploy.json", "/web/no-such-model/",
                    "/web/ulfd-rfb-320/missing.js"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(svc.url + bad)
            assert e.value.code == 404, bad
        in_browser = page.evaluate("window.paddleface.detect('/no-such-photo.jpg')"
                                   ".catch((e) => e.message)")
        assert "HTTP 404" in in_browser  # a URL that does not answer: a message, not a crash
        req = urllib.request.Request(svc.url + "/detect", data=crowd.read_bytes(),
                                     headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(req) as r:
            server_faces = json.loads(r.read())["images"][0]["faces"]
        page.set_input_files("#file", str(crowd))
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        assert int(page.get_attribute("#canvas", "data-faces")) == len(server_faces) > 5
        page.close()


POSTPROCESS_CHECK = """
import {postprocess, readConfig} from %s;
const cfg = readConfig({preprocess: {channel_order: 'BGR', mean: [0, 0, 0], std: 1, resize: 'long_side'},
  anchors: {min_sizes: [[16]], steps: [16], variances: [0.1, 0.2], clip: false, centers: 'step'},
  detection: {score_threshold: 0.5, final_threshold: 0.5, candidates: -1, keep: -1, nms_iou: 0.3,
              nms_space: 'pixels', nms_offset: 1, nms_eps: 0, clamp_min: null},
  outputs: ['loc', 'conf'], labels: process.argv[2] === 'one' ? undefined : ['face', 'masked_face']});
// one class: priors 0-2 at one place (loc 0: identical boxes), prior 3 elsewhere;
// two classes: all four at one place; conf columns: background, then the classes
const one = process.argv[2] === 'one';
const pri = Float32Array.from([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
                               one ? 0.2 : 0.5, one ? 0.2 : 0.5, 0.5, 0.5]);
const loc = new Float32Array(16);
const conf = one ? Float32Array.from([0.1, 0.9, 0.2, 0.8, 0.9, 0.1, 0.4, 0.6])
                 : Float32Array.from([0, 0.9, 0.1, 0, 0.2, 0.8, 0, 0.3, 0.7, 0, 0.95, 0.05]);
const faces = postprocess(loc, conf, null, pri, cfg, cfg.detection,
                          {toPixels: [100, 100], offset: [0, 0], width: 100, height: 100});
console.log(JSON.stringify(faces.map((f) => [f.label, f.score.toFixed(2)])));
"""


def test_js_postprocess_per_class(tmp_path):
    """Classes named by deploy.json's `labels` (conf column i + 1 is labels[i]): NMS within each
    class, the classes merged by score; without `labels` one class "face" (today's models)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    module = json.dumps((ROOT / "paddleface" / "web" / "detector.mjs").as_uri())
    (tmp_path / "check.mjs").write_text(POSTPROCESS_CHECK % module)
    out = {}
    for kind in ("two", "one"):
        r = subprocess.run([node, str(tmp_path / "check.mjs"), kind], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out[kind] = json.loads(r.stdout)
    # face: 0.95 suppresses 0.9 (the same box); masked_face: 0.8 suppresses 0.7, and is not
    # suppressed by the better face box of the other class
    assert out["two"] == [["face", "0.95"], ["masked_face", "0.80"]]
    # one class: 0.9 suppresses 0.8 (the same box), 0.6 lies elsewhere
    assert out["one"] == [["face", "0.90"], ["face", "0.60"]]


def test_web_export_without_npm_says_what_to_do(tmp_path, monkeypatch, capsys):
    """No npm and no installed runtime: exit 2 and one sentence naming npm and
    PADDLEFACE_ORT_WEB, before any model is loaded; a PADDLEFACE_ORT_WEB folder without the
    runtime files is named with what is missing."""
    import paddleface.web as web
    from paddleface.cli import main
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PADDLEFACE_ORT_WEB", raising=False)
    monkeypatch.setattr(web.shutil, "which", lambda name: None)
    assert main(["export", "ulfd-rfb-320", "--format", "web", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "npm" in err and "PADDLEFACE_ORT_WEB" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("PADDLEFACE_ORT_WEB", str(tmp_path))
    assert main(["export", "ulfd-rfb-320", "--format", "web", "--out", str(tmp_path / "o")]) == 2
    assert "ort-wasm-simd-threaded.wasm" in capsys.readouterr().err


def test_wheel_carries_the_page_and_the_lock(tmp_path):
    """A wheel user exports without the repository: the page, the detector and the npm lock
    are package data (the runtime itself comes from `npm ci` of that lock, never the wheel)."""
    import sys
    import zipfile
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", str(ROOT), "-w", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("paddleface-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("index.html", "page.mjs", "detector.mjs", "package.json", "package-lock.json",
                 "static_server.py"):
        assert f"paddleface/web/{name}" in names, name
    assert not any("node_modules" in n or n.endswith(".wasm") for n in names)
