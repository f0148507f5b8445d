"""Putting names on voice clusters, and faces to voices.

Without usable faces, clusters are named in order of first speech (the first voice heard is the
first listed participant). With faces, each participant's mouth activity (Face Landmarker jaw and
lower-lip blendshapes) is compared with each voice cluster's activity: the assignment that best
matches mouths to voices names the clusters, and speech during which a second person's mouth is
clearly moving is attributed to both (overlapped speech a single-microphone clustering misses).
Each person's "clearly moving" level is learnt from the same session: between their mouth
activity while their own voice is heard and while another voice is heard.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.optimize import linear_sum_assignment

from analysis.diarization import FRAME_S, FrameDiarization, activity_to_segments
from analysis.expressions import mouth_activity

MIN_FACE_COVERAGE = 0.5     # share of sampled frames in which a face must be seen to use it
MOUTH_SMOOTH_S = 0.3        # mouth movement is syllabic: max over this window, then average
MIN_OVERLAP_S = 0.3         # shorter second-speaker stretches are ignored
MIN_SEPARATION = 0.5        # a person's mouth must separate own-voice from other-voice speech by
                            # this many of their own spread units before it is trusted


def _mouth_on_frames(faces: pd.DataFrame, ids: list[str], n_frames: int) -> np.ndarray | None:
    """Mouth activity per participant on the 10 ms grid, shape (n_frames, people); None when
    some participant's face is seen too rarely for audio-visual use."""
    mouth = mouth_activity(faces)
    if mouth.empty:
        return None
    grid = np.arange(n_frames) * FRAME_S
    out = np.zeros((n_frames, len(ids)))
    for j, pid in enumerate(ids):
        m = mouth[mouth.participant_id == pid].sort_values("t_s")
        if m.mouth_open.notna().mean() < MIN_FACE_COVERAGE:
            return None
        m = m.dropna()
        out[:, j] = np.interp(grid, m.t_s.to_numpy(), m.mouth_open.to_numpy())
    width = max(1, int(MOUTH_SMOOTH_S / FRAME_S))
    return uniform_filter1d(maximum_filter1d(out, width, axis=0), width, axis=0)


def name_speakers(frames: FrameDiarization, ids: list[str], faces: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Segments ``start_s, end_s, participant_id, confidence`` named with participant ids, and
    a description of the backend used."""
    labels = frames.labels
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    n = len(labels)
    mouth = _mouth_on_frames(faces, ids, n) if k and len(faces) else None
    audio_only = "single microphone: Silero VAD + Resemblyzer embeddings + k-means"
    if mouth is None or k != len(ids):
        active = np.zeros((n, len(ids)), bool)
        for c in range(min(k, len(ids))):
            active[:, c] = labels == c
        return activity_to_segments(active, ids, frames.confidence), audio_only + (
            ", named in order of first speech" if len(ids) > 1 else "")
    speech = labels >= 0
    # how much more each mouth moves while each cluster is heard than during other speech
    gain = np.zeros((k, len(ids)))
    for c in range(k):
        own, other = labels == c, speech & (labels != c)
        if own.any() and other.any():
            gain[c] = mouth[own].mean(0) - mouth[other].mean(0)
    rows, cols = linear_sum_assignment(-gain)
    person_of = dict(zip(rows, cols))
    active = np.zeros((n, len(ids)), bool)
    for c, j in person_of.items():
        active[:, j] = labels == c
    added = 0.0
    for j in range(len(ids)):
        own = active[:, j]
        other = speech & ~own
        if own.sum() < 100 or other.sum() < 100:
            continue
        on, off = np.median(mouth[own, j]), np.median(mouth[other, j])
        spread = np.subtract(*np.percentile(mouth[own, j], [75, 25])) + 1e-6
        if (on - off) / spread < MIN_SEPARATION:
            continue  # this face does not tell speech from silence well enough to add overlaps
        moving = other & (mouth[:, j] > (on + off) / 2)
        moving = _drop_short(moving, int(MIN_OVERLAP_S / FRAME_S))
        added += moving.sum() * FRAME_S
        active[:, j] |= moving
    return activity_to_segments(active, ids, frames.confidence), (
        f"audio-visual: voice clusters named by mouth activity; {added:.1f} s of overlapped speech added from faces")


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    change = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    for start, end in zip(change[::2], change[1::2]):
        if end - start < min_len:
            out[start:end] = False
    return out
