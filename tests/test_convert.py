"""The x2paddle import: what it accepts, what it refuses, and where weights come from."""
import os
import shutil

import numpy as np
import pytest

from paddleface.errors import PaddleFaceError
from paddleface.registry import get_record
from paddleface.weights import convert_checkpoint, read_torch_state_dict, resolve_weights


def test_convert_roundtrip_equals_torch_values(shared, tmp_path):
    import paddle
    import torch
    src = shared / "weights" / "ulfd" / "version-RFB-320.pth"
    out = convert_checkpoint(get_record("ulfd-rfb-320"), src, tmp_path / "rfb.pdparams")
    params = paddle.load(str(out))
    torch_sd = torch.load(str(src), map_location="cpu", weights_only=True)
    assert np.array_equal(np.asarray(params["base_net.0.1._mean"]),
                          torch_sd["base_net.0.1.running_mean"].numpy())
    assert "base_net.0.1.running_mean" not in params


def test_wrong_architecture_is_refused_in_one_sentence(shared, tmp_path):
    src = shared / "weights" / "fd1mb" / "RBF_Final.pth"
    with pytest.raises(PaddleFaceError) as e:
        convert_checkpoint(get_record("ulfd-rfb-320"), src, tmp_path / "x.pdparams")
    msg = str(e.value)
    assert "not a ulfd-rfb-320 checkpoint" in msg and "missing keys" in msg
    assert "unexpected keys" in msg and "\n" not in msg
    assert not (tmp_path / "x.pdparams").exists()


def test_same_keys_other_shapes_is_refused(shared, tmp_path):
    # mnet-lm and retinaface-mnet share keys; a ULFD slim checkpoint for RFB lacks the RFB block
    src = shared / "weights" / "ulfd" / "version-slim-320.pth"
    with pytest.raises(PaddleFaceError, match="not a ulfd-rfb-320 checkpoint"):
        convert_checkpoint(get_record("ulfd-rfb-320"), src, tmp_path / "x.pdparams")


@pytest.mark.parametrize("content,message", [
    (b"", "bad.pth: the file is empty; a Paddle .pdparams or a PyTorch .pth state dict was expected"),
    (b"this is not a checkpoint\n", "bad.pth: not a weights file; a Paddle .pdparams or a PyTorch"),
    ("truncated", "bad.pth: not a readable PyTorch checkpoint (the file is truncated or corrupt)")])
def test_corrupt_file_gets_a_clear_error(shared, tmp_path, content, message):
    bad = tmp_path / "bad.pth"
    if content == "truncated":
        data = (shared / "weights" / "ulfd" / "version-RFB-320.pth").read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    with pytest.raises(PaddleFaceError) as e:
        convert_checkpoint(get_record("ulfd-rfb-320"), bad, tmp_path / "x.pdparams")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_wrapped_checkpoint_is_unwrapped(shared):
    # the ImageNet backbone: {'epoch', 'arch', 'state_dict' with 'module.' keys, ...}
    sd = read_torch_state_dict(shared / "weights" / "retinaface" / "mobilenetV1X0.25_pretrain.tar")
    assert "stage1.0.0.weight" in sd and not any(k.startswith("module.") for k in sd)
    assert not any(k.endswith("num_batches_tracked") for k in sd)


