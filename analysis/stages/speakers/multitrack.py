"""Who spoke when from one microphone (or call-recording track) per person.

A lapel or headset microphone also picks up the other people in the room (bleed). Each track
gets Silero voice activity of its own (which also fires on the bleed: it ignores level), and
activity is kept where two tests agree that the sound is the track's own person:

* bleed cancellation: for each pair of tracks, the gain at which track *k* leaks into track *j*
  is estimated per frequency (a low percentile of |Y_j| / |Y_k| over the frames where *k* is
  loudest) and subtracted from *j*'s spectrum; the cleaned track must still hold speech nearby;
* level against expected bleed: how loud *j* reads while *k* talks alone is measured per pair
  (:func:`bleed_coupling`, dB), so at every frame the level *j* would have if its person were
  silent is known (its noise floor plus everyone else's level plus their coupling); the track
  must be ``bleed_margin_db`` above it. This replaces a fixed "not far below the loudest
  track" rule, which dropped quiet speech next to a loud talker and let a microphone's own
  non-speech noise (breathing, handling) mask everyone else.

Overlaps come out exactly: two tracks can both be active.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from analysis.core.frames import FRAME_S, fill_same_speaker_pauses, fill_short_runs, frame_level_db, frames_to_segments
from analysis.stages.speakers.diarization import DiarizationParams, speech_mask


@dataclass(frozen=True)
class MultitrackParams:
    """Parameters of the multi-track backend (units in the comments)."""

    bleed_margin_db: float = 6.0     # dB a track must be above its noise floor plus the bleed
                                     # expected from the others (10 ms levels smoothed over 0.1 s)
    coupling_percentile: float = 25.0  # percentile of the per-pair level difference taken as the
                                     # coupling (low: ignores frames where both people talk)
    noise_percentile: float = 10.0   # percentile of a track's 10 ms levels taken as its noise floor
    dominance_db: float = -10.0      # dB; where a pair's coupling cannot be measured (the other
                                     # track has < 0.5 s of solo speech) a track must be at most
                                     # this far below that track
    own_floor_db: float = -20.0      # dB; activity at most this far below the track's median
                                     # speech level
    cancel: bool = True              # confirm activity on bleed-cancelled tracks
    confirm_threshold: float = 0.35  # Silero speech probability that confirms speech on the
                                     # cleaned track (Silero's own default end-of-speech level,
                                     # 0.5 - 0.15; residual bleed reads 0.2-0.4)
    confirm_s: float = 0.3           # s; how far confirming speech on the cleaned track may be
    bleed_percentile: float = 10.0   # percentile of the per-frequency level ratio taken as bleed gain
    bleed_loud_share: float = 0.2    # the share of a track's loudest frames used to measure its bleed
    same_speaker_pause_s: float = 1.0  # s; pauses this short inside one person's speech are filled
    min_speech_s: float = 0.2        # s; shorter islands are dropped
    # Silero settings for every track, pinned here so the single-mic defaults can change without
    # moving this backend (no edge fitting: the level tests below decide what is the person's)
    vad: DiarizationParams = DiarizationParams(vad_threshold=0.2, fill_pause_s=0.15, min_speech_s=0.2, fit_edges=False)

    def to_dict(self) -> dict:
        return asdict(self)


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


def bleed_coupling(level: np.ndarray, vad: np.ndarray, percentile: float = 25.0) -> np.ndarray:
    """Typical level (dB) at which each track hears each other track, shape (n_tracks, n_tracks):
    entry ``[j, k]`` is a low ``percentile`` of ``level[:, j] - level[:, k]`` over the frames
    where *k* has voice activity and is the loudest track (there *j* is mostly silent and hears
    only *k*'s bleed; the low percentile ignores the frames where *j* talks over *k*); NaN where
    *k* has fewer than 0.5 s of such frames. ``level`` and ``vad`` have shape
    (n_frames, n_tracks)."""
    n = level.shape[1]
    out = np.full((n, n), np.nan)
    loudest = level.argmax(1)
    for k in range(n):
        frames = vad[:, k] & (loudest == k)
        if frames.sum() < 50:
            continue
        for j in range(n):
            if j != k:
                out[j, k] = np.percentile(level[frames, j] - level[frames, k], percentile)
    return out


def multitrack_activity(tracks: list[np.ndarray], sr: int, *, params: MultitrackParams = MultitrackParams()) -> np.ndarray:
    """Speech activity per track, shape (n_frames, n_tracks) bool, at :data:`FRAME_S`.

    Voice activity and levels are measured on the tracks as recorded (bleed cancellation can
    thin out quiet speech such as a backchannel under a loud talker); a stretch of activity is
    kept only if the bleed-cancelled track also holds speech within ``confirm_s`` of it, and
    where the track is at least ``bleed_margin_db`` louder than its noise floor plus the bleed
    expected from the others (their levels plus the measured :func:`bleed_coupling`)."""
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
            mask = speech_mask(y, sr, params=replace(params.vad, vad_threshold=params.confirm_threshold))
            clean[: len(mask)] = mask
            active[:, j] &= _dilate(clean, reach)
        # smooth levels over 0.1 s so single quiet frames inside words do not flicker
        smooth = np.apply_along_axis(lambda x: np.convolve(x, np.ones(10) / 10, mode="same"), 0, level)
        coupling = bleed_coupling(level, vad, params.coupling_percentile)
        coupling = np.nan_to_num(coupling, nan=params.dominance_db - params.bleed_margin_db)
        for j in range(len(tracks)):
            # what the track would read if its person were silent: its noise floor plus the
            # bleed of everyone else (powers add)
            noise = np.percentile(level[:, j], params.noise_percentile)
            heard = np.delete(smooth + coupling[j], j, axis=1)
            expected = 10 * np.log10(10 ** (noise / 10) + (10 ** (heard / 10)).sum(1))
            own = smooth[:, j]
            floor = np.median(own[vad[:, j]]) + params.own_floor_db if vad[:, j].any() else np.inf
            active[:, j] &= (own >= expected + params.bleed_margin_db) & (own >= floor)
    for j in range(len(tracks)):
        labels = np.where(active[:, j], 0, -1)
        labels = fill_same_speaker_pauses(labels, int(params.same_speaker_pause_s / FRAME_S))
        active[:, j] = fill_short_runs(labels >= 0, value=True, max_len=int(params.min_speech_s / FRAME_S))
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
