"""Tone of voice relative to each speaker's own baseline.

:func:`prosody_frames` measures loudness (dB of RMS) and pitch (F0, Hz, by Praat's
autocorrelation method through ``praat-parselmouth``) every ``hop_s``. :func:`segment_tone` summarises each speech segment against the speaker's baseline
(median over their solo speech, so overlapped audio does not count): loudness in dB above
baseline, pitch in semitones above baseline, pitch variability. A segment is *raised* when both
loudness and pitch are well above the speaker's own baseline ("vocal arousal", never "anger").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ToneParams:
    hop_s: float = 0.02                 # frame hop, seconds
    fmin_hz: float = 65.0               # lowest F0 searched
    fmax_hz: float = 450.0              # highest F0 searched
    silence_threshold: float = 0.01     # Praat: frames whose peak is below this share of the
                                        # recording's peak are unvoiced (0.01 = 40 dB below it, so
                                        # a quiet, distant talker is still measured)
    voicing_threshold: float = 0.45     # Praat: autocorrelation strength (0-1) a frame needs to be
                                        # voiced (Praat's default)
    raised_loudness_db: float = 4.0     # raised voice: at least this many dB over own baseline
                                        # (and raised_pitch_st higher)
    raised_pitch_st: float = 2.0        # raised voice: at least this many semitones over own
                                        # baseline (and raised_loudness_db louder)
    min_voiced_frames: int = 10         # fewer voiced frames than this: no tone for the segment
    merge_gap_s: float = 3.0            # raised segments of one speaker this close form one passage
    arousal_window_s: float = 2.0       # the arousal curve's window: each point summarises this much
                                        # of the person's own solo speech
    arousal_step_s: float = 1.0         # the arousal curve's step between points

    def to_dict(self) -> dict:
        return asdict(self)


def prosody_frames(y: np.ndarray, sr: int, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Frame table ``t_s, loudness_db, f0_hz`` (f0 NaN when unvoiced) of mono ``y`` at ``sr`` Hz,
    one row every ``hop_s`` seconds from 0. Loudness: dB of the RMS over ``2 * hop_s``; pitch:
    Praat's ``To Pitch (ac)`` between ``fmin_hz`` and ``fmax_hz``, read at each frame's time."""
    import librosa
    import parselmouth

    hop = int(round(params.hop_s * sr))
    if len(y) < 2048:
        return pd.DataFrame({"t_s": [], "loudness_db": [], "f0_hz": []})
    rms = librosa.feature.rms(y=y, frame_length=2 * hop, hop_length=hop, center=True)[0]
    t = np.arange(len(rms)) * params.hop_s
    f0 = np.full(len(rms), np.nan)
    sound = parselmouth.Sound(np.asarray(y, dtype=np.float64), sampling_frequency=sr)
    if len(y) / sr >= 3 / params.fmin_hz:       # Praat needs three periods of the lowest pitch
        pitch = sound.to_pitch_ac(time_step=params.hop_s, pitch_floor=params.fmin_hz, pitch_ceiling=params.fmax_hz,
                                  silence_threshold=params.silence_threshold,
                                  voicing_threshold=params.voicing_threshold)
        hz = pitch.selected_array["frequency"]                    # 0 where unvoiced
        index = np.round((t - pitch.xs()[0]) / pitch.time_step).astype(int)
        inside = (index >= 0) & (index < len(hz))
        f0[inside] = np.where(hz[index[inside]] > 0, hz[index[inside]], np.nan)
    return pd.DataFrame({"t_s": np.round(t, 3), "loudness_db": 20 * np.log10(rms + 1e-6), "f0_hz": f0})


def _covered(times: np.ndarray, intervals: pd.DataFrame) -> np.ndarray:
    """Which of the sorted ``times`` (s) fall in any ``[start_s, end_s)`` of ``intervals``."""
    change = np.zeros(len(times) + 1, int)
    np.add.at(change, np.searchsorted(times, intervals.start_s.to_numpy(float), side="left"), 1)
    np.add.at(change, np.searchsorted(times, intervals.end_s.to_numpy(float), side="left"), -1)
    return np.cumsum(change)[:-1] > 0


def _solo_mask(times: np.ndarray, speech: pd.DataFrame, pid: str) -> np.ndarray:
    """Frames at the sorted ``times`` where ``pid`` speaks and nobody else does."""
    mine = speech.participant_id == pid
    return _covered(times, speech[mine]) & ~_covered(times, speech[~mine])


def _baseline(t: np.ndarray, loud: np.ndarray, f0: np.ndarray, speech: pd.DataFrame, pid: str):
    """``(solo mask, baseline loudness dB, baseline F0 Hz)`` of ``pid``: the medians over the
    frames where they speak alone (NaN when there are none)."""
    solo = _solo_mask(t, speech, pid)
    base_loud = np.nanmedian(loud[solo]) if solo.any() else np.nan
    voiced = solo & ~np.isnan(f0)
    base_f0 = np.nanmedian(f0[voiced]) if voiced.any() else np.nan
    return solo, base_loud, base_f0