def test_pickle_with_code_is_not_executed(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    bad = tmp_path / "evil.pth"
    bad.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(PaddleFaceError) as e:
        read_torch_state_dict(bad)
    assert not (tmp_path / "pwned").exists()
    # torch's own text advises weights_only=False, i.e. running the code: never passed on
    assert "objects besides tensors" in str(e.value) and "weights_only" not in str(e.value)


@pytest.mark.parametrize("name,message", [
    ("photo.jpg", "photo.jpg: a JPEG image, not weights; a Paddle .pdparams or a PyTorch .pth"),
    ("junk.pdparams", "junk.pdparams: not a weights file; a Paddle .pdparams or a PyTorch .pth"),
    ("last.pdstate", "last.pdstate: a training state (optimizer, scheduler and epoch, for "
                     "tools/train.py --resume), not weights; pass the .pdparams beside it")])
def test_a_wrong_weights_file_says_what_it_is(shared, tmp_path, capsys, name, message):
    from paddleface.cli import main
    src = {"photo.jpg": (shared / "images/2.jpg").read_bytes(), "junk.pdparams": b"garbage\n",
           "last.pdstate": b"\x80\x04junk"}[name]
    (tmp_path / name).write_bytes(src)
    assert main(["detect", str(shared / "images/2.jpg"), "--weights", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "weights_only" not in err


def test_another_models_checkpoint_names_its_registry_ids(shared, capsys):
    from paddleface.cli import main
    assert main(["detect", str(shared / "images/2.jpg"), "--weights",
                 str(shared / "weights/ulfd/version-RFB-320.pth"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "not a rfb-lm checkpoint" in err
    assert "its keys and shapes match ulfd-rfb-320, ulfd-rfb-640: pass -m ulfd-rfb-320" in err


def test_a_corrupt_cache_entry_is_made_again_or_named(shared, tmp_path, monkeypatch, capsys):
    from paddleface.cli import main
    from paddleface.detector import FaceDetector
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    det = FaceDetector("ulfd-slim-320", device="cpu", engine="inference")
    converted = det.weights_path
    good = converted.read_bytes()
    converted.write_bytes(good[:1000])  # a converted copy cut short (full disk, killed process)
    again = FaceDetector("ulfd-slim-320", device="cpu")
    assert again.weights_path == converted and converted.read_bytes() == good
    model_dir = next((tmp_path / "home" / "inference").iterdir())
    (model_dir / "model.pdiparams").write_bytes(b"\x00" * 100)
    assert main(["detect", str(shared / "images/2.jpg"), "-m", "ulfd-slim-320",
                 "--engine", "inference"]) == 2
    err = capsys.readouterr().err
    assert f"{model_dir}: this cached inference model cannot be loaded" in err
    assert "delete the folder" in err and len(err.strip().splitlines()) == 1
    # the same for the ONNX model of engine="auto" on CPU
    FaceDetector("ulfd-slim-320", device="cpu")
    onnx_dir = next((tmp_path / "home" / "onnx").iterdir())
    (onnx_dir / "model.onnx").write_bytes(b"\x00" * 100)
    assert main(["detect", str(shared / "images/2.jpg"), "-m", "ulfd-slim-320"]) == 2
    err = capsys.readouterr().err
    assert f"{onnx_dir}: this cached ONNX model cannot be loaded" in err
    assert len(err.strip().splitlines()) == 1


def test_resolution_order_and_offline_message(shared, tmp_path, monkeypatch):
    record = get_record("ulfd-slim-320")
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    # 1. explicit path wins
    explicit = tmp_path / "mine.pth"
    shutil.copy(shared / "weights" / record.checkpoint.path, explicit)
    p1 = resolve_weights(record, str(explicit))
    assert p1.parent == tmp_path / "home" / "weights"
    # 2. $PADDLEFACE_WEIGHTS, converted into the cache under the upstream sha
    p2 = resolve_weights(record)
    assert p2.is_file() and record.checkpoint.sha256[:16] in p2.name
    # 3. the cache alone, with no weights directory
    monkeypatch.setenv("PADDLEFACE_WEIGHTS", str(tmp_path / "empty"))
    assert resolve_weights(record) == p2
    # 4. nothing anywhere and no network: a message saying which file to put where
    os.unlink(p2)
    monkeypatch.setattr("urllib.request.urlopen",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    with pytest.raises(PaddleFaceError) as e:
        resolve_weights(record)
    assert "version-slim-320.pth" in str(e.value) and str(tmp_path / "empty") in str(e.value)


def test_download_with_wrong_sha_is_discarded(tmp_path, monkeypatch):
    import io
    record = get_record("ulfd-slim-320")
    monkeypatch.setenv("PADDLEFACE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PADDLEFACE_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: io.BytesIO(b"tampered"))
    with pytest.raises(PaddleFaceError, match="does not match"):
        resolve_weights(record)
    assert not list((tmp_path / "home").rglob("*.pth"))
