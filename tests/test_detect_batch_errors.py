"""detect_batch(errors="raise"|"skip"): a bad item loses nothing else in the batch."""
import copy

import cv2
import numpy as np
import pytest

from paddleface import ItemError
from paddleface.errors import PaddleFaceError


@pytest.fixture
def batch(shared, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((shared / "images/2.jpg").read_bytes()[:300])
    good_array = cv2.imread(str(shared / "images/13.jpg"))
    return [shared / "images/2.jpg",                    # 0 good path
            tmp_path / "missing.jpg",                  # 1 no such file
            corrupt,                                   # 2 truncated JPEG
            np.zeros((40, 60, 3), np.float32),         # 3 not uint8
            good_array,                                # 4 good array
            np.zeros((9000, 9000), np.uint8),          # 5 over the pixel limit at origin size
            str(shared / "images/crowd.jpg")]          # 6 good path as str


def test_skip_gives_an_error_entry_in_place_and_detects_the_rest(get_detector, batch):
    det = copy.copy(get_detector("rfb-lm"))
    det.long_side = None  # the original size: item 5 is then 81 M pixels, over the limit
    out = det.detect_batch(batch, batch_size=2, errors="skip")
    assert len(out) == len(batch)
    bad = {i: r for i, r in enumerate(out) if isinstance(r, ItemError)}
    assert sorted(bad) == [1, 2, 3, 5]
    assert all(not r for r in bad.values()) and all(r.index == i for i, r in bad.items())
    assert bad[1].source.endswith("missing.jpg") and "missing.jpg" in bad[1].message
    assert "not a readable image" in bad[2].message
    assert bad[3].source == "images[3]" and bad[3].message.startswith("images[3]: uint8 pixels")
    assert bad[5].message.startswith("images[5]: the network input would be 9000x9000")
    assert bad[5].to_dict() == {"index": 5, "source": "images[5]", "error": bad[5].message}
    for i in (0, 4, 6):
        want = det.detect(batch[i])
        assert len(out[i]) == len(want) > 0
        assert all(np.array_equal(a.box, b.box) and a.score == b.score
                   for a, b in zip(out[i], want))


def test_raise_is_the_default_and_raises_the_first_bad_item(get_detector, batch):
    det = get_detector("rfb-lm")
    with pytest.raises(PaddleFaceError, match="missing.jpg"):
        det.detect_batch(batch)
    with pytest.raises(PaddleFaceError, match="missing.jpg"):
        det.detect_batch(batch, errors="raise")


def test_an_unknown_mode_is_refused(get_detector, shared):
    with pytest.raises(PaddleFaceError, match="expected 'raise'"):
        get_detector("rfb-lm").detect_batch([shared / "images/2.jpg"], errors="ignore")
