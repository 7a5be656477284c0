"""Progress inside a training epoch: a bar on a terminal, lines in a log, nothing with --quiet."""
import io
import re
from pathlib import Path

import pytest

from paddleface.training.progress import EpochProgress

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"epoch 1/1: (\d+)/16 images \(\d+%\), [\d.]+ images/s, loss [\d.]+, "
                  r"lr [\d.e-]+, \d+:\d\d left")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal_shows_images_per_second_and_loss():
    out = Terminal()
    p = EpochProgress("epoch 1/1", 16, stream=out)
    for _ in range(4):
        p.update(4, 1.2345, 0.01)
    p.close()
    text = out.getvalue()
    assert "16/16" in text and "img/s" in text and "loss=1.234" in text


def test_lines_in_a_log_and_nothing_when_disabled():
    log = io.StringIO()
    p = EpochProgress("epoch 1/1", 16, stream=log, interval=0)
    p.update(8, 2.5, 0.01)
    p.update(8, 2.0, 0.01)
    p.close()
    lines = log.getvalue().splitlines()
    assert [LINE.fullmatch(line).group(1) for line in lines] == ["8", "16", "16"]
    quiet = Terminal()
    p = EpochProgress("epoch 1/1", 16, enabled=False, stream=quiet, interval=0)
    p.update(16, 2.0, 0.01)
    p.close()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_training_reports_progress_inside_the_epoch(train_tool, small_tree, tmp_path, capsys,
                                                    quiet):
    args = ["--data-root", str(small_tree), "--split", "test", "--output-dir", str(tmp_path),
            "--epochs", "1", "--batch-size", "4", "--workers", "0", "--val-every", "0",
            "--save-every", "0", "--progress-interval", "0"] + (["--quiet"] if quiet else [])
    assert train_tool.main(args) == 0
    err = capsys.readouterr().err
    progress = [LINE.fullmatch(line) for line in err.splitlines() if line.startswith("epoch 1/1:")]
    if quiet:
        assert progress == []
    else:
        assert all(progress) and [int(m.group(1)) for m in progress] == [4, 8, 12, 16, 16]
