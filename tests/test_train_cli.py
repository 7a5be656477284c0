"""tools/train.py around the trainer: what an interrupted or resumed run tells the user."""
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


class TrainSet(list):
    epoch = 0  # the trainer sets it to the epoch its loader is made for


class InterruptedTrainer:
    """Stands in for the Trainer: it gets to epoch 4 (0-based 3), iteration 123, then Ctrl-C."""

    def __init__(self, cfg):
        self.cfg, self.rank, self.epochs, self.batch_size, self.lr = cfg, 0, 10, 8, 0.01
        self.size, self.init_note = (320, 240), "random initialisation"
        self.start_epoch, self.step = (3, 120) if cfg.resume else (0, 0)
        self.train_set = TrainSet([None] * 16)

    def train(self):
        self.step = 123
        self.train_set.epoch = 3
        raise KeyboardInterrupt


def run(train_tool, argv):
    try:
        return train_tool.main(argv)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped tools/train.py (a traceback for the user)")


def test_ctrl_c_says_where_training_stopped_and_how_to_resume(train_tool, tmp_path,
                                                                 monkeypatch, capsys):
    import paddleface.training.trainer as trainer_module
    monkeypatch.setattr(trainer_module, "Trainer", InterruptedTrainer)
    out = tmp_path / "run"
    argv = ["--model", "ulfd-slim-320", "--data-root", str(tmp_path), "--output-dir", str(out)]
    # before any epoch finished there is nothing to resume from
    assert run(train_tool, argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interrupted in epoch 4/10, after 123 iterations; no epoch had finished, so "
                   "there is nothing to resume: rerun the same command to start again"]
    out.mkdir()
    (out / "last.pdstate").write_bytes(b"")
    assert run(train_tool, argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    command = shlex.join([sys.executable, sys.argv[0], *argv, "--resume"])
    assert err == [f"interrupted in epoch 4/10, after 123 iterations; resume with: {command} "
                   f"(continues from {out / 'last.pdstate'}, saved at the end of each epoch: "
                   "epoch 4 restarts)"]
    # the resumed run's banner says so, not "random initialisation"
    assert run(train_tool, argv + ["--resume"]) == 130
    banner = capsys.readouterr().out
    assert f"resuming from epoch 4 after 120 iterations ({out / 'last.pdstate'})" in banner
    assert "random initialisation" not in banner


def test_paddleface_train_subcommand_resume_hint_names_itself(tmp_path, monkeypatch, capsys):
    """The wheel's `paddleface train` is the same trainer as tools/train.py; its resume hint
    repeats `paddleface train` and the flags as typed."""
    import paddleface.training.trainer as trainer_module
    from paddleface.cli import main
    monkeypatch.setattr(trainer_module, "Trainer", InterruptedTrainer)
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pdstate").write_bytes(b"")
    flags = ["--model", "ulfd-slim-320", "--data-root", str(tmp_path), "--output-dir", str(out)]
    assert main(["train", *flags]) == 130
    err = capsys.readouterr().err
    assert f"resume with: {shlex.join(['paddleface', 'train', *flags, '--resume'])} " in err
