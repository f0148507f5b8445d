"""What a smaller or cropped image given to the Face Landmarker costs and saves (the faces stage's
choice of input), on the bundled sample's frames scaled to 1280x720.

    .venv/bin/python -m benchmarks.face_input [--frames 150]

For each input: milliseconds per frame for the landmarker alone (median over the frames), faces
found, and how far the blendshapes and the face centres move from the full-size frame's
(mean absolute difference over the frames where both found every face). Inputs: the full
1280x720 frame (what the stage gives it), half size (640x360), and a crop around where the faces
were in the first second (their union box with half a face of margin; a crop around the last
known faces, which tracking would give).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def run(frames: list[np.ndarray], n_faces: int, box=None) -> tuple[list[float], list[list[tuple]]]:
    """Per-frame landmarker seconds, and per frame the faces found as (centre x, y in the full
    frame's shares, blendshape scores), left to right."""
    import mediapipe as mp

    from analysis.stages.faces import FaceParams, _landmarker

    _, landmarker = _landmarker(n_faces, FaceParams())
    times, found = [], []
    with landmarker:
        for i, rgb in enumerate(frames):
            x0, y0, x1, y1 = box or (0, 0, rgb.shape[1], rgb.shape[0])
            image = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            started = time.perf_counter()
            result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=image), i * 100)
            times.append(time.perf_counter() - started)
            faces = []
            for marks, shapes in zip(result.face_landmarks, result.face_blendshapes or []):
                xs = np.array([m.x for m in marks]) * (x1 - x0) + x0
                ys = np.array([m.y for m in marks]) * (y1 - y0) + y0
                faces.append((xs.mean() / rgb.shape[1], ys.mean() / rgb.shape[0], np.array([s.score for s in shapes])))
            found.append(sorted(faces, key=lambda f: f[0]))
    return times, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    import cv2

    from capture.media import iter_video_frames

    video = ROOT / "sample_data" / "session.mp4"
    frames = []
    for _t, rgb in iter_video_frames(video, fps=10.0):
        frames.append(cv2.resize(rgb, (1280, 720), interpolation=cv2.INTER_LINEAR))
        if len(frames) >= args.frames:
            break
    full_t, full = run(frames, 2)
    first = [f for found in full[:10] for f in found]
    width = 0.25 * 1280                                       # a face is about a quarter of the width here
    xs, ys = [f[0] * 1280 for f in first], [f[1] * 720 for f in first]
    box = (int(max(0, min(xs) - width)), int(max(0, min(ys) - width)),
           int(min(1280, max(xs) + width)), int(min(720, max(ys) + width)))
    half = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in frames]
    half_t, half_found = run(half, 2)
    crop_t, crop_found = run(frames, 2, box)
    print(f"command: python -m benchmarks.face_input --frames {args.frames}")
    print(f"{len(frames)} frames of the sample at 10 frames/s, scaled to 1280x720; crop {box}")
    print("| input | ms per frame (median) | frames with both faces | blendshape diff (mean abs) | centre diff |")
    print("|---|---|---|---|---|")
    for name, t, found in (("full 1280x720", full_t, full), ("half 640x360", half_t, half_found),
                           ("crop around the faces", crop_t, crop_found)):
        both = [(a, b) for a, b in zip(full, found) if len(a) == 2 and len(b) == 2]
        shapes = [np.abs(fa[2] - fb[2]).mean() for a, b in both for fa, fb in zip(a, b)]
        centres = [abs(fa[0] - fb[0]) + abs(fa[1] - fb[1]) for a, b in both for fa, fb in zip(a, b)]
        print(f"| {name} | {1000 * statistics.median(t):.1f} | {sum(len(f) == 2 for f in found)} / {len(found)} | "
              f"{np.mean(shapes):.4f} | {np.mean(centres):.4f} |")


if __name__ == "__main__":
    main()
