"""Draws docs/img/video-track.png: three frames of the synthetic clip tracked by rfb-lm
(before, during and after faces 1 and 2 cross; face 3 leaving and back), ids drawn.

    python docs/img/video_track.py
"""
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from paddleface.detector import FaceDetector
    from paddleface.draw import draw_faces
    from paddleface.video.synthetic import make_face_clip
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_face_clip(shared, clip)
        det = FaceDetector("rfb-lm", device="cpu", threads=1)
        keep = {20: None, 40: None, 70: None}
        for i, frame, faces in det.stream(clip, track=True):
            if i in keep:
                drawn = draw_faces(frame, faces)
                cv2.putText(drawn, f"frame {i}", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0,
                            (255, 255, 255), 2)
                keep[i] = cv2.resize(drawn, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    strip = np.concatenate([keep[i] for i in sorted(keep)], axis=1)
    out = ROOT / "docs/img/video-track.png"
    cv2.imwrite(str(out), strip, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