def segment_tone(frames: pd.DataFrame, speech: pd.DataFrame, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """One row per speech segment: ``start_s, end_s, participant_id, loudness_db, f0_hz,
    loudness_delta_db, pitch_delta_st, pitch_range_st, raised`` (deltas against the speaker's
    own solo-speech median; NaN where the segment has too little solo voiced speech)."""
    columns = ["start_s", "end_s", "participant_id", "loudness_db", "f0_hz", "loudness_delta_db",
               "pitch_delta_st", "pitch_range_st", "raised"]
    if speech.empty or frames.empty:
        return pd.DataFrame(columns=columns)
    t = frames.t_s.to_numpy()
    loud = frames.loudness_db.to_numpy()
    f0 = frames.f0_hz.to_numpy()
    rows = []
    for pid, own in speech.groupby("participant_id"):
        solo, base_loud, base_f0 = _baseline(t, loud, f0, speech, pid)
        for seg in own.itertuples():
            inside = solo & (t >= seg.start_s) & (t < seg.end_s)
            v = inside & ~np.isnan(f0)
            enough = v.sum() >= params.min_voiced_frames
            seg_loud = float(np.median(loud[inside])) if inside.any() else np.nan
            seg_f0 = float(np.median(f0[v])) if enough else np.nan
            semitones = 12 * np.log2(f0[v] / base_f0) if enough else np.array([np.nan])
            d_loud = seg_loud - base_loud
            d_pitch = float(np.median(semitones))
            rows.append((seg.start_s, seg.end_s, pid, seg_loud, seg_f0, d_loud, d_pitch,
                         float(np.subtract(*np.nanpercentile(semitones, [90, 10]))) if enough else np.nan,
                         bool(enough and d_loud >= params.raised_loudness_db and d_pitch >= params.raised_pitch_st)))
    return pd.DataFrame(rows, columns=columns).sort_values("start_s", ignore_index=True)


def raised_passages(tone: pd.DataFrame, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Merge raised segments of one speaker into passages: ``start_s, end_s, participant_id,
    loudness_delta_db, pitch_delta_st`` (the passage's maxima)."""
    rows = []
    for pid, seg in tone[tone.raised.astype(bool)].groupby("participant_id"):
        current = None
        for r in seg.sort_values("start_s").itertuples():
            if current and r.start_s - current[1] <= params.merge_gap_s:
                current = [current[0], max(current[1], r.end_s), pid,
                           max(current[3], r.loudness_delta_db), max(current[4], r.pitch_delta_st)]
            else:
                if current:
                    rows.append(current)
                current = [r.start_s, r.end_s, pid, r.loudness_delta_db, r.pitch_delta_st]
        rows.append(current)
    return pd.DataFrame(rows, columns=["start_s", "end_s", "participant_id", "loudness_delta_db", "pitch_delta_st"]).sort_values("start_s", ignore_index=True)


AROUSAL_COLUMNS = ["participant_id", "t_s", "loudness_delta_db", "pitch_delta_st", "arousal"]


def arousal_curve(frames: pd.DataFrame, speech: pd.DataFrame, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Each person's vocal arousal over time: one row per ``arousal_step_s`` window of
    ``arousal_window_s`` in which they speak alone with at least ``min_voiced_frames`` voiced
    frames: ``participant_id, t_s`` (window centre, s), ``loudness_delta_db``, ``pitch_delta_st``
    (medians against the person's own baseline) and ``arousal``, the mean of the two deltas as
    shares of the raised-voice thresholds (1.0: as loud and as high as a raised voice; 0: their
    usual voice). Windows without enough of their voice have no row (not measured, not calm)."""
    if speech.empty or frames.empty:
        return pd.DataFrame(columns=AROUSAL_COLUMNS)
    t, loud, f0 = frames.t_s.to_numpy(), frames.loudness_db.to_numpy(), frames.f0_hz.to_numpy()
    step = max(1, int(round(params.arousal_step_s / params.hop_s)))
    width = max(1, int(round(params.arousal_window_s / params.hop_s)))
    starts = np.arange(0, max(len(t) - width + 1, 1), step)
    rows = []
    for pid in speech.participant_id.unique():
        solo, base_loud, base_f0 = _baseline(t, loud, f0, speech, pid)
        if not np.isfinite(base_loud) or not np.isfinite(base_f0):
            continue
        voiced = solo & ~np.isnan(f0)
        counts = np.concatenate([[0], np.cumsum(voiced)])
        for i in starts:
            j = min(i + width, len(t))
            if counts[j] - counts[i] < params.min_voiced_frames:
                continue
            v = voiced[i:j]
            d_loud = float(np.median(loud[i:j][solo[i:j]])) - base_loud
            d_pitch = float(np.median(12 * np.log2(f0[i:j][v] / base_f0)))
            arousal = (d_loud / params.raised_loudness_db + d_pitch / params.raised_pitch_st) / 2
            rows.append((pid, round(float(t[i] + (t[j - 1] - t[i]) / 2), 3), d_loud, d_pitch, arousal))
    return pd.DataFrame(rows, columns=AROUSAL_COLUMNS).sort_values(["participant_id", "t_s"], ignore_index=True)
