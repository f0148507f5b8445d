"""Facial expression candidates from the faces frame table, per person against their own baseline.

Each signal is a blendshape score minus that person's median over the session (their neutral
baseline), so a person whose resting face scores high is not flagged all the time. Frames
without a detected face are missing, never neutral: a run of a signal stops at them.

Signals (labels in the events table):
- ``smile``: both mouth corners raised (mean of ``mouthSmileLeft``/``Right``);
- ``one_sided_smile``: one corner raised much more than the other, a *contempt candidate*
  (MediaPipe's Left/Right are the subject's own left/right);
- ``frown``: brows lowered (mean of ``browDownLeft``/``Right``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ExpressionParams:
    smile_rise: float = 0.35           # smile score above own baseline (scores are 0-1)
    one_sided_asymmetry: float = 0.25  # |left - right| smile difference (baseline-corrected)
    frown_rise: float = 0.30           # brow-down score above own baseline
    min_duration_s: float = 0.5        # shorter runs are ignored
    bridge_gap_s: float = 0.3          # runs separated by less than this are joined

    def to_dict(self) -> dict:
        return asdict(self)


def _runs(times: np.ndarray, active: np.ndarray, *, bridge_s: float, min_s: float, step_s: float):
    """(start_s, end_s) runs of ``active`` over sampled ``times`` (seconds)."""
    out: list[list[float]] = []
    for t, on in zip(times, active):
        if not on:
            continue
        if out and t - out[-1][1] <= bridge_s + step_s + 1e-6:
            out[-1][1] = t + step_s
        else:
            out.append([t, t + step_s])
    return [(round(s, 3), round(e, 3)) for s, e in out if e - s >= min_s]


def expression_events(faces: pd.DataFrame, *, params: ExpressionParams = ExpressionParams()) -> pd.DataFrame:
    """Events ``start_s, end_s, participant_id, label, value, confidence`` where ``value`` is the
    peak baseline-corrected score and ``confidence`` the share of frames with a face in the span."""
    columns = ["start_s", "end_s", "participant_id", "label", "value", "confidence"]
    if faces.empty or not faces.detected.any():
        return pd.DataFrame(columns=columns)
    rows = []
    for pid, f in faces.groupby("participant_id"):
        f = f.sort_values("t_s")
        times = f.t_s.to_numpy()
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
        seen = f.detected.to_numpy()
        if not seen.any():
            continue
        base = f[seen].median(numeric_only=True)
        left = (f.mouthSmileLeft - base.mouthSmileLeft).to_numpy()
        right = (f.mouthSmileRight - base.mouthSmileRight).to_numpy()
        smile = (left + right) / 2
        asym = np.abs(left - right)
        frown = ((f.browDownLeft + f.browDownRight) / 2 - (base.browDownLeft + base.browDownRight) / 2).to_numpy()
        signals = {
            "smile": (smile, seen & (smile >= params.smile_rise) & (asym < params.one_sided_asymmetry)),
            "one_sided_smile": (asym, seen & (asym >= params.one_sided_asymmetry) & (np.maximum(left, right) >= params.smile_rise / 2)),
            "frown": (frown, seen & (frown >= params.frown_rise)),
        }
        for label, (score, active) in signals.items():
            for start, end in _runs(times, active, bridge_s=params.bridge_gap_s, min_s=params.min_duration_s, step_s=step):
                span = (times >= start) & (times < end)
                rows.append((start, end, pid, label, float(np.nanmax(score[span])), float(seen[span].mean())))
    return pd.DataFrame(rows, columns=columns).sort_values("start_s", ignore_index=True)
