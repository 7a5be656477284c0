"""The torch-free import of PyTorch checkpoints: equal to torch + x2paddle, and safe."""
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from paddleface.errors import PaddleFaceError
from paddleface.registry import REGISTRY
from paddleface.torch_import import paddle_params_from_pth
from paddleface.torch_pickle import (CorruptCheckpoint, UnsafeCheckpoint,
                                     UnsupportedCheckpoint, load_checkpoint)
from paddleface.weights import convert_with_x2paddle, read_torch_state_dict

from test_install import run_without


# registry checkpoints that are not in the shared weights: not reachable from the project's
# machines (retinaface-r50's 105 MB release and its ImageNet backbone). The synthetic
# Resnet50_Final.pth of test_retinaface_r50.py takes the torch-free import there.
NOT_SHARED = {"retinaface/Resnet50_Final.pth", "torchvision/resnet50-0676ba61.pth"}


def registry_checkpoints():
    paths = set()
    for r in REGISTRY.values():
        for ck in (r.checkpoint, r.backbone):
            if ck is not None and ck.path not in NOT_SHARED:
                paths.add(ck.path)
    return sorted(paths)


def save_params(params, path):
    import paddle
    paddle.save(params, str(path))
    return Path(path).read_bytes()


@pytest.mark.parametrize("rel", registry_checkpoints())
def test_pdparams_equal_the_torch_x2paddle_path_bit_for_bit(shared, tmp_path, rel):
    src = shared / "weights" / rel
    if not src.is_file():
        pytest.fail(f"{src} is missing from the shared weights")
    ours = save_params(paddle_params_from_pth(src), tmp_path / "ours.pdparams")
    theirs = save_params(convert_with_x2paddle(read_torch_state_dict(src)),
                         tmp_path / "torch.pdparams")
    assert ours == theirs


def test_every_shared_weights_file_is_a_registry_checkpoint(shared):
    # so the parametrised test above covers every checkpoint the project can download
    files = {str(p.relative_to(shared / "weights")) for p in (shared / "weights").rglob("*")
             if p.is_file()}
    assert set(registry_checkpoints()) <= files


