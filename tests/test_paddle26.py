"""The model code also imports and runs under paddle 2.6.2 (the Paddle Lite toolchain).

CI builds that interpreter with deploy/lite/setup.sh and names it in $PADDLEFACE_PY310.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REFERENCE_DIRS

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import numpy as np
import paddle
from paddleface.registry import get_record
from paddleface.preprocess import normalize
from paddleface.weights import load_weights
cases = json.loads(sys.argv[1])
out = {"paddle": paddle.__version__}
for model_id, weights, npz in cases:
    record = get_record(model_id)
    net = record.build()
    load_weights(net, weights, record)
    net.eval()
    z = np.load(npz)
    img = z["resized_rgb"][..., ::-1] if "resized_rgb" in z.files else z["resized_bgr"]
    loc, conf, landms = net(paddle.to_tensor(normalize(record.preprocess, img)[None]))
    ref_conf = z["scores"] if "scores" in z.files else z["conf"]
    out[model_id] = float(np.abs(conf.numpy()[0] - ref_conf).max())
print(json.dumps(out))
"""


def test_models_run_under_paddle_262(shared):
    py = os.environ.get("PADDLEFACE_PY310")
    if not py:
        pytest.skip("PADDLEFACE_PY310 is not set (CI sets it; see deploy/lite/setup.sh)")
    from paddleface.registry import get_record
    from paddleface.weights import resolve_weights
    cases = []
    for model_id in ("ulfd-rfb-320", "rfb-lm", "retinaface-mnet"):
        weights = str(resolve_weights(get_record(model_id)))
        npz = str(shared / "reference" / REFERENCE_DIRS[model_id] / "2.npz")
        cases.append((model_id, weights, npz))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([py, "-c", SCRIPT, json.dumps(cases)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result.pop("paddle").startswith("2.6")
    for model_id, diff in result.items():
        assert diff < 1e-4, (model_id, diff)
