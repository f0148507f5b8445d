"""Scoring results against reference annotations (used by tests and benchmarks).

Diarization error rate comes from ``pyannote.metrics`` with no collar and overlapped speech
scored. Events are paired by one matcher, :func:`pair_events`, whose rules are its parameters:
which columns must be equal (people, event class), the start-time tolerance, and the greedy
order. Two parameterisations are in use and give different figures on the same input, so both
are kept under their own names:

- :func:`match_events` (the sample session's truth, by display name): equal ``participant`` and
  ``target``, starts within 1 s by default, true events taken in table order, each paired with the
  closest free found event (``order="truth"``);
- :func:`class_scores` (composed conversations, by participant id): equal class (backchannel /
  successful / unsuccessful interruption, "contested" counted as successful), interrupter and
  interrupted person (compared as text), starts within 0.5 s by default, all candidate pairs taken
  closest first (``order="closest"``); counted per class with the tone agreement of matched
  interruptions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from analysis.core.events import INTERRUPTION_STYLES, upgrade_legacy
from analysis.core.rttm import read_rttm

EVENT_CLASSES = ("backchannel", "successful", "unsuccessful")
ORDERS = ("truth", "closest")


def annotation(segments: pd.DataFrame, label_column: str = "participant_id") -> Annotation:
    """pyannote ``Annotation`` from a table with ``start_s, end_s`` and a label column."""
    result = Annotation()
    for i, row in enumerate(segments.itertuples()):
        if row.end_s > row.start_s:
            result[Segment(float(row.start_s), float(row.end_s)), i] = getattr(row, label_column)
    return result


def der(reference: pd.DataFrame, hypothesis: pd.DataFrame, *, ref_label: str = "speaker",
        hyp_label: str = "participant_id", start_s: float = 0.0, end_s: float | None = None) -> dict:
    """Diarization error rate with its parts (shares of reference speech), no collar, overlap
    scored, optimal label mapping. ``{"der", "missed", "false_alarm", "confusion", "total_s"}``."""
    ref = annotation(reference, ref_label)
    hyp = annotation(hypothesis, hyp_label)
    end = end_s if end_s is not None else max(reference.end_s.max(), hypothesis.end_s.max() if len(hypothesis) else 0)
    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    detail = metric(ref, hyp, uem=Timeline([Segment(start_s, end)]), detailed=True)
    total = detail["total"] or 1.0
    return {"der": detail["diarization error rate"], "missed": detail["missed detection"] / total,
            "false_alarm": detail["false alarm"] / total, "confusion": detail["confusion"] / total,
            "total_s": detail["total"]}


def pair_events(truth: pd.DataFrame, found: pd.DataFrame, *, tolerance_s: float, keys: tuple[str, ...] = (),
                order: str = "truth") -> list[tuple[int, int]]:
    """The event matcher: one-to-one ``(truth position, found position)`` pairs.

    A pair is a candidate when every column in ``keys`` is equal (pandas ``==``: missing values
    never match) and the starts (``start_s``) are at most ``tolerance_s`` apart. Candidates are
    taken greedily, each row at most once, in ``order``:

    - ``"truth"``: true events in table order, each with its closest free candidate (ties: the
      earlier found row);
    - ``"closest"``: all candidates by start distance, then truth position, then found position.
    """
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: use one of {ORDERS}")
    found_start = found["start_s"].to_numpy()
    candidates = []
    for i, (start, *values) in enumerate(zip(truth["start_s"].tolist(), *(truth[k].tolist() for k in keys))):
        distance = np.abs(found_start - start)
        ok = distance <= tolerance_s
        for key, value in zip(keys, values):
            ok &= (found[key] == value).fillna(False).to_numpy(dtype=bool)
        candidates += [(float(distance[j]), i, int(j)) for j in np.flatnonzero(ok)]
    candidates.sort(key=(lambda c: (c[1], c[0], c[2])) if order == "truth" else None)
    used_truth, used_found, pairs = set(), set(), []
    for _, i, j in candidates:
        if i not in used_truth and j not in used_found:
            used_truth.add(i)
            used_found.add(j)
            pairs.append((i, j))
    return pairs


def match_events(truth: pd.DataFrame, found: pd.DataFrame, *, tolerance_s: float = 1.0,
                 keys: tuple[str, ...] = ("participant", "target")) -> pd.DataFrame:
    """Match each true event to at most one found event with equal ``keys`` whose start is
    within ``tolerance_s`` (true events in order, closest first: :func:`pair_events` with
    ``order="truth"``). Returns ``truth`` with a ``found_start_s`` column (NaN where missed)."""
    matched = dict(pair_events(truth, found, tolerance_s=tolerance_s, keys=keys, order="truth"))
    starts = found["start_s"].tolist()
    return truth.assign(found_start_s=[float(starts[matched[i]]) if i in matched else float("nan")
                                       for i in range(len(truth))])


def event_class(kind: str, outcome: str | None) -> str | None:
    """Scoring class of an event row: backchannel, successful, unsuccessful, or None
    (a contested interruption counts as successful: the interrupter kept the floor)."""
    if kind == "backchannel":
        return "backchannel"
    if kind == "interruption" and isinstance(outcome, str):
        return "successful" if outcome in ("successful", "contested") else outcome
    return None


def _classed(events: pd.DataFrame) -> pd.DataFrame:
    """Events with a class (``cls``) and their people as text; events without a class left out.
    Tables without the structured fields are upgraded first (:func:`events.upgrade_legacy`)."""
    events = upgrade_legacy(events)
    out = events.assign(cls=[event_class(k, o) for k, o in zip(events["kind"], events["outcome"])],
                        participant_id=events["participant_id"].map(str),
                        target_participant_id=events["target_participant_id"].map(str))
    return out[out["cls"].notna()].reset_index(drop=True)


def class_scores(truth: pd.DataFrame, detected: pd.DataFrame, *, tolerance_s: float = 0.5) -> pd.DataFrame:
    """Per-class tp/fp/fn of detected events against true ones, plus the matched pairs' tone
    agreement: one row per class of :data:`EVENT_CLASSES` with ``cls, tp, fp, fn, tone_agree,
    tone_total`` (tone over matched pairs whose detected event has a ``style``).

    Pairs: :func:`pair_events` with equal class, interrupter and interrupted person (as text),
    starts within ``tolerance_s``, closest first (``order="closest"``)."""
    t, d = _classed(truth), _classed(detected)
    pairs = pair_events(t, d, tolerance_s=tolerance_s, keys=("cls", "participant_id", "target_participant_id"),
                        order="closest")
    t_cls, d_cls = t["cls"].tolist(), d["cls"].tolist()
    t_style, d_style = t["style"].tolist(), d["style"].tolist()
    rows = []
    for cls in EVENT_CLASSES:
        matched = [(i, j) for i, j in pairs if t_cls[i] == cls]
        toned = [(i, j) for i, j in matched if d_style[j] in INTERRUPTION_STYLES]
        agree = sum((d_style[j] == "competitive") == (t_style[i] == "competitive") for i, j in toned)
        rows.append(dict(cls=cls, tp=len(matched), fp=d_cls.count(cls) - len(matched),
                         fn=t_cls.count(cls) - len(matched), tone_agree=agree, tone_total=len(toned)))
    return pd.DataFrame(rows)


def prf(table: pd.DataFrame) -> pd.DataFrame:
    """Add precision, recall, F1 to a tp/fp/fn table (NaN-free: 1.0 when nothing to find or claim)."""
    t = table.copy()
    t["precision"] = np.where(t.tp + t.fp > 0, t.tp / (t.tp + t.fp).clip(lower=1), 1.0)
    t["recall"] = np.where(t.tp + t.fn > 0, t.tp / (t.tp + t.fn).clip(lower=1), 1.0)
    t["f1"] = np.where(t.precision + t.recall > 0, 2 * t.precision * t.recall / (t.precision + t.recall), 0.0)
    return t


__all__ = ["annotation", "read_rttm", "der", "pair_events", "match_events", "event_class", "class_scores", "prf",
           "EVENT_CLASSES"]
