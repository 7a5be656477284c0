"""The browser detector's speed: onnxruntime-web (WASM SIMD) in headless Chromium beside native
ONNX Runtime, same model file, same threads, same machine, in one run.

    python bench/web_latency.py [--models ulfd-rfb-320 rfb-lm blazeface-320] [--threads 1 2]
        [--photo crowd.jpg] [--runs 15] [--rounds 3]

Each model's web export (`paddleface export ID --format web`, cached under $PADDLEFACE_HOME/web)
is served on 127.0.0.1 cross-origin isolated (COOP/COEP), so the WASM build may run threads;
one page per (model, threads) is opened with ``?threads=N``. Per cell and round:

- browser "network": ``session.run`` alone on the photo's network input;
- browser "pre+post": the page's JS around it (RGBA -> BGR, resize, normalise, priors,
  decoding, NMS), from ``detect(ImageData)`` of the decoded photo, minus its network time;
- browser "detect": the whole ``detect(Blob)`` of the JPEG, Chromium's decoding included;
- native "network": ONNX Runtime's Python ``InferenceSession.run`` on the same model.onnx and
  the same input, ``intra_op_num_threads`` = the same thread count;
- native "detect": ``FaceDetector(engine="onnxruntime", threads=N).detect`` of the decoded photo.

Rounds are interleaved (browser, then native, for every cell, per round) so a load change on
this shared machine hits both alike; the table has medians over all runs and the WASM/native
ratio of the network times measured in the same rounds. The load average is printed.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import shared_dir  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]

IN_PAGE = """async ({photo, runs}) => {
  const m = await import('./detector.mjs');
  await window.paddleface.ready;
  const blob = await (await fetch(photo)).blob();
  const px = await m.readPixels(blob);
  const data = new ImageData(new Uint8ClampedArray(px.rgba), px.width, px.height);
  const out = {network: [], prepost: [], detect: [], decode: []};
  for (let i = 0; i < 3; i++) await window.paddleface.detect(data);  // warm-up
  for (let i = 0; i < runs; i++) {
    out.network.push(await window.paddleface.networkOnly(px.width, px.height));
    const r = await window.paddleface.detect(data);
    out.prepost.push(r.timings.total_ms - r.timings.network_ms);
    const b = await window.paddleface.detect(blob);
    out.detect.push(b.timings.total_ms);
    out.decode.push(b.timings.decode_ms);
  }
  return out;
}"""


def median(xs):
    return statistics.median(xs) if xs else float("nan")


_native = {}


def native_runs(model_id, threads, folder, photo, runs):
    """(network ms list, detect ms list) of native ONNX Runtime: the web export's model.onnx
    run by an InferenceSession, and FaceDetector's whole detect()."""
    import cv2
    import onnxruntime as ort

    from paddleface.detector import FaceDetector
    if (model_id, threads) not in _native:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(folder / "model.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
        det = FaceDetector(model_id, device="cpu", engine="onnxruntime", threads=threads)
        image = cv2.imread(str(photo))
        _native[model_id, threads] = (sess, det, image, det.prepare(image).tensor[None])
    sess, det, image, x = _native[model_id, threads]
    name = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {name: x})
        det.detect(image)
    network, detect = [], []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {name: x})
        network.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        det.detect(image)
        detect.append((time.perf_counter() - t) * 1e3)
    return network, detect


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["ulfd-rfb-320", "rfb-lm", "blazeface-320"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--photo", default="crowd.jpg", help="a photo of shared/images")
    ap.add_argument("--runs", type=int, default=15, help="runs per cell and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from paddleface.serve.web import web_export
    from paddleface.web.static_server import start

    photo = shared_dir() / "images" / args.photo
    folders = {m: web_export(m) for m in args.models}
    root = folders[args.models[0]].parent
    server, url = start(root, isolated=True, mounts={"/photos": photo.parent})
    cells = [(m, t) for m in args.models for t in args.threads]
    data = {c: {"network": [], "prepost": [], "detect": [], "decode": [],
                "native_network": [], "native_detect": [], "ratios": []} for c in cells}
    loads = [os.getloadavg()[0]]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page0 = browser.new_page()
        page0.goto(f"{url}/{folders[args.models[0]].name}/index.html")
        webgpu = page0.evaluate("""async () => {
            if (!navigator.gpu) return 'navigator.gpu is undefined';
            const a = await navigator.gpu.requestAdapter();
            return a ? 'an adapter is available' : 'requestAdapter() returned null'; }""")
        page0.close()

        def open_page(m, t):
            p = browser.new_page()
            p.goto(f"{url}/{folders[m].name}/index.html?threads={t}")
            p.wait_for_function("document.body.dataset.state === 'ready'", timeout=900_000)
            got = p.evaluate("[crossOriginIsolated, window.paddleface.threads]")
            if got != [True, t]:
                raise SystemExit(f"{m}: the page runs {got[1]} threads (isolated: {got[0]}), "
                                 f"{t} were asked for")
            return p

        for rnd in range(args.rounds):
            for c in cells:
                # a fresh page per cell and round: six WASM sessions kept open at once
                # crashed a tab of this loaded machine
                page = open_page(*c)
                r = page.evaluate(IN_PAGE, {"photo": f"/photos/{photo.name}", "runs": args.runs})
                page.close()
                time.sleep(0.1)  # ONNX Runtime's spinning threads have gone quiet
                nn, nd = native_runs(c[0], c[1], folders[c[0]], photo, args.runs)
                d = data[c]
                for k in ("network", "prepost", "detect", "decode"):
                    d[k] += r[k]
                d["native_network"] += nn
                d["native_detect"] += nd
                d["ratios"].append(median(r["network"]) / median(nn))
            loads.append(os.getloadavg()[0])
            print(f"round {rnd + 1}/{args.rounds} done, load average {loads[-1]:.2f}",
                  flush=True)
        browser.close()
    server.shutdown()

    rows = []
    for (m, t), d in data.items():
        net, pp = median(d["network"]), median(d["prepost"])
        rows.append({"model": m, "threads": t, "wasm_network_ms": net, "js_prepost_ms": pp,
                     "js_prepost_pct_of_network": 100 * pp / net,
                     "browser_detect_ms": median(d["detect"]), "jpeg_decode_ms": median(d["decode"]),
                     "native_network_ms": median(d["native_network"]),
                     "native_detect_ms": median(d["native_detect"]),
                     "wasm_over_native": median(d["ratios"])})
    sizes = {m: {"model_onnx_bytes": (f / "model.onnx").stat().st_size,
                 "runtime_bytes": sum(p.stat().st_size for p in (f / "ort").iterdir()),
                 "page_bytes": sum((f / n).stat().st_size for n in
                                   ("index.html", "page.mjs", "detector.mjs", "deploy.json"))}
             for m, f in folders.items()}
    print(f"\nphoto {photo.name}; {args.rounds} rounds x {args.runs} runs per cell; load average "
          f"{min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cores; WebGPU in this headless "
          f"Chromium: {webgpu} (not measured)\n")
    head = ("| model | threads | WASM network ms | JS pre+post ms | pre+post / network | "
            "browser detect(Blob) ms | of which JPEG decode ms | native network ms | "
            "native detect ms | WASM / native network |")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in rows:
        print(f"| {r['model']} | {r['threads']} | {r['wasm_network_ms']:.1f} | "
              f"{r['js_prepost_ms']:.1f} | {r['js_prepost_pct_of_network']:.0f}% | "
              f"{r['browser_detect_ms']:.1f} | {r['jpeg_decode_ms']:.1f} | "
              f"{r['native_network_ms']:.1f} | {r['native_detect_ms']:.1f} | "
              f"{r['wasm_over_native']:.2f} |")
    print("\n| model | model.onnx | runtime (ort/) | page + deploy.json |\n|---|---|---|---|")
    for m, s in sizes.items():
        print(f"| {m} | {s['model_onnx_bytes'] / 1e6:.2f} MB | {s['runtime_bytes'] / 1e6:.2f} MB | "
              f"{s['page_bytes'] / 1e3:.0f} kB |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "sizes": sizes, "webgpu": webgpu,
                                               "load": loads}, indent=1))


if __name__ == "__main__":
    main()
