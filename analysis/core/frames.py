"""The frame grid every stage shares, and operations on frame masks.

Audio stages label 10 ms frames (:data:`FRAME_S`); a mask is a 1-D bool array over them, an
activity matrix ``(n_frames, people)`` bool. Segments are ``start_s, end_s, participant_id,
confidence`` rows (seconds).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from capture.media import Pcm16Signal

FRAME_S = 0.01  # label resolution of every audio stage, seconds


LEVEL_BLOCK_FRAMES = 6000       # frames per block in frame_level_db (60 s of 10 ms frames)


def frame_level_db(y: np.ndarray, sr: int, *, frame_s: float = FRAME_S) -> np.ndarray:
    """Level in dBFS (mean power) of non-overlapping ``frame_s`` frames, the last one padded with
    zeros: shape ``(ceil(len(y) / (sr * frame_s)),)``."""
    hop = int(round(frame_s * sr))
    n = int(np.ceil(len(y) / hop))
    power = np.empty(n)
    for first in range(0, n, LEVEL_BLOCK_FRAMES):    # a block at a time: memory flat in length
        count = min(LEVEL_BLOCK_FRAMES, n - first)
        block = np.zeros(count * hop)
        piece = y[first * hop:(first + count) * hop]
        block[: len(piece)] = piece
        power[first:first + count] = np.mean(block.reshape(count, hop) ** 2, axis=1)
    return 10 * np.log10(power + 1e-12)


def as_signal(y) -> np.ndarray | Pcm16Signal:
    """``y`` for code that reads a signal a slice at a time: a :class:`Pcm16Signal` as it is
    (its slices are float32 arrays), anything else as ``np.asarray(y)``."""
    return y if isinstance(y, Pcm16Signal) else np.asarray(y)


def signal_part(y, first: int, stop: int) -> np.ndarray | Pcm16Signal:
    """Samples ``first`` to ``stop`` of ``y`` without a copy: a :class:`Pcm16Signal` of a view
    of its 16-bit samples (slicing one gives float32 copies), an array's slice otherwise."""
    return Pcm16Signal(y.pcm[first:stop]) if isinstance(y, Pcm16Signal) else np.asarray(y)[first:stop]


def centred_frame_blocks(y: np.ndarray, frame_length: int, hop: int, block_frames: int):
    """The frames of ``y`` as librosa frames them with ``center=True`` and zero padding (frame
    ``t`` starts at sample ``t * hop - frame_length // 2``; ``1 + (len(y) + 2 * (frame_length //
    2) - frame_length) // hop`` frames), ``block_frames`` frames at a time, so that a whole-signal
    analysis runs in blocks with the same output: yields ``(first_frame, samples)``, where
    ``samples`` (zeros outside ``y``) holds frames ``first_frame`` onwards for a ``center=False``
    analysis."""
    n_frames = centred_frame_count(len(y), frame_length, hop)
    for first in range(0, n_frames, block_frames):
        yield first, centred_frame_samples(y, frame_length, hop, first, min(block_frames, n_frames - first))


def centred_frame_count(n_samples: int, frame_length: int, hop: int) -> int:
    """How many frames librosa's ``center=True`` framing gives ``n_samples`` samples."""
    return 1 + (n_samples + 2 * (frame_length // 2) - frame_length) // hop


def centred_frame_samples(y: np.ndarray, frame_length: int, hop: int, first: int, count: int) -> np.ndarray:
    """The samples of ``count`` centred frames from frame ``first`` (see
    :func:`centred_frame_blocks`), zeros outside ``y``, for a ``center=False`` analysis."""
    start = first * hop - frame_length // 2
    stop = start + (count - 1) * hop + frame_length
    samples = np.zeros(stop - start, y.dtype)
    inside = slice(max(start, 0), min(stop, len(y)))
    samples[inside.start - start:inside.stop - start] = y[inside]
    return samples


def runs(mask: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, end, value) runs of a 1-D array."""
    if mask.size == 0:
        return []
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, mask.size]
    return [(int(s), int(e), bool(mask[s])) for s, e in zip(starts, ends)]


def hysteresis(level: np.ndarray, on: float, off: float) -> np.ndarray:
    """True from where ``level`` rises above ``on`` until it falls below ``off``; per column
    when ``level`` is 2-D (same shape out, bool)."""
    columns = level.reshape(len(level), -1)
    out = np.zeros(columns.shape, bool)
    for j in range(columns.shape[1]):
        state = False
        for i, v in enumerate(columns[:, j]):
            state = v > on or (state and v >= off)
            out[i, j] = state
    return out.reshape(level.shape)


def fill_short_runs(mask: np.ndarray, *, value: bool, max_len: int) -> np.ndarray:
    """Flip interior runs equal to ``value`` shorter than ``max_len`` frames."""
    out = mask.copy()
    spans = runs(mask)
    for i, (s, e, v) in enumerate(spans):
        interior = 0 < i < len(spans) - 1 or value  # speech islands at the edges are dropped too
        if v == value and e - s < max_len and interior:
            out[s:e] = not value
    return out


def fill_same_speaker_pauses(labels: np.ndarray, max_len: int) -> np.ndarray:
    """Non-speech runs shorter than ``max_len`` frames between two runs of one label take it."""
    out = labels.copy()
    spans = runs(labels >= 0)
    for i in range(1, len(spans) - 1):
        s, e, is_speech = spans[i]
        if not is_speech and e - s < max_len and labels[s - 1] == labels[e]:
            out[s:e] = labels[s - 1]
    return out


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` frame indices (end exclusive) of the True runs of a 1-D mask."""
    return [(s, e) for s, e, value in runs(mask) if value]


def frames_to_segments(labels: np.ndarray, confidence: np.ndarray | None = None, *, prefix: str = "spk") -> pd.DataFrame:
    """Runs of equal non-negative labels -> segments ``start_s, end_s, participant_id, confidence``."""
    rows = []
    for s, e, _ in runs(labels):
        value = int(labels[s])
        if value < 0:
            continue
        conf = float(np.mean(confidence[s:e])) if confidence is not None else 1.0
        rows.append((round(s * FRAME_S, 3), round(e * FRAME_S, 3), f"{prefix}{value}", round(conf, 3)))
    return pd.DataFrame(rows, columns=["start_s", "end_s", "participant_id", "confidence"])


def activity_to_segments(active: np.ndarray, ids: list[str], confidence: np.ndarray | None = None) -> pd.DataFrame:
    """Per-person activity, shape (n_frames, people) bool, -> segments (overlaps allowed)."""
    frames = []
    for j, pid in enumerate(ids):
        seg = frames_to_segments(np.where(active[:, j], 0, -1), confidence)
        seg["participant_id"] = pid
        frames.append(seg)
    out = pd.concat(frames, ignore_index=True) if frames else frames_to_segments(np.zeros(0, int))
    return out.sort_values(["start_s", "participant_id"], ignore_index=True)
