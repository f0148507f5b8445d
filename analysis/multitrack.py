"""Who spoke when from one microphone (or call-recording track) per person.

A lapel or headset microphone also picks up the other people in the room (bleed). First the
bleed is cancelled: for each pair of tracks, the gain at which track *k* leaks into track *j*
is estimated per frequency (a low percentile of |Y_j| / |Y_k| over the frames where *k* is
loudest, i.e. what *j* hears of *k* when *j* itself is quiet) and subtracted from *j*'s
spectrum. Each cleaned track then gets Silero voice activity of its own, kept where the track
is within ``dominance_db`` of the loudest other track and not far below its own typical speech
level. Overlaps come out exactly: two tracks can both be active.
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
    same_speaker_pause_s: float = 1.0  # pauses this short inside one person's speech are filled
    cancel: bool = True              # confirm activity on bleed-cancelled tracks
    confirm_s: float = 0.3           # how far (s) confirming speech on the cleaned track may be
    bleed_percentile: float = 10.0   # percentile of the per-frequency level ratio taken as bleed gain
    bleed_loud_share: float = 0.2    # the share of a track's loudest frames used to measure its bleed
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


def cancel_bleed(tracks: list[np.ndarray], *, params: "MultitrackParams") -> list[np.ndarray]:
    """Tracks with the other tracks' estimated leakage subtracted (magnitude spectra, 32 ms
    windows at 16 kHz, each track's own phase kept); same shapes as ``tracks``."""
    import librosa

    if len(tracks) < 2:
        return list(tracks)
    n = min(len(y) for y in tracks)
    spectra = [librosa.stft(y[:n], n_fft=512, hop_length=160) for y in tracks]
    mags = [np.abs(s) for s in spectra]
    cleaned = []
    for j, own in enumerate(mags):
        leak = np.zeros_like(own)
        for k, other in enumerate(mags):
            if k == j:
                continue
            energy = other.sum(0)
            loud = energy >= np.quantile(energy, 1 - params.bleed_loud_share)
            gain = np.percentile(own[:, loud] / (other[:, loud] + 1e-9), params.bleed_percentile, axis=1)
            leak += np.minimum(gain, 1.0)[:, None] * other
        clean = np.maximum(own - leak, 0) * np.exp(1j * np.angle(spectra[j]))
        y = librosa.istft(clean, hop_length=160, length=n).astype(np.float32)
        cleaned.append(np.pad(y, (0, len(tracks[j]) - n)))
    return cleaned


def multitrack_activity(tracks: list[np.ndarray], sr: int, *, params: MultitrackParams = MultitrackParams()) -> np.ndarray:
    """Speech activity per track, shape (n_frames, n_tracks) bool, at :data:`FRAME_S`.

    Voice activity and levels are measured on the tracks as recorded (bleed cancellation can
    thin out quiet speech such as a backchannel under a loud talker); a stretch of activity is
    kept only if the bleed-cancelled track also holds speech within ``confirm_s`` of it."""
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
        reach = max(1, int(params.confirm_s / FRAME_S))
        for j, y in enumerate(cancel_bleed(tracks, params=params) if params.cancel else []):
            clean = np.zeros(n, bool)
            mask = speech_mask(y, sr, params=params.vad)
            clean[: len(mask)] = mask
            active[:, j] &= _dilate(clean, reach)
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


def _dilate(mask: np.ndarray, reach: int) -> np.ndarray:
    """``mask`` widened by ``reach`` frames on both sides."""
    return np.convolve(mask.astype(float), np.ones(2 * reach + 1), mode="same") > 0


def diarize_tracks(tracks: list[np.ndarray], sr: int, ids: list[str], *, params: MultitrackParams = MultitrackParams()) -> pd.DataFrame:
    """Segments ``start_s, end_s, participant_id, confidence`` with track *j* named ``ids[j]``."""
    active = multitrack_activity(tracks, sr, params=params)
    parts = []
    for j, pid in enumerate(ids):
        seg = frames_to_segments(np.where(active[:, j], 0, -1))
        parts.append(seg.assign(participant_id=pid))
    return pd.concat(parts, ignore_index=True).sort_values(["start_s", "participant_id"], ignore_index=True)
