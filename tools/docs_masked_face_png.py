"""Writes docs/img/masked-face.png: ulfd-mask-320's detections on one of the upstream's
masked-face photos (faces green, masked faces orange), 640 pixels wide.

    python tools/docs_masked_face_png.py   # reads $PADDLEFACE_SHARED/images/masked/img5.jpeg
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    import cv2

    from paddleface.detector import FaceDetector
    from paddleface.draw import draw_faces
    shared = Path(os.environ.get("PADDLEFACE_SHARED", ROOT.parent / "shared"))
    image = cv2.imread(str(shared / "images/masked/img5.jpeg"))
    drawn = draw_faces(image, FaceDetector("ulfd-mask-320", device="cpu").detect(image))
    h, w = drawn.shape[:2]
    small = cv2.resize(drawn, (640, round(h * 640 / w)), interpolation=cv2.INTER_AREA)
    out = ROOT / "docs/img/masked-face.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image  # a 128-colour palette keeps the file small for the repository
    rgb = Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
    rgb.quantize(128).save(out, optimize=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
