"""The README's picture of detected faces: one model on one photo, drawn as `paddleface detect
--out` draws, scaled to a width that reads on GitHub, written as PNG.

    python tools/docs_picture.py ../shared/images/6.jpg docs/img/detected.png --width 640 [--model rfb-lm]
"""
import argparse
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddleface import FaceDetector  # noqa: E402
from paddleface.draw import draw_faces  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo")
    p.add_argument("out")
    p.add_argument("--model", default="rfb-lm")
    p.add_argument("--width", type=int, default=800)
    args = p.parse_args(argv)
    image = cv2.imread(args.photo)
    faces = FaceDetector(args.model, threads=1).detect(image)
    drawn = draw_faces(image, faces)
    r = args.width / drawn.shape[1]
    drawn = cv2.resize(drawn, (args.width, round(drawn.shape[0] * r)), interpolation=cv2.INTER_AREA)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette: a third of the bytes of a true-colour PNG, no visible loss here
    from PIL import Image
    Image.fromarray(drawn[:, :, ::-1]).quantize(256).save(args.out, optimize=True)
    print(f"{args.out}: {len(faces)} faces ({args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
