"""A short Hypothesis fuzz of ``paddleface serve`` (bench/serve_fuzz.py runs thousands)."""
import json
import urllib.request

import cv2
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("hypothesis")

from paddleface.serve.fuzz import Request, run_fuzz, send, seed_images  # noqa: E402
from paddleface.serve.process import ServiceProcess  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    log = tmp_path_factory.mktemp("fuzz") / "serve.log"
    with ServiceProcess(["--model", "ulfd-rfb-320", "--threads", "1", "--no-access-log",
                         "--max-body-mb", "2", "--max-megapixels", "4"], log=log) as svc:
        yield svc


def test_deeply_nested_json_is_a_400_not_a_500(service):
    # found by the fuzzer: json.loads raised RecursionError, which became a 500
    for path in ("/detect", "/predict/ultra_light_fast_generic_face_detector_1mb_320"):
        n = 100000
        assert send(service.port, Request(path, b"[" * n + b"]" * n, "application/json"),
                    timeout=30) == "4xx"


def test_short_fuzz_no_5xx_no_hang_service_stays_up(service, shared):
    seeds = seed_images(cv2.imread(str(shared / "images" / "2.jpg")))
    counts = run_fuzz(service.port, seeds, examples=250, timeout=30, seed=1)
    print(dict(counts))
    assert sum(counts.values()) >= 250 and counts["4xx"] > 0
    assert counts["5xx"] == 0 and counts["hang"] == 0
    assert service.proc.poll() is None
    with urllib.request.urlopen(service.url + "/healthz", timeout=30) as r:
        assert r.status == 200 and json.load(r)
