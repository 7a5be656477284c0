"""Photos -> binary PPM files, the input of the C++ Lite detector (deploy/lite/cpp).

    python deploy/lite/to_ppm.py PHOTO_OR_FOLDER... --out DIR

Each photo is decoded by paddleface's reader (OpenCV, as `paddleface detect` decodes it: EXIF
rotation ignored, alpha dropped, grey expanded) and written as DIR/<name>.ppm, so the C++
detector works on exactly the pixels the Python detector sees. The C++ side has no JPEG/PNG
decoder: on a device, decode with the platform's image API or OpenCV and pass BGR pixels to
paddleface::Prepare instead.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from paddleface.errors import PaddleFaceError  # noqa: E402
from paddleface.image_io import expand_inputs, is_video, read_image  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out", required=True, help="folder for the .ppm files")
    args = ap.parse_args(argv)
    import cv2
    files, errors = expand_inputs(args.paths)
    for _, msg in errors:
        print(f"error: {msg}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = len(errors)
    for f in files:
        if is_video(f):
            print(f"error: {f}: a video; only photos are converted", file=sys.stderr)
            failed += 1
            continue
        try:
            image = read_image(f)
        except PaddleFaceError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        cv2.imwrite(str(out / (f.stem + ".ppm")), image)
        print(out / (f.stem + ".ppm"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
