"""Check the synthetic session's video with the real MediaPipe Face Landmarker.

Run from the repository root, after ``sample_data/generate.py``::

    .venv/bin/python sample_data/check_faces.py \
        [--video sample_data/session.mp4] [--model ../shared/models/face_landmarker.task]

``check_with_face_landmarker(video_path, model_path)`` decodes the video with PyAV, samples it
at 5 fps, runs Face Landmarker (VIDEO mode, 2 faces, blendshapes), assigns each detected face
to Alex (image left half) or Sam (image right half), and compares the blendshapes with the
ground truth in ``truth/`` next to the video:

- detection rate per person;
- ``jawOpen`` (and ``mouthClose``, ``mouthFunnel``) while that person speaks (inside an RTTM
  region) vs while silent;
- ``mouthSmileLeft`` / ``mouthSmileRight`` inside each scripted smile vs that person's frames
  with no expression, and for the one-sided smile which side rises. MediaPipe names sides from
  the subject's point of view: the subject's LEFT mouth corner appears on the IMAGE RIGHT.
- ``browDownLeft/Right`` inside the frown vs outside (reported, not required: MediaPipe's
  brow-down scores stay near 0.01 on the drawn frown).

It prints the figures and returns them as a dict (with ``ok`` flags for each requirement).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

SAMPLE_FPS = 5.0
PEOPLE = ("Alex", "Sam")
KEYS = ("jawOpen", "mouthClose", "mouthFunnel", "mouthSmileLeft", "mouthSmileRight",
        "browDownLeft", "browDownRight", "eyeBlinkLeft", "eyeBlinkRight")


def _landmarker(model_path: str, video_mode: bool = True):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import (FaceLandmarker, FaceLandmarkerOptions,
                                               RunningMode)
    opts = FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        running_mode=RunningMode.VIDEO if video_mode else RunningMode.IMAGE,
        num_faces=2, output_face_blendshapes=True)
    return mp, FaceLandmarker.create_from_options(opts)


def _faces(result, width: int) -> dict:
    """{person: {blendshape: score}} for the faces in one Face Landmarker result."""
    out = {}
    for lms, bss in zip(result.face_landmarks, result.face_blendshapes or []):
        x = float(np.mean([p.x for p in lms]))
        name = "Alex" if x < 0.5 else "Sam"
        if name in out:          # two faces on one side: keep the first, count as missing
            continue
        out[name] = {b.category_name: float(b.score) for b in bss}
    return out


def detect_image(rgb: np.ndarray, model_path: str) -> dict:
    """Blendshapes per person for a single RGB image (IMAGE mode); for quick iteration."""
    mp, lm = _landmarker(model_path, video_mode=False)
    with lm:
        res = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    return _faces(res, rgb.shape[1])


def _read_truth(truth_dir: Path):
    regions = {p: [] for p in PEOPLE}
    for line in (truth_dir / "speech.rttm").read_text().splitlines():
        f = line.split()
        s, d, who = float(f[3]), float(f[4]), f[7]
        regions[who].append((s, s + d))
    with open(truth_dir / "events.csv", newline="") as fh:
        events = list(csv.DictReader(fh))
    return regions, events


def _inside(t: float, spans) -> bool:
    return any(s <= t <= e for s, e in spans)


def check_with_face_landmarker(video_path, model_path, truth_dir=None, verbose=True) -> dict:
    import av

    video_path = Path(video_path)
    truth_dir = Path(truth_dir) if truth_dir else video_path.parent / "truth"
    regions, events = _read_truth(truth_dir)
    mp, lm = _landmarker(model_path)
    rows = []            # (t, person, scores or None)
    n_sampled = 0
    next_t = 0.0
    with av.open(str(video_path)) as cont, lm:
        stream = cont.streams.video[0]
        for frame in cont.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t + 1e-6 < next_t:
                continue
            next_t += 1.0 / SAMPLE_FPS
            rgb = frame.to_ndarray(format="rgb24")
            res = lm.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb),
                                      int(round(t * 1000)))
            faces = _faces(res, rgb.shape[1])
            n_sampled += 1
            for p in PEOPLE:
                rows.append((t, p, faces.get(p)))

    report: dict = {"video": str(video_path), "frames_sampled": n_sampled, "people": {}}
    ok = True
    for p in PEOPLE:
        mine = [(t, sc) for t, q, sc in rows if q == p]
        det = [(t, sc) for t, sc in mine if sc is not None]
        rate = len(det) / max(1, len(mine))
        expr = [(float(e["start_s"]), float(e["end_s"]), e["label"]) for e in events
                if e["kind"] == "expression" and e["participant"] == p]
        any_expr = [(s - 0.3, e + 0.3) for s, e, _ in expr]
        speaking = [sc for t, sc in det if _inside(t, regions[p])]
        # silent: not speaking and at least 0.1 s away from speech, no expression
        silent = [sc for t, sc in det if not _inside(t, [(s - 0.1, e + 0.1) for s, e in regions[p]])
                  and not _inside(t, any_expr)]
        neutral = [sc for t, sc in det if not _inside(t, any_expr)]

        def mean(rows_, k):
            return round(float(np.mean([r[k] for r in rows_])), 3) if rows_ else float("nan")

        person = {
            "detection_rate": round(rate, 3),
            "n_speaking": len(speaking), "n_silent": len(silent),
            "speaking": {k: mean(speaking, k) for k in ("jawOpen", "mouthClose", "mouthFunnel")},
            "silent": {k: mean(silent, k) for k in ("jawOpen", "mouthClose", "mouthFunnel")},
            "neutral_smile": {k: mean(neutral, k) for k in ("mouthSmileLeft", "mouthSmileRight")},
            "neutral_browDown": {k: mean(neutral, k) for k in ("browDownLeft", "browDownRight")},
            "expressions": [],
        }
        person["ok_detection"] = rate >= 0.95
        person["ok_jaw"] = person["speaking"]["jawOpen"] > person["silent"]["jawOpen"] + 0.1
        for s, e, label in expr:
            inside = [sc for t, sc in det if s <= t <= e]
            item = {"label": label, "start_s": s, "end_s": e, "n": len(inside)}
            for k in ("mouthSmileLeft", "mouthSmileRight", "browDownLeft", "browDownRight",
                      "jawOpen"):
                item[k] = mean(inside, k)
            base_l = person["neutral_smile"]["mouthSmileLeft"]
            base_r = person["neutral_smile"]["mouthSmileRight"]
            if label == "smile":
                item["ok"] = (item["mouthSmileLeft"] > base_l + 0.2
                              and item["mouthSmileRight"] > base_r + 0.2)
            elif label == "one_sided_smile":
                diff = item["mouthSmileRight"] - item["mouthSmileLeft"]
                item["raised_side_subject"] = "right" if diff > 0 else "left"
                item["left_minus_right"] = round(-diff, 3)
                item["ok"] = abs(diff) > 0.2
            elif label == "frown":
                item["ok"] = (item["browDownLeft"] + item["browDownRight"]) / 2 > \
                    (person["neutral_browDown"]["browDownLeft"]
                     + person["neutral_browDown"]["browDownRight"]) / 2 + 0.1
            person["expressions"].append(item)
        ok = ok and person["ok_detection"] and person["ok_jaw"] and all(
            x["ok"] for x in person["expressions"] if x["label"] != "frown")
        report["people"][p] = person
    report["ok"] = bool(ok)
    if verbose:
        print(json.dumps(report, indent=2))
    return report


def main(argv=None) -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="Check the sample video with Face Landmarker.")
    ap.add_argument("--video", type=Path, default=here / "session.mp4")
    ap.add_argument("--model", type=Path,
                    default=here.parent.parent / "shared" / "models" / "face_landmarker.task")
    args = ap.parse_args(argv)
    rep = check_with_face_landmarker(args.video, args.model)
    raise SystemExit(0 if rep["ok"] else 1)


if __name__ == "__main__":
    main()
