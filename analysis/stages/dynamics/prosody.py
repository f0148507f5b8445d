"""Competitive or cooperative: an interrupter's tone at their start against their usual voice.

Tone frames: ``t_s`` (s), ``loudness_db`` (dB), ``f0_hz`` (Hz, NaN or <= 0 when unvoiced),
optionally ``participant_id`` (per-person tracks; without it, the single mixture track).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stages.dynamics.model import DynamicsInputError, DynamicsParams
from analysis.stages.tone import voices

TONE_FRAME_COLUMNS = ("t_s", "loudness_db", "f0_hz")
# at least this many measurable stretch starts to use their median as the usual voice
MIN_USUAL_STARTS = 3


def check_tone_frames(tone_frames: pd.DataFrame | None) -> pd.DataFrame | None:
    """``tone_frames`` sorted by time, or None without frames; raises
    :class:`DynamicsInputError` for missing columns."""
    if tone_frames is None or len(tone_frames) == 0:
        return None
    need = set(TONE_FRAME_COLUMNS)
    if not need <= set(tone_frames.columns):
        raise DynamicsInputError(
            f"tone_frames lacks column(s) {sorted(need - set(tone_frames.columns))}; expected t_s, loudness_db, f0_hz "
            "(and optionally participant_id)."
        )
    frames = tone_frames.sort_values("t_s", kind="stable")
    if "participant_id" in frames.columns:
        frames = frames.assign(participant_id=frames.participant_id.astype(str))
    return frames


def own_frames(tone_frames: pd.DataFrame, raw: dict) -> dict:
    """``pid -> (t, loudness, f0)`` of the frames that measure the person's voice (``raw``: pid
    -> intervals, s), by the tone stage's rule (:func:`analysis.stages.tone.voices`): their
    speech on their own track, or where they talk alone on a shared one (overlapped audio is
    louder simply because two people talk)."""
    speech = pd.DataFrame([(a, b, pid) for pid, (s, e) in raw.items() for a, b in zip(s, e)],
                          columns=["start_s", "end_s", "participant_id"])
    return {pid: (v.t[v.heard], v.loud[v.heard], v.f0[v.heard]) for pid, v in voices(tone_frames, speech).items()}


def _voiced(f0: np.ndarray) -> np.ndarray:
    """The voiced pitch values (Hz) of ``f0``."""
    return f0[np.isfinite(f0) & (f0 > 0)]


class OnsetTone:
    """Each person's *usual start voice* and the comparison of an interrupter's start with it.

    Usual start voice (loudness dB, pitch Hz): the median over all the person's stretches of the
    same measure taken at each stretch's start (starts are louder than tails: compare like with
    like); with fewer than :data:`MIN_USUAL_STARTS` measurable starts, the median over all their
    frames. The frames are the tone stage's (:func:`analysis.stages.tone.voices`: one rule for
    which frames measure a person); only where the level is read differs. Comparing a start with
    the person's whole-speech median (the raised-voice baseline) made the call worse on the
    composed benchmark (``python -m benchmarks.dynamics``: competitive accuracy 0.79 -> 0.63 on
    the per-person tracks), so starts are compared with starts.
    """

    def __init__(self, tone_frames: pd.DataFrame, raw: dict, stretch: dict, params: DynamicsParams):
        self.p = params
        self.frames = own_frames(tone_frames, raw)   # pid -> (t, loud, f0) of their own usable frames
        self.usual_start_voice = {               # pid -> (median loudness dB, median f0 Hz)
            pid: self._usual_start_voice(t, loud, f0, stretch.get(pid, (np.zeros(0), np.zeros(0)))[0])
            for pid, (t, loud, f0) in self.frames.items()
        }

    def _usual_start_voice(self, t, loud, f0, stretch_starts) -> tuple[float, float]:
        """(loudness dB, pitch Hz) of one person's usual start voice, NaN when not measurable."""
        n_min = self.p.tone_min_frames
        starts_loud, starts_f0 = [], []
        for st in stretch_starts:
            lo, hi = self._window(t, st)
            if hi - lo >= n_min:
                starts_loud.append(float(np.nanmedian(loud[lo:hi])))
                v = _voiced(f0[lo:hi])
                if v.size >= n_min:
                    starts_f0.append(float(np.median(v)))
        voiced = _voiced(f0)
        base_loud = (np.median(starts_loud) if len(starts_loud) >= MIN_USUAL_STARTS else
                     float(np.nanmedian(loud)) if loud.size >= n_min else np.nan)
        base_f0 = (np.median(starts_f0) if len(starts_f0) >= MIN_USUAL_STARTS else
                   float(np.median(voiced)) if voiced.size >= n_min else np.nan)
        return float(base_loud), float(base_f0)

    def _window(self, t: np.ndarray, start: float, end: float = np.inf) -> tuple[int, int]:
        """Index range of the first tone_window_s (s) of usable frames from ``start`` (before ``end``)."""
        lo = int(np.searchsorted(t, start, side="left"))
        hi = int(np.searchsorted(t, end, side="left"))
        if lo >= hi:
            return lo, lo
        return lo, min(hi, int(np.searchsorted(t, t[lo] + self.p.tone_window_s, side="left")))

    def compare(self, pid: str, start: float, end: float) -> tuple[float, float, str | None]:
        """(loudness delta dB, f0 delta semitones, style or None) of pid's speech in [start, end)
        s against their usual start voice; style None when not measurable."""
        if pid not in self.frames:
            return np.nan, np.nan, None
        t, loud, f0 = self.frames[pid]
        lo, hi = self._window(t, start, end)
        if hi - lo < self.p.tone_min_frames:
            return np.nan, np.nan, None
        base_loud, base_f0 = self.usual_start_voice[pid]
        d_loud = float(np.nanmedian(loud[lo:hi])) - base_loud if np.isfinite(base_loud) else np.nan
        seg_f0 = _voiced(f0[lo:hi])
        d_f0 = (
            float(12 * np.log2(np.median(seg_f0) / base_f0))
            if seg_f0.size >= self.p.tone_min_frames and np.isfinite(base_f0) else np.nan
        )
        if not (np.isfinite(d_loud) or np.isfinite(d_f0)):
            return d_loud, d_f0, None
        competitive = (np.isfinite(d_loud) and d_loud >= self.p.competitive_loudness_db) or (
            np.isfinite(d_f0) and d_f0 >= self.p.competitive_f0_semitones
        )
        return d_loud, d_f0, "competitive" if competitive else "cooperative"


def onset_tone(tone_frames: pd.DataFrame | None, raw: dict, stretch: dict, params: DynamicsParams) -> OnsetTone | None:
    """The tone comparison for a session, or None without tone frames (style not available)."""
    frames = check_tone_frames(tone_frames)
    return None if frames is None else OnsetTone(frames, raw, stretch, params)
