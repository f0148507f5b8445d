"""Who spoke when from one microphone (or call-recording track) per person.

Each track gets Silero voice activity of its own. A lapel or headset microphone also picks up
the other people in the room (bleed): their voices arrive on the wrong track much quieter than
on their own. A frame of track *i* counts as *i*'s speech only when it is also within
``dominance_db`` of the loudest other track at that moment and not far below the track's own
typical speech level. Overlaps come out exactly: two tracks can both be active.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.diarization import FRAME_S, DiarizationParams, _fill_short_runs, _fill_same_speaker_pauses, frames_to_segments, speech_mask


@dataclass(frozen=True)
class MultitrackParams:
    dominance_db: float = -10.0      # a track must be at most this far below the loudest other track
    own_floor_db: float = -20.0      # ...and at most this far below its own median speech level
    same_speaker_pause_s: float = 0.5  # pauses this short inside one person's speech are filled
    min_speech_s: float = 0.2        # shorter islands are dropped
    vad: DiarizationParams = DiarizationParams()

    def to_dict(self) -> dict:
        return asdict(self)


def frame_level_db(y: np.ndarray, sr: int) -> np.ndarray:
    """RMS level in dB per :data:`FRAME_S` frame, shape (ceil(len(y) / sr / FRAME_S),)."""
    hop = int(round(FRAME_S * sr))
    n = int(np.ceil(len(y) / hop))
    padded = np.pad(y, (0, n * hop - len(y)))
    rms = np.sqrt((padded.reshape(n, hop) ** 2).mean(1))
    return 20 * np.log10(rms + 1e-7)


def multitrack_activity(tracks: list[np.ndarray], sr: int, *, params: MultitrackParams = MultitrackParams()) -> np.ndarray:
    """Speech activity per track, shape (n_frames, n_tracks) bool, at :data:`FRAME_S`."""
    n = max(int(np.ceil(len(y) / sr / FRAME_S)) for y in tracks)
    level = np.full((n, len(tracks)), -140.0)
    vad = np.zeros((n, len(tracks)), bool)
    for j, y in enumerate(tracks):
        db = frame_level_db(y, sr)
        level[: len(db), j] = db
        mask = speech_mask(y, sr, params=params.vad)
        vad[: len(mask), j] = mask
    active = vad.copy()
    if len(tracks) > 1:
        for j in range(len(tracks)):
            others = np.delete(level, j, axis=1).max(1)
            # smooth levels over 0.1 s so single quiet frames inside words do not flicker
            own = np.convolve(level[:, j], np.ones(10) / 10, mode="same")
            other = np.convolve(others, np.ones(10) / 10, mode="same")
            floor = np.median(own[vad[:, j]]) + params.own_floor_db if vad[:, j].any() else np.inf
            active[:, j] &= (own >= other + params.dominance_db) & (own >= floor)
    for j in range(len(tracks)):
        labels = np.where(active[:, j], 0, -1)
        labels = _fill_same_speaker_pauses(labels, int(params.same_speaker_pause_s / FRAME_S))
        active[:, j] = _fill_short_runs(labels >= 0, value=True, max_len=int(params.min_speech_s / FRAME_S))
    return active


def diarize_tracks(tracks: list[np.ndarray], sr: int, ids: list[str], *, params: MultitrackParams = MultitrackParams()) -> pd.DataFrame:
    """Segments ``start_s, end_s, participant_id, confidence`` with track *j* named ``ids[j]``."""
    active = multitrack_activity(tracks, sr, params=params)
    parts = []
    for j, pid in enumerate(ids):
        seg = frames_to_segments(np.where(active[:, j], 0, -1))
        parts.append(seg.assign(participant_id=pid))
    return pd.concat(parts, ignore_index=True).sort_values(["start_s", "participant_id"], ignore_index=True)
