"""Operations on interval lists: ``(starts, ends)`` float arrays of seconds, sorted and disjoint
unless said otherwise. Linear or O(log n) per query."""
from __future__ import annotations

import numpy as np


def merge(starts: np.ndarray, ends: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge intervals (any order) whose gap is < ``gap`` s (or that overlap/touch when gap <= 0)."""
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, bool)
    if gap > 0:
        new[1:] = s[1:] - run_end[:-1] >= gap
    else:
        new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    out_s = s[idx]
    last = np.r_[idx[1:] - 1, s.size - 1]
    return out_s, run_end[last]


def intersect(a_s, a_e, b_s, b_e) -> tuple[np.ndarray, np.ndarray]:
    """Intersection of two sorted lists of disjoint intervals (two-pointer, linear)."""
    out_s, out_e = [], []
    i = j = 0
    while i < len(a_s) and j < len(b_s):
        lo, hi = max(a_s[i], b_s[j]), min(a_e[i], b_e[j])
        if hi > lo:
            out_s.append(lo)
            out_e.append(hi)
        if a_e[i] < b_e[j]:
            i += 1
        else:
            j += 1
    return np.asarray(out_s, float), np.asarray(out_e, float)


def _crop(iv, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The intervals of ``iv`` that touch [lo, hi), clipped to it."""
    s, e = iv
    i0 = max(int(np.searchsorted(e, lo, side="right")), 0)
    i1 = int(np.searchsorted(s, hi, side="left"))
    return np.clip(s[i0:i1], lo, hi), np.clip(e[i0:i1], lo, hi)


def overlap_len(a, b, lo: float, hi: float) -> float:
    """Seconds during [lo, hi) when both a and b (sorted disjoint interval lists) speak."""
    os_, oe = intersect(*_crop(a, lo, hi), *_crop(b, lo, hi))
    return float(np.sum(oe - os_))


def in_intervals(t: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Mask of times t (s) inside any of the sorted disjoint intervals [s, e)."""
    if s.size == 0:
        return np.zeros(t.shape, bool)
    k = np.searchsorted(s, t, side="right") - 1
    ok = k >= 0
    out = np.zeros(t.shape, bool)
    out[ok] = t[ok] < e[k[ok]]
    return out


def start_at(iv, t: float) -> float:
    """Start (s) of the last interval of ``iv`` starting at or before ``t`` (``t`` if none)."""
    s, _ = iv
    i = int(np.searchsorted(s, t, side="right")) - 1
    return float(s[i]) if i >= 0 else t


def last_speaker_before(raw: dict, t: float) -> str | None:
    """Who of ``raw`` (pid -> intervals) last stopped speaking at or before ``t`` s (None: nobody)."""
    best, best_e = None, -np.inf
    for pid, (s, e) in raw.items():
        i = int(np.searchsorted(e, t, side="right")) - 1
        if i >= 0 and e[i] > best_e:
            best, best_e = pid, e[i]
    return best


def first_speaker_after(raw: dict, t: float) -> str | None:
    """Who of ``raw`` (pid -> intervals) first starts speaking at or after ``t`` s (None: nobody)."""
    best, best_s = None, np.inf
    for pid, (s, e) in raw.items():
        i = int(np.searchsorted(s, t, side="left"))
        if i < len(s) and s[i] < best_s:
            best, best_s = pid, s[i]
    return best
