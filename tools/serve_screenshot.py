"""The README's picture of the ``paddleface serve`` page: a service on a free loopback port,
a photo uploaded in headless Chromium (Debian's, driven by Playwright), a screenshot.

    python tools/serve_screenshot.py ../shared/images/6.jpg docs/serve-page.png
"""
import argparse
import shutil
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface.serve.process import ServiceProcess  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("out")
    ap.add_argument("--model", default="rfb-lm")
    ap.add_argument("--scale", type=float, default=0.75)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    raw = Path(args.out).with_suffix(".full.png")
    with ServiceProcess(["--model", args.model, "--no-access-log"]) as svc, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                     args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1180, "height": 700})
        page.goto(svc.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length > 0")
        for _ in range(2):  # the first run of a new input size also sets up oneDNN's kernels
            page.evaluate("document.body.dataset.state = ''")
            page.set_input_files("#file", args.image)
            page.wait_for_selector("body[data-state=done]", timeout=120_000)
        page.screenshot(path=str(raw))
        print(page.inner_text("#status"))
        browser.close()
    image = cv2.resize(cv2.imread(str(raw)), None, fx=args.scale, fy=args.scale,
                       interpolation=cv2.INTER_AREA)
    raw.unlink()
    image = (image // 16) * 16 + 8  # 4 bits per channel: a third of the PNG's size
    cv2.imwrite(args.out, image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