@pytest.mark.parametrize("zip_layout", [True, False])
def test_views_strides_prefixes_and_wrappers_match_torch(tmp_path, zip_layout):
    """Tensors sharing one storage at offsets, transposed (strided) ones, a Linear weight,
    int64 counters, a {'state_dict'} wrapper with DataParallel's 'module.' prefix."""
    import torch
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 10, generator=g)
    sd = {"module.conv.weight": torch.randn(4, 3, 3, 3, generator=g),
          "module.fc.weight": base[1:5, 2:9],          # a view at an offset, strided rows
          "module.fc.bias": base[0],                    # same storage, offset 0
          "module.head.weight": base.t()[:, :3],       # transposed: strides (1, 10)
          "module.bn.weight": torch.rand(8, generator=g),
          "module.bn.running_mean": torch.rand(8, generator=g),
          "module.bn.running_var": torch.rand(8, generator=g),
          "module.bn.num_batches_tracked": torch.tensor(7),
          "module.half": torch.randn(2, 3, generator=g).half()}
    src = tmp_path / "ck.pth"
    torch.save({"epoch": 3, "arch": "x", "state_dict": sd}, str(src),
               _use_new_zipfile_serialization=zip_layout)
    ours = paddle_params_from_pth(src)
    theirs = convert_with_x2paddle(read_torch_state_dict(src))
    assert list(ours) == list(theirs)
    for k in ours:
        assert ours[k].dtype == theirs[k].dtype and ours[k].shape == theirs[k].shape, k
        assert ours[k].tobytes() == theirs[k].tobytes(), k
    assert ours["fc.weight"].shape == (7, 4)  # the Linear weight transposed, as x2paddle does
    assert "bn._mean" in ours and "bn.num_batches_tracked" not in ours


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_zip_checkpoint(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


def write_legacy_checkpoint(path, payload: bytes):
    head = b"".join(pickle.dumps(x, protocol=2) for x in
                    (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    Path(path).write_bytes(head + payload + pickle.dumps([], protocol=2))


@pytest.mark.parametrize("layout", ["zip", "legacy", "bare pickle"])
def test_a_planted_os_system_pickle_is_refused_by_name_and_never_run(tmp_path, layout):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": Evil(marker)}, protocol=2)
    bad = tmp_path / "evil.pth"
    if layout == "zip":
        write_zip_checkpoint(bad, payload)
    elif layout == "legacy":
        write_legacy_checkpoint(bad, payload)
    else:
        bad.write_bytes(payload)
    with pytest.raises(UnsafeCheckpoint) as e:
        load_checkpoint(bad)
    msg = str(e.value)
    assert f"{os.system.__module__}.system" in msg and "not unpickled" in msg and "\n" not in msg
    assert not marker.exists()


def test_other_globals_are_refused_too(tmp_path):
    bad = tmp_path / "eval.pth"
    # a pickle calling builtins.eval in the legacy header (where only ints are expected)
    bad.write_bytes(b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R.")
    with pytest.raises(UnsafeCheckpoint, match="builtins.eval"):
        load_checkpoint(bad)
    # a model object instead of a state dict
    write_zip_checkpoint(bad, b"\x80\x02ctorch.nn.modules.linear\nLinear\n)\x81.")
    with pytest.raises(UnsafeCheckpoint, match="torch.nn.modules.linear.Linear"):
        load_checkpoint(bad)


@pytest.mark.parametrize("rel", ["ulfd/version-RFB-320.pth",            # legacy stream
                                 "ulfd/RFB-320-masked_face-v2.pth"])     # zip
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.999])
def test_a_truncated_checkpoint_is_refused_in_one_sentence(shared, tmp_path, rel, fraction):
    data = (shared / "weights" / rel).read_bytes()
    bad = tmp_path / "cut.pth"
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptCheckpoint) as e:
        load_checkpoint(bad)
    assert "cut.pth: not a readable PyTorch checkpoint" in str(e.value)
    assert "\n" not in str(e.value)


def test_the_pre_0_4_tar_layout_says_to_install_torch(tmp_path):
    bad = tmp_path / "old.tar"
    with tarfile.open(bad, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("sys_info", "pickle", "storages", "tensors"):
            data = pickle.dumps(0, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsupportedCheckpoint) as e:
        load_checkpoint(bad)
    assert "pre-0.4 tar layout" in str(e.value) and "pip install torch" in str(e.value)


def test_refusals_are_paddleface_errors_for_the_cli(shared, tmp_path, capsys):
    from paddleface.cli import main
    bad = tmp_path / "evil.pth"
    write_zip_checkpoint(bad, pickle.dumps({"w": Evil(tmp_path / "pwned")}, protocol=2))
    assert issubclass(UnsafeCheckpoint, PaddleFaceError)
    assert main(["detect", str(shared / "images/2.jpg"), "--weights", str(bad),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "system, which a state dict of tensors never needs" in err[0]
    assert not (tmp_path / "pwned").exists()


def test_first_run_detects_without_torch(shared, tmp_path):
    """An empty PADDLEFACE_HOME, torch and x2paddle unimportable: the checkpoint (from
    $PADDLEFACE_WEIGHTS, or as downloaded into the home's downloads/) is imported and used."""
    code = f"""
        from paddleface.cli import main
        code = main(["detect", {str(shared / 'images/2.jpg')!r}, "--device", "cpu"])
        assert "torch" not in sys.modules and "x2paddle" not in sys.modules
        sys.exit(code)
    """
    home = tmp_path / "home"
    r = run_without(["torch", "x2paddle"], code, PADDLEFACE_HOME=str(home))
    assert r.returncode == 0 and r.stdout.strip().endswith("faces"), r.stderr
    assert int(r.stdout.split()[-2]) > 0
    assert list((home / "weights").glob("rfb-lm-*.pdparams"))  # the default model's import
    # the download path: the checkpoint as download() leaves it, no $PADDLEFACE_WEIGHTS
    ck = REGISTRY["rfb-lm"].checkpoint
    home2 = tmp_path / "home2"
    (home2 / "downloads" / ck.path).parent.mkdir(parents=True)
    (home2 / "downloads" / ck.path).write_bytes((shared / "weights" / ck.path).read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "PADDLEFACE_WEIGHTS"}
    saved = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    try:
        r = run_without(["torch", "x2paddle"], code, PADDLEFACE_HOME=str(home2))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert r.returncode == 0 and r.stdout.strip().endswith("faces"), r.stderr
