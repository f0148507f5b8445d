"""Faces: MediaPipe Face Landmarker blendshapes and head pose per participant over time.

Frames are sampled at ``FaceParams.sample_fps`` by timestamp. Participants are told apart by
seat: with N participants seated left to right, faces are matched to seats by their horizontal
position (a seat's position is learnt from frames where all N faces are visible). A frame where
a participant's face is not found is a row with ``detected = False`` and NaN features: missing,
never neutral.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Callable

import numpy as np
import pandas as pd

from analysis.core.models import FACE_LANDMARKER, resolve_model
from capture.media import iter_video_frames

BLENDSHAPES = [
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
]
POSE = ["yaw_deg", "pitch_deg", "roll_deg"]
COLUMNS = ["participant_id", "t_s", "detected", "face_x", "face_y", "face_w"] + POSE + BLENDSHAPES


@dataclass(frozen=True)
class FaceParams:
    sample_fps: float = 10.0        # frames analysed per second of video
    min_detection: float = 0.5      # face detection confidence
    min_presence: float = 0.5       # face presence confidence
    chunk_s: float = 300.0          # video analysed in stretches of this many seconds, on every core (tracking restarts at each)

    def to_dict(self) -> dict:
        return asdict(self)


def model_versions() -> dict:
    return {"mediapipe": version("mediapipe"), "face_landmarker": FACE_LANDMARKER.sha256[:16]}


def _landmarker(num_faces: int, params: FaceParams):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(resolve_model(FACE_LANDMARKER))),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=num_faces,
        min_face_detection_confidence=params.min_detection,
        min_face_presence_confidence=params.min_presence,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with _native_logs_silenced():  # MediaPipe/TFLite print start-up notes straight to fd 2
        return mp, vision.FaceLandmarker.create_from_options(options)


@contextlib.contextmanager
def _native_logs_silenced():
    """Send file descriptor 2 to /dev/null for native code's start-up chatter; Python's own
    errors are raised, not printed, so nothing a user needs is lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _pose_degrees(matrix: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from a 4x4 facial transformation matrix."""
    r = np.asarray(matrix)[:3, :3]
    yaw = np.degrees(np.arctan2(-r[2, 0], np.hypot(r[0, 0], r[1, 0])))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def blank_outside(rgb: np.ndarray, visible: list[tuple[float, float]] | None) -> np.ndarray:
    """``rgb`` with every column outside the ``visible`` bands (fractions of the width, left to
    right) set to black, so a face model never sees the people sitting there."""
    if visible is None:
        return rgb
    keep = np.zeros(rgb.shape[1], bool)
    for lo, hi in visible:
        keep[int(round(lo * rgb.shape[1])):int(round(hi * rgb.shape[1]))] = True
    out = rgb.copy()
    out[:, ~keep] = 0
    return out


def detect_faces(
    video, *, n_participants: int, origin_s: float = 0.0, params: FaceParams = FaceParams(),
    progress: Callable[[int], None] | None = None, visible: list[tuple[float, float]] | None = None,
    start_s: float = 0.0, end_s: float | None = None,
) -> pd.DataFrame:
    """Raw detections from ``video`` (a path or a seekable binary file): one row per face per
    sampled frame, columns ``t_s, face_x, face_y, face_w`` (centre and width as fractions of
    the frame), pose and blendshapes. With
    ``visible``, only those horizontal bands of each frame reach the model (consent scopes);
    with ``start_s`` / ``end_s`` (s), only that stretch of the video (one chunk of a session)."""
    mp, landmarker = _landmarker(max(n_participants, 1), params)
    rows = []
    last_ms = -1
    with landmarker:
        for t_s, rgb in iter_video_frames(video, fps=params.sample_fps, origin_s=origin_s, start_s=start_s,
                                          end_s=end_s):
            rgb = blank_outside(rgb, visible)
            ts_ms = max(int(round(t_s * 1000)), last_ms + 1)  # VIDEO mode needs increasing times
            last_ms = ts_ms
            result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)), ts_ms)
            for i, landmarks in enumerate(result.face_landmarks):
                xs = np.array([p.x for p in landmarks])
                ys = np.array([p.y for p in landmarks])
                row = {"t_s": t_s, "face_x": float(xs.mean()), "face_y": float(ys.mean()), "face_w": float(xs.max() - xs.min())}
                row.update(zip(POSE, _pose_degrees(result.facial_transformation_matrixes[i])))
                row.update({c.category_name: float(c.score) for c in result.face_blendshapes[i]})
                rows.append(row)
            if progress:
                progress(1)
            if not result.face_landmarks:
                rows.append({"t_s": t_s})
    return pd.DataFrame(rows)


def chunks(duration_s: float, params: FaceParams) -> list[tuple[float, float | None]]:
    """``(start_s, end_s)`` stretches of ``params.chunk_s`` seconds covering ``duration_s`` (the
    last one open-ended); each starts on the sampling grid, so together they sample the frames a
    single pass would. The split depends on the length only, never on the number of cores."""
    step = params.chunk_s if params.chunk_s > 0 else float("inf")
    starts = [k * step for k in range(int(np.ceil(max(duration_s, 1e-9) / step)))] if np.isfinite(step) else [0.0]
    return [(start, starts[i + 1] if i + 1 < len(starts) else None) for i, start in enumerate(starts)]


def assign_seats(detections: pd.DataFrame, participant_ids: list[str]) -> pd.DataFrame:
    """Match faces to participants seated left to right; one row per participant per sampled
    frame (``detected`` False with NaN features where that face was not found)."""
    n = len(participant_ids)
    times = np.sort(detections["t_s"].unique()) if len(detections) else np.zeros(0)
    faces = detections.dropna(subset=["face_x"]) if "face_x" in detections else detections.iloc[0:0]
    counts = faces.groupby("t_s").size() if len(faces) else pd.Series(dtype=int)
    full = counts[counts == n].index
    if len(full):
        seat_x = (faces[faces.t_s.isin(full)].sort_values(["t_s", "face_x"])
                  .assign(seat=lambda d: d.groupby("t_s").cumcount()).groupby("seat").face_x.median().to_numpy())
    else:
        seat_x = (np.arange(n) + 0.5) / n
    rows = []
    by_time = dict(tuple(faces.groupby("t_s"))) if len(faces) else {}
    for t in times:
        present = by_time.get(t)
        taken: dict[int, pd.Series] = {}
        if present is not None:
            for _, face in present.sort_values("face_x").iterrows():
                order = np.argsort(np.abs(seat_x - face.face_x))
                seat = next((int(s) for s in order if s not in taken), None)
                if seat is not None:
                    taken[seat] = face
        for seat, pid in enumerate(participant_ids):
            face = taken.get(seat)
            row = {"participant_id": pid, "t_s": float(t), "detected": face is not None}
            if face is not None:
                row.update({c: face.get(c, np.nan) for c in COLUMNS[3:]})
            rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS)
    for column in COLUMNS[3:]:
        out[column] = out[column].astype(float)
    out["detected"] = out["detected"].astype(bool)
    return out


def face_frames(
    video, participant_ids: list[str], *, origin_s: float = 0.0, params: FaceParams = FaceParams(),
    progress: Callable[[int], None] | None = None, visible: list[tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """The faces artifact: frame table of :data:`COLUMNS` for the listed participants (seated
    left to right; with ``visible``, everything outside their seats is blanked first)."""
    if not participant_ids:
        return pd.DataFrame(columns=COLUMNS)
    detections = detect_faces(video, n_participants=len(participant_ids), origin_s=origin_s,
                              params=params, progress=progress, visible=visible)
    return assign_seats(detections, participant_ids)


def mouth_activity(faces: pd.DataFrame) -> pd.DataFrame:
    """Mouth opening per participant per sampled frame: ``participant_id, t_s, mouth_open``
    (``jawOpen`` plus the mean lower-lip drop, NaN where no face was found)."""
    if faces.empty:
        return pd.DataFrame(columns=["participant_id", "t_s", "mouth_open"])
    lower = (faces.mouthLowerDownLeft + faces.mouthLowerDownRight) / 2
    return pd.DataFrame({"participant_id": faces.participant_id, "t_s": faces.t_s,
                         "mouth_open": faces.jawOpen + lower})
