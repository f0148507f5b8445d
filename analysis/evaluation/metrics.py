"""Scoring results against reference annotations (used by tests and benchmarks).

Diarization error rate comes from ``pyannote.metrics`` with no collar and overlapped speech
scored; events are matched one-to-one by kind, people and start time within a tolerance.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def annotation(segments: pd.DataFrame, label_column: str = "participant_id"):
    """pyannote ``Annotation`` from a table with ``start_s, end_s`` and a label column."""
    from pyannote.core import Annotation, Segment

    result = Annotation()
    for i, row in enumerate(segments.itertuples()):
        if row.end_s > row.start_s:
            result[Segment(float(row.start_s), float(row.end_s)), i] = getattr(row, label_column)
    return result


def read_rttm(path: Path | str) -> pd.DataFrame:
    """RTTM file -> ``uri, start_s, end_s, speaker``."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            rows.append((parts[1], start, start + duration, parts[7]))
    return pd.DataFrame(rows, columns=["uri", "start_s", "end_s", "speaker"])


def der(reference: pd.DataFrame, hypothesis: pd.DataFrame, *, ref_label: str = "speaker",
        hyp_label: str = "participant_id", start_s: float = 0.0, end_s: float | None = None) -> dict:
    """Diarization error rate with its parts (shares of reference speech), no collar, overlap
    scored, optimal label mapping. ``{"der", "missed", "false_alarm", "confusion", "total_s"}``."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref = annotation(reference, ref_label)
    hyp = annotation(hypothesis, hyp_label)
    end = end_s if end_s is not None else max(reference.end_s.max(), hypothesis.end_s.max() if len(hypothesis) else 0)
    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    detail = metric(ref, hyp, uem=Timeline([Segment(start_s, end)]), detailed=True)
    total = detail["total"] or 1.0
    return {"der": detail["diarization error rate"], "missed": detail["missed detection"] / total,
            "false_alarm": detail["false alarm"] / total, "confusion": detail["confusion"] / total,
            "total_s": detail["total"]}


def match_events(truth: pd.DataFrame, found: pd.DataFrame, *, tolerance_s: float = 1.0,
                 keys: tuple[str, ...] = ("participant", "target")) -> pd.DataFrame:
    """Match each true event to at most one found event with equal ``keys`` whose start is
    within ``tolerance_s`` (closest first). Returns ``truth`` with a ``found_start_s`` column
    (NaN where missed)."""
    taken: set[int] = set()
    matches = []
    for row in truth.itertuples():
        same = found
        for key in keys:
            same = same[same[key] == getattr(row, key)]
        candidates = same[(same.start_s - row.start_s).abs() <= tolerance_s]
        candidates = candidates[~candidates.index.isin(taken)]
        if len(candidates):
            best = (candidates.start_s - row.start_s).abs().idxmin()
            taken.add(best)
            matches.append(float(found.loc[best, "start_s"]))
        else:
            matches.append(float("nan"))
    return truth.assign(found_start_s=matches)
