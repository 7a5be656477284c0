"""Video and live streams: a synthetic clip with known face trajectories (made here from the
shared photos) served as a real HTTP MJPEG stream on 127.0.0.1; tracking quality against the
truth (recall, id switches, IDF1), a server killed and restarted, Ctrl-C, a missing camera,
and anonymisation (face regions changed, the rest not, the audio kept)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddleface.video.anonymize import face_region
from paddleface.video.metrics import tracking_scores
from paddleface.video.synthetic import make_face_clip, read_frame_code

from conftest import interrupt_when_ready

FFMPEG = shutil.which("ffmpeg")
ARTIFACTS = Path(__file__).resolve().parents[1] / "output" / "test-artifacts"
MODEL = "rfb-lm"
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (.ci/run "
                                  "installs Debian's ffmpeg); the clip's tone needs it")


@pytest.fixture(scope="module")
def clip(shared, tmp_path_factory):
    """(path, truth): 800x450, 10 fps, 80 frames, a 440 Hz tone when ffmpeg is there."""
    path = tmp_path_factory.mktemp("clip") / "faces.mp4"
    truth = make_face_clip(shared, path, tone_hz=440.0 if FFMPEG else None, ffmpeg=FFMPEG)
    return path, truth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MjpegServer:
    """``python -m paddleface.video.mjpeg_server`` as a real process."""

    def __init__(self, video: Path, port: int, start_frame: int = 0):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paddleface.video.mjpeg_server", str(video), "--port",
             str(port), "--start-frame", str(start_frame)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("serving "), self.proc.stderr.read()
        self.url = line.split()[1]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_tracking_over_a_live_http_stream(clip, get_detector, capsys):
    """The clip served live at 10 fps: ids checked against the known trajectories."""
    path, truth = clip
    det = get_detector(MODEL)
    server = MjpegServer(path, free_port())
    received, landmarks_inside, codes = [], 0, []
    try:
        stream = det.stream(server.url, track=True, max_reconnects=0)
        for _, frame, faces in stream:
            code = read_frame_code(frame)
            codes.append(code)
            hyps = [(f.track_id, f.box) for f in faces if f.track_id is not None]
            received.append((code, hyps))
            for f in faces:
                x1, y1, x2, y2 = f.box
                lm = f.landmarks
                landmarks_inside += bool(((lm[:, 0] >= x1) & (lm[:, 0] <= x2) & (lm[:, 1] >= y1)
                                          & (lm[:, 1] <= y2)).all())
            if code >= len(truth["frames"]) - 1:
                break
    finally:
        server.kill()
    scores = tracking_scores(truth["frames"], received)
    n_faces = sum(len(h) for _, h in received)
    with capsys.disabled():
        print(f"\nlive MJPEG, {MODEL}: {len(received)} of {len(truth['frames'])} frames "
              f"processed, recall {scores['recall']:.3f}, precision {scores['precision']:.3f}, "
              f"IDF1 {scores['idf1']:.3f}, id switches {scores['num_switches']:.0f} "
              f"(objects {scores['switched_objects']})")
    assert codes == sorted(codes) and len(received) >= 40  # newest frames, in order
    assert scores["recall"] >= 0.9
    assert scores["idf1"] >= 0.9
    # face 3 leaves the picture and comes back; only the crossing faces 1, 2 may switch
    assert not set(scores["switched_objects"]) - set(truth["crossing"])
    assert landmarks_inside >= 0.95 * n_faces


def test_a_dropped_stream_reconnects_and_goes_on(clip, get_detector):
    """The server is killed mid-stream and started again on the same port: the stream is
    reopened (counted) and the frames after the restart arrive."""
    path, truth = clip
    det = get_detector(MODEL)
    port = free_port()
    server = MjpegServer(path, port)
    codes, restarted_at = [], None
    try:
        stream = det.stream(server.url, max_reconnects=5)
        for n, (_, frame, _) in enumerate(stream):
            codes.append(read_frame_code(frame))
            if n == 10:
                server.kill()
                time.sleep(0.5)
                restarted_at = codes[-1] + 20
                server = MjpegServer(path, port, start_frame=restarted_at)
            if len(codes) >= 25:
                break
    finally:
        server.kill()
    assert stream.reconnects == 1
    assert len(codes) == 25 and max(codes) >= restarted_at
    # in order, nothing twice; the frames after the restart continue the stream
    assert codes == sorted(set(codes))
    assert sum(c >= restarted_at for c in codes) >= 10


def test_reconnects_give_up_with_one_sentence(clip, get_detector):
    """No server at all: one sentence at once. A server that goes away for good: after the
    reconnect attempts, one sentence saying how many."""
    from paddleface.errors import PaddleFaceError
    det = get_detector(MODEL)
    with pytest.raises(PaddleFaceError, match=r"the stream cannot be opened"):
        det.stream(f"http://127.0.0.1:{free_port()}/")
    server = MjpegServer(clip[0], free_port())
    seen = 0
    with pytest.raises(PaddleFaceError) as e:
        for _ in det.stream(server.url, max_reconnects=2):
            seen += 1
            if seen == 3:
                server.kill()
    assert str(e.value) == (f"{server.url}: the stream dropped and did not come back after 2 "
                            "reconnect attempts")


def test_ctrl_c_closes_every_file(clip, tmp_path):
    """SIGINT during a live run: exit 130, the MP4 is complete and plays, the JSON lines are
    whole, nothing is left under a temporary name."""
    path, _ = clip
    server = MjpegServer(path, free_port())
    out, lines = tmp_path / "live.mp4", tmp_path / "faces.jsonl"
    try:
        err, seconds, code = interrupt_when_ready(
            [sys.executable, "-m", "paddleface", "detect", server.url, "-m", MODEL,
             "--threads", "1", "--track", "--out", str(out), "--jsonl", str(lines)],
            lambda: lines.exists() and lines.read_text().count("\n") >= 8, 90, "detect")
    finally:
        server.kill()
    assert code == 130, err
    assert seconds < 5
    assert err.strip().splitlines()[-1] == "interrupted"
    rows = [json.loads(l) for l in lines.read_text().splitlines()]
    assert len(rows) >= 8 and all(set(r) == {"frame", "time", "faces"} for r in rows)
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames >= len(rows)
    assert not list(tmp_path.glob("*.part*"))


def test_a_camera_that_does_not_exist_is_one_sentence(capsys):
    from paddleface.cli import main
    assert main(["detect", "camera:57"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: camera:57: no such camera")


def test_jsonl_of_a_file_has_every_frame_with_ids(clip, tmp_path, capsys):
    """Also --show where no window can open: one warning sentence, the rest goes on."""
    from paddleface.cli import main
    from paddleface.video.run import display_problem
    path, truth = clip
    lines = tmp_path / "faces.jsonl"
    assert main(["detect", str(path), "-m", MODEL, "--threads", "1", "--track",
                 "--jsonl", str(lines), "--show"]) == 0
    err = capsys.readouterr().err
    assert display_problem() is not None  # CI has neither a display nor a GUI OpenCV
    assert f"warning: --show: {display_problem()}; going on without a window" in err
    rows = [json.loads(l) for l in lines.read_text().splitlines()]
    assert [r["frame"] for r in rows] == list(range(len(truth["frames"])))
    assert rows[10]["time"] == 1.0
    ids = {f["id"] for r in rows for f in r["faces"]}
    assert None not in ids - {None} and len(ids - {None}) >= 3
    face = rows[5]["faces"][0]
    assert {"id", "box", "score", "landmarks"} <= set(face)


def ffprobe_streams(path: Path) -> list:
    r = subprocess.run([shutil.which("ffprobe") or "ffprobe", "-v", "error", "-show_entries",
                        "stream=codec_type,duration", "-of", "json", str(path)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["streams"]


def detail_correlation(a: np.ndarray, b: np.ndarray, box) -> float:
    """Correlation of the fine detail (the image minus its Gaussian blur, sigma 2) of two
    images inside ``box``: ~1 for the same face, ~0 when its features are gone (a blur keeps
    the coarse shading, so the plain pixel correlation would stay high)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    da, db = (cv2.cvtColor(im[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY) for im in (a, b))
    da, db = (d - cv2.GaussianBlur(d, (0, 0), 2) for d in (da, db))
    if da.std() == 0 or db.std() == 0:
        return 0.0
    return float(np.corrcoef(da.ravel(), db.ravel())[0, 1])


def read_frames(path: Path) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(image)


@needs_ffmpeg
@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_anonymize_a_video_keeps_the_rest_and_the_audio(clip, tmp_path, method, capsys):
    from paddleface.cli import main
    path, truth = clip
    out, lines = tmp_path / "anon.mp4", tmp_path / "faces.jsonl"
    margin = 0.2
    assert main(["detect", str(path), "-m", MODEL, "--threads", "1", "--anonymize", method,
                 "--anonymize-margin", str(margin), "--out", str(out),
                 "--jsonl", str(lines)]) == 0
    hidden_boxes = [[f["box"] for f in json.loads(l)["faces"]]
                    for l in lines.read_text().splitlines()]
    original, hidden = read_frames(path), read_frames(out)
    assert len(hidden) == len(original)
    # the control: the same frames through the same encoder, nothing hidden
    from paddleface.video.writer import VideoOutput
    control_out = VideoOutput(tmp_path / "control.mp4", truth["fps"], tuple(truth["size"]))
    for image in original:
        control_out.write(image)
    control_out.close()
    control = read_frames(tmp_path / "control.mp4")
    kinds = [s["codec_type"] for s in ffprobe_streams(out)]
    assert kinds.count("audio") == 1
    audio = [s for s in ffprobe_streams(out) if s["codec_type"] == "audio"][0]
    assert abs(float(audio["duration"]) - 8.0) < 0.2
    h, w = original[0].shape[:2]
    face_corr, outside_diff = [], []
    for k, (a, b, c) in enumerate(zip(original, hidden, control)):
        a, b, c = a.astype(np.float32), b.astype(np.float32), c.astype(np.float32)
        keep = np.ones((h, w), bool)
        for box in truth["frames"][k].values():  # the true faces: their detail is gone
            face_corr.append(detail_correlation(a, b, box))
        for box in hidden_boxes[k]:  # what was hidden, and 8 px where the codec smears edges
            gx1, gy1, gx2, gy2 = face_region(box, margin, w, h)
            keep[max(0, gy1 - 8):gy2 + 8, max(0, gx1 - 8):gx2 + 8] = False
        keep[:12, :130] = False  # the frame code
        outside_diff.append(np.abs(c - b)[keep].mean())
    with capsys.disabled():
        print(f"\n--anonymize {method}: detail correlation of the true face regions with the "
              "original: median "
              f"{np.median(face_corr):.2f}, max {np.max(face_corr):.2f}; rest of the frame: "
              f"mean |difference| {np.mean(outside_diff):.2f} (max per frame "
              f"{np.max(outside_diff):.2f}) grey levels")
    assert np.median(face_corr) < 0.2 and np.percentile(face_corr, 90) < 0.4
    assert np.max(outside_diff) < 0.5


def test_anonymize_a_photo_changes_only_the_faces(shared, tmp_path, get_detector):
    from paddleface.cli import main
    photo = tmp_path / "group.png"
    cv2.imwrite(str(photo), cv2.imread(str(shared / "images" / "2.jpg")))
    out = tmp_path / "anon"
    assert main(["detect", str(photo), "-m", MODEL, "--threads", "1", "--anonymize", "blur",
                 "--out", str(out)]) == 0
    a = cv2.imread(str(photo))
    b = cv2.imread(str(out / "group.png"))
    faces = get_detector(MODEL).detect(a)
    assert len(faces) >= 4
    changed = np.zeros(a.shape[:2], bool)
    for f in faces:
        x1, y1, x2, y2 = face_region(f.box, 0.2, a.shape[1], a.shape[0])
        changed[y1:y2, x1:x2] = True
        assert detail_correlation(a.astype(np.float32), b.astype(np.float32), f.box) < 0.2
    assert (a[~changed] == b[~changed]).all()


def test_without_ffmpeg_the_video_is_written_and_one_sentence_says_the_audio_is_lost(
        clip, tmp_path, monkeypatch):
    from paddleface.video.writer import VideoOutput
    path, _ = clip
    monkeypatch.setenv("PADDLEFACE_FFMPEG", "none")
    out = VideoOutput(tmp_path / "v.mp4", 10.0, (64, 48), audio_from=path)
    for k in range(5):
        out.write(np.full((48, 64, 3), k * 40, np.uint8))
    out.close()
    assert len(read_frames(tmp_path / "v.mp4")) == 5
    assert out.warning.startswith(f"{path}: no ffmpeg was found")
    assert out.warning.count(". ") == 0


def test_tracker_keeps_ids_of_a_face_that_leaves_and_comes_back(clip):
    """The true boxes as detections (clipped at the border, as a detector sees a face leaving):
    the face that leaves the picture gets its id back, the crossing faces keep theirs."""
    from paddleface.detector import Face
    from paddleface.video.tracking import FaceTracker
    _, truth = clip
    tracker = FaceTracker(fps=truth["fps"])
    received = []
    for k, boxes in enumerate(truth["frames"]):
        faces = [Face(np.array(b, float), 0.9) for b in boxes.values()]
        out = tracker.update(faces, tuple(truth["size"]))
        received.append((k, [(f.track_id, f.box) for f in out if f.track_id is not None]))
    scores = tracking_scores(truth["frames"], received)
    assert scores["num_switches"] == 0 and scores["idf1"] > 0.97, scores


@needs_ffmpeg
def test_an_hls_playlist_over_http_gives_every_frame_and_ends(clip, tmp_path, get_detector):
    """HLS (a VOD playlist of H.264 segments made by ffmpeg, served by a real HTTP server):
    a stream of known length is read like a file, every frame in order, ending cleanly."""
    path, truth = clip
    hls = tmp_path / "hls"
    hls.mkdir()
    subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(path), "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "10", "-hls_time", "1", "-hls_playlist_type", "vod",
                    "-f", "hls", str(hls / "clip.m3u8")], check=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1"], cwd=hls, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        stream = get_detector(MODEL).stream(f"http://127.0.0.1:{port}/clip.m3u8")
        codes = [read_frame_code(frame) for _, frame, _ in stream]
    finally:
        server.kill()
        server.wait()
    assert not stream.live and codes == list(range(len(truth["frames"])))
