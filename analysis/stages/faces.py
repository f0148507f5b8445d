"""Faces: MediaPipe Face Landmarker blendshapes and head pose per participant over time.

Frames are sampled at ``FaceParams.sample_fps`` by timestamp. Faces are followed over time as
tracks and tracks are assigned to participants (:mod:`analysis.stages.face_tracks`): by seat,
left to right, in a room; by tile, row by row, in a video-call gallery; by face signature when
someone comes back or people swap places. A frame where a participant's face is not found, is
turned away (profile) or is partly hidden is a row with ``detected = False`` and NaN features:
missing, never neutral.
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
from analysis.stages import face_tracks
from capture.errors import PlaybackError
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
COLUMNS = ["participant_id", "t_s", "detected", "face_x", "face_y", "face_w"] + POSE + BLENDSHAPES + ["track_id"]
FEATURES = COLUMNS[3:-1]


@dataclass(frozen=True)
class FaceParams:
    sample_fps: float = 10.0              # frames analysed per second of video
    min_detection: float = 0.5            # face detection confidence
    min_presence: float = 0.5             # face presence confidence
    chunk_s: float = 300.0                # video analysed in stretches of this many seconds, on every core
                                          # (tracks are linked across them)
    max_yaw_deg: float = 45.0             # a face turned further than this (degrees; a profile) is missing
    max_hidden: float = 0.15              # a face with more than this share of its landmarks outside the frame
                                          # or in a blanked place (consent) is missing (occluded)
    track_max_gap_s: float = 0.5          # a track ends when its face is not seen for longer than this (never
                                          # less than 1.5 sampling intervals)
    track_max_shift: float = 1.0          # a face continues a track when its centre moved at most this many
                                          # face sizes since it was last seen
    track_min_samples: int = 3            # a track seen on fewer samples than this is a false detection (a
                                          # pattern taken for a face) and dropped
    layout: str = "auto"                  # "seats" (a room: participants listed left to right), "tiles" (a
                                          # video-call gallery: row by row from the top, left to right) or
                                          # "auto" (tiles when the faces seen together sit in two or more rows,
                                          # each in its own tile of a regular grid: ceil(sqrt(n)) columns, the
                                          # last row centred)
    tile_row_gap: float = 0.25            # faces whose centres differ in height by more than this share of the
                                          # frame height sit in different rows
    signature_max_yaw_deg: float = 30.0   # only faces turned less than this (degrees) give a face signature
    reid_min_separation: float = 3.0      # signatures re-identify people only when the participants' signatures
                                          # lie at least this many typical within-person distances apart
                                          # (measured on the session's own reference tracks)
    reid_max_distance: float = 2.5        # a track is re-identified as a participant only when its mean
                                          # signature lies within this many typical within-person distances of
                                          # theirs
    reid_min_margin: float = 1.0          # a track is re-identified only when its signature is also at least
                                          # this many typical within-person distances nearer to that participant
                                          # than to anyone else; otherwise it goes by position
    reid_min_frames: int = 5              # frontal samples a track needs to be re-identified, and the reference
                                          # tracks to give the participants' signatures

    def __post_init__(self):
        if self.layout not in face_tracks.LAYOUTS:
            raise PlaybackError(f"The face layout must be one of {', '.join(face_tracks.LAYOUTS)}, not {self.layout!r}.")

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


Regions = list[tuple[float, float, float, float]]     # (left, top, right, bottom), fractions of the frame


def visible_places(participant_ids: list[str], analysed: list[str], params: FaceParams) -> Regions | None:
    """The screen places of the ``analysed`` participants (consent), None when everyone is:
    seats ("seats"), the gallery's tiles ("tiles"; :func:`face_tracks.places`), or with "auto",
    which cannot know a gallery before faces are seen, only what is theirs under both layouts,
    so that no one who said no is analysed whichever it is (with two people the layouts are the
    same; with more, someone who did agree may lose part of their place: choose the layout)."""
    if set(analysed) >= set(participant_ids):
        return None
    layouts = {"seats": (False,), "tiles": (True,)}.get(params.layout, (False, True))
    regions: Regions | None = None
    for tiles in layouts:
        cells = [cell for cell, pid in zip(face_tracks.places(len(participant_ids), tiles), participant_ids)
                 if pid in analysed]
        regions = cells if regions is None else _intersection(regions, cells)
    return regions


def _intersection(a: Regions, b: Regions) -> Regions:
    """The places inside both ``a`` and ``b`` (each a union of rectangles), as rectangles."""
    out = []
    for left, top, right, bottom in a:
        for left2, top2, right2, bottom2 in b:
            cell = (max(left, left2), max(top, top2), min(right, right2), min(bottom, bottom2))
            if cell[0] < cell[2] and cell[1] < cell[3]:
                out.append(cell)
    return out


def _visible_mask(height: int, width: int, visible: Regions | None) -> np.ndarray:
    """Boolean (height, width) mask of the pixels inside the ``visible`` regions (all without)."""
    keep = np.zeros((height, width), bool) if visible is not None else np.ones((height, width), bool)
    for left, top, right, bottom in visible or []:
        rows = slice(int(round(top * height)), int(round(bottom * height)))
        keep[rows, int(round(left * width)):int(round(right * width))] = True
    return keep


def blank_outside(rgb: np.ndarray, visible: Regions | None) -> np.ndarray:
    """``rgb`` with every pixel outside the ``visible`` regions set to black, so a face model
    never sees the people sitting there."""
    if visible is None:
        return rgb
    out = rgb.copy()
    out[~_visible_mask(*rgb.shape[:2], visible)] = 0
    return out


class FaceDetector:
    """The Face Landmarker over sampled frames given in time order (its VIDEO mode follows faces
    from frame to frame, so one detector per stretch gives what one pass over it gives).
    :meth:`detect` returns the rows :func:`detect_faces` describes for one frame."""

    def __init__(self, *, n_participants: int, params: FaceParams = FaceParams(), visible: Regions | None = None):
        self.n_participants, self.params, self.visible = n_participants, params, visible
        self.landmarker_ = None
        self._open = contextlib.ExitStack()
        self._last_ms = -1
        self._keep = None

    def detect(self, t_s: float, rgb: np.ndarray) -> list[dict]:
        """Rows for the frame ``rgb`` (uint8, shape (h, w, 3)) at session time ``t_s`` (s)."""
        if self.landmarker_ is None:
            self._mp, landmarker = _landmarker(max(self.n_participants, 1), self.params)
            self.landmarker_ = self._open.enter_context(landmarker)
        mp = self._mp
        height, width = rgb.shape[:2]
        if self._keep is None or self._keep.shape != (height, width):
            self._keep = _visible_mask(height, width, self.visible)
        keep = self._keep
        rgb = blank_outside(rgb, self.visible)
        ts_ms = max(int(round(t_s * 1000)), self._last_ms + 1)  # VIDEO mode needs increasing times
        self._last_ms = ts_ms
        result = self.landmarker_.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                            data=np.ascontiguousarray(rgb)), ts_ms)
        rows = []
        for i, landmarks in enumerate(result.face_landmarks):
            points = np.array([(p.x, p.y, p.z) for p in landmarks])
            xs, ys = points[:, 0], points[:, 1]
            inside = (xs >= 0) & (xs < 1) & (ys >= 0) & (ys < 1)
            inside[inside] = keep[(ys[inside] * height).astype(int), (xs[inside] * width).astype(int)]
            row = {"t_s": t_s, "face_x": float(xs.mean()), "face_y": float(ys.mean()),
                   "face_w": float(xs.max() - xs.min()), "face_h": float(ys.max() - ys.min()),
                   "hidden": float(1 - inside.mean()), "signature": face_tracks.signature(points, width, height)}
            row.update(zip(POSE, _pose_degrees(result.facial_transformation_matrixes[i])))
            row.update({c.category_name: float(c.score) for c in result.face_blendshapes[i]})
            rows.append(row)
        return rows or [{"t_s": t_s}]

    def close(self) -> None:
        self._open.close()
        self.landmarker_ = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_faces(
    video, *, n_participants: int, origin_s: float = 0.0, params: FaceParams = FaceParams(),
    progress: Callable[[int], None] | None = None, visible: Regions | None = None,
    start_s: float = 0.0, end_s: float | None = None,
) -> pd.DataFrame:
    """Raw detections from ``video`` (a path or a seekable binary file): one row per face per
    sampled frame, columns ``t_s, face_x, face_y, face_w, face_h`` (centre and size as
    fractions of the frame), pose, blendshapes, ``hidden`` (share of landmarks outside the
    frame or in a blanked place) and ``signature`` (:func:`face_tracks.signature`); a sample
    without a face is a row with ``t_s`` only. With ``visible`` (:func:`visible_places`), only
    those regions of each frame reach the model (consent scopes); with ``start_s`` / ``end_s``
    (s), only that stretch of the video (one chunk of a session)."""
    rows = []
    with FaceDetector(n_participants=n_participants, params=params, visible=visible) as detector:
        for t_s, rgb in iter_video_frames(video, fps=params.sample_fps, origin_s=origin_s, start_s=start_s,
                                          end_s=end_s):
            rows += detector.detect(t_s, rgb)
            if progress:
                progress(1)
    return pd.DataFrame(rows)


def chunks(duration_s: float, params: FaceParams) -> list[tuple[float, float | None]]:
    """``(start_s, end_s)`` stretches of ``params.chunk_s`` seconds covering ``duration_s`` (the
    last one open-ended); each starts on the sampling grid, so together they sample the frames a
    single pass would. The split depends on the length only, never on the number of cores."""
    step = params.chunk_s if params.chunk_s > 0 else float("inf")
    starts = [k * step for k in range(int(np.ceil(max(duration_s, 1e-9) / step)))] if np.isfinite(step) else [0.0]
    return [(start, starts[i + 1] if i + 1 < len(starts) else None) for i, start in enumerate(starts)]


def assign_participants(detections: pd.DataFrame, participant_ids: list[str], params: FaceParams = FaceParams()
                         ) -> tuple[pd.DataFrame, dict]:
    """The frame table of :data:`COLUMNS` from :func:`detect_faces`' detections (one session,
    in time order, stretches concatenated): faces linked into tracks and tracks assigned to the
    participants (listed left to right, or row by row for tiles), one row per participant per
    sampled frame. ``detected`` is False with NaN features where that face was not found, was
    turned further than ``max_yaw_deg`` or more than ``max_hidden`` of it was hidden; a face
    turned or hidden keeps its box (``face_x, face_y, face_w``) and ``track_id`` (-1 where no
    face was found), so that it can still be blurred. Also returns facts for the run record
    (layout, tracks, re-identification)."""
    n = len(participant_ids)
    if not len(detections) or "face_x" not in detections:
        detections = pd.DataFrame({"t_s": detections["t_s"] if "t_s" in detections else []},
                                  columns=["t_s", "face_x", "face_y", "face_w", "face_h", "hidden", "signature", "yaw_deg"])
    if not detections.t_s.is_monotonic_increasing:        # stretches concatenated in order: sorted already
        detections = detections.sort_values("t_s", kind="stable", ignore_index=True)
    elif not detections.index.equals(pd.RangeIndex(len(detections))):
        detections = detections.reset_index(drop=True)
    x = detections.face_x.to_numpy(float)
    track = face_tracks.link_tracks(detections.t_s.to_numpy(float), x, detections.face_y.to_numpy(float),
                                    detections.face_w.to_numpy(float), detections.face_h.to_numpy(float),
                                    max_gap_s=max(params.track_max_gap_s, 1.5 / params.sample_fps),
                                    max_shift=params.track_max_shift, min_samples=params.track_min_samples)
    yaw = np.abs(detections.yaw_deg.to_numpy(float))
    frontal = (yaw <= params.signature_max_yaw_deg) & (detections.hidden.to_numpy(float) <= params.max_hidden)
    signatures = [s if ok else None for s, ok in zip(detections.signature, frontal)]
    tracked = pd.DataFrame({"t_s": detections.t_s, "track": track, "face_x": x, "face_y": detections.face_y,
                            "signature": signatures})
    person, info = face_tracks.assign_tracks(
        tracked, n, layout=params.layout, row_gap=params.tile_row_gap, min_separation=params.reid_min_separation,
        min_margin=params.reid_min_margin, max_distance=params.reid_max_distance, min_frames=params.reid_min_frames)
    usable = (yaw <= params.max_yaw_deg) & (detections.hidden.to_numpy(float) <= params.max_hidden)
    times = np.sort(detections.t_s.unique())
    # the table's rows in time order, each sample's participants in the order listed; built column
    # by column in that order (no per-row objects, no sorted copy: at 50 minutes each whole copy
    # of the table is about 30 MB)
    slot = np.full((len(times), n), -1, int)            # detection row of each participant at each sample
    chosen = np.flatnonzero(person >= 0)
    slot[np.searchsorted(times, detections.t_s.to_numpy(float)[chosen]), person[chosen]] = chosen
    rows = slot.ravel()
    seen = rows >= 0
    found = seen.copy()
    found[seen] = usable[rows[seen]]
    features = np.full((len(rows), len(FEATURES)), np.nan)
    box = ("face_x", "face_y", "face_w")                # kept for a turned or hidden face
    for j, column in enumerate(FEATURES):
        if column in detections:
            keep = seen if column in box else found
            features[keep, j] = detections[column].to_numpy(float)[rows[keep]]
    out = pd.DataFrame(features, columns=FEATURES, copy=False)
    out.insert(0, "participant_id", np.tile(np.asarray(participant_ids), len(times)))
    out.insert(1, "t_s", np.repeat(times.astype(float), n))
    out.insert(2, "detected", found)
    out["track_id"] = np.where(seen, track[np.maximum(rows, 0)], -1)
    return out, info


def face_frames(
    video, participant_ids: list[str], *, origin_s: float = 0.0, params: FaceParams = FaceParams(),
    progress: Callable[[int], None] | None = None, visible: Regions | None = None,
) -> pd.DataFrame:
    """The faces artifact: frame table of :data:`COLUMNS` for the listed participants (seated
    left to right, or tiles row by row; with ``visible``, everything outside their seats is
    blanked first)."""
    if not participant_ids:
        return pd.DataFrame(columns=COLUMNS)
    detections = detect_faces(video, n_participants=len(participant_ids), origin_s=origin_s,
                              params=params, progress=progress, visible=visible)
    return assign_participants(detections, participant_ids, params)[0]


# the columns of the faces table that mouth_activity reads (reading only these: a 50-minute
# session's whole table takes about 70 MB more)
MOUTH_COLUMNS = ["participant_id", "t_s", "jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight"]


def mouth_activity(faces: pd.DataFrame) -> pd.DataFrame:
    """Mouth opening per participant per sampled frame: ``participant_id, t_s, mouth_open``
    (``jawOpen`` plus the mean lower-lip drop, NaN where no face was found); ``faces`` needs
    :data:`MOUTH_COLUMNS` only."""
    if faces.empty:
        return pd.DataFrame(columns=["participant_id", "t_s", "mouth_open"])
    lower = (faces.mouthLowerDownLeft + faces.mouthLowerDownRight) / 2
    return pd.DataFrame({"participant_id": faces.participant_id, "t_s": faces.t_s,
                         "mouth_open": faces.jawOpen + lower})
