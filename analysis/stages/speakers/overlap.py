"""Overlapped speech from one microphone: where two or more people talk at once.

Interruptions and backchannels are overlaps, so a single-microphone diarizer that gives one
speaker per frame cannot show them. Playback finds overlaps with pyannote/segmentation (Bredin &
Laurent, 2021, MIT; see :data:`analysis.core.models.SEGMENTATION`), a small network that reads 5 s of
audio and gives the activity of up to three speakers every ~17 ms. A frame is overlapped when the
second most active of its speakers is active: the per-window score is that second-largest
activity, averaged over the windows covering the frame, and turned into a mask with the
hysteresis thresholds published with the model for overlapped speech detection on AMI (not
tuned here).

Which people overlap is decided by the diarizer (``analysis.stages.speakers.diarization``): the frame's own
speaker plus the other cluster the frame's voice matches best.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from analysis.core.frames import FRAME_S, as_signal, fill_short_runs, hysteresis
from analysis.core.models import SEGMENTATION, resolve_model, shared_model

MODEL_RATE_HZ = 16000
WINDOW_S = 5.0      # the model's input length, seconds


@dataclass(frozen=True)
class OverlapParams:
    """Overlapped speech detection (seconds unless named otherwise)."""

    enabled: bool = True      # find stretches where two people speak at once
    step_s: float = 2.5       # hop of the 5 s windows: each frame is scored by two windows
    onset: float = 0.448      # second speaker's activity (0-1) that starts an overlap
                              # (pyannote/segmentation's published AMI value)
    offset: float = 0.362     # second speaker's activity (0-1) below which an overlap ends
                              # (pyannote/segmentation's published AMI value)
    min_on_s: float = 0.116   # shorter overlaps are dropped
    min_off_s: float = 0.187  # shorter gaps between two overlaps are filled
    batch: int = 16           # windows per forward pass


def load_quietly(loader):
    """``loader()`` with Lightning's log lines and warnings held back (a pyannote checkpoint
    loading prints upgrade notices nobody can act on)."""
    quiet = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch", "pytorch_lightning")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return loader()
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


@shared_model
def _segmentation_model():
    """The pyannote/segmentation network in eval mode (raises ModelUnavailableError when the
    file is missing and cannot be fetched)."""
    path = resolve_model(SEGMENTATION)
    from pyannote.audio import Model

    model = load_quietly(lambda: Model.from_pretrained(path))
    return model.eval()


def model_version() -> str:
    return f"pyannote/segmentation 2021 ({SEGMENTATION.sha256[:16]})"


def speaker_activity(y: np.ndarray, sr: int, *, params: OverlapParams = OverlapParams()) -> tuple[np.ndarray, np.ndarray]:
    """Raw model output on 5 s windows every ``step_s``: ``(starts_s, activity)`` with shapes
    ``(w,)`` and ``(w, model_frames, 3)`` (activity in [0, 1] of three window-local speakers)."""
    import torch

    if sr != MODEL_RATE_HZ:
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=MODEL_RATE_HZ)
    return np.array(starts := window_starts(len(y), params=params)) / MODEL_RATE_HZ, activity_at(y, starts, params=params)


def window_starts(n_samples: int, *, params: OverlapParams = OverlapParams()) -> list[int]:
    """First sample (16 kHz) of each 5 s window every ``step_s`` over ``n_samples``, the last
    window ending with the recording."""
    win, hop = int(WINDOW_S * MODEL_RATE_HZ), int(params.step_s * MODEL_RATE_HZ)
    last = max(n_samples - win, 0)
    starts = list(range(0, last + 1, hop))
    if starts[-1] < last:
        starts.append(last)  # the final window ends with the recording
    return starts


def activity_at(y: np.ndarray, starts: list[int], *, params: OverlapParams = OverlapParams(), offset: int = 0
                ) -> np.ndarray:
    """The model's output, shape (len(starts), model_frames, 3), on the 5 s windows of ``y``
    (16 kHz, holding the recording from sample ``offset``) starting at samples ``starts``."""
    import torch

    y = as_signal(y) if getattr(y, "dtype", None) == np.float32 else np.asarray(y, np.float32)
    win = int(WINDOW_S * MODEL_RATE_HZ)
    model = _segmentation_model()
    outputs = []
    with torch.inference_mode():
        for i in range(0, len(starts), params.batch):
            # a recording shorter than one window is padded with silence
            batch = np.stack([np.pad(y[s - offset: s - offset + win], (0, max(0, s - offset + win - len(y))))
                              for s in starts[i : i + params.batch]])
            outputs.append(model(torch.from_numpy(batch[:, None, :])).numpy())
    return np.concatenate(outputs)


def overlap_probability(starts_s: np.ndarray, activity: np.ndarray, n_frames: int) -> np.ndarray:
    """Per 10 ms frame, the second-largest speaker activity averaged over the windows covering
    the frame: shape ``(n_frames,)``, 0 where no window covers it."""
    total = np.zeros(n_frames)
    count = np.zeros(n_frames)
    model_frames = activity.shape[1]
    centres = (np.arange(model_frames) + 0.5) * WINDOW_S / model_frames
    for start, window in zip(starts_s, activity):
        second = np.sort(window, axis=1)[:, -2]
        frames = np.arange(int(round(start / FRAME_S)), min(int(round((start + WINDOW_S) / FRAME_S)), n_frames))
        total[frames] += np.interp((frames + 0.5) * FRAME_S - start, centres, second)
        count[frames] += 1
    return np.divide(total, count, out=np.zeros(n_frames), where=count > 0)


def overlap_mask(y: np.ndarray, sr: int, n_frames: int, *, params: OverlapParams = OverlapParams()) -> np.ndarray:
    """Frames (10 ms, shape ``(n_frames,)``) where two or more people speak at once."""
    if len(y) < sr * 0.5:
        return np.zeros(n_frames, bool)
    return mask_from_windows(*speaker_activity(y, sr, params=params), n_frames, params=params)


def mask_from_windows(starts_s: np.ndarray, activity: np.ndarray, n_frames: int, *,
                      params: OverlapParams = OverlapParams()) -> np.ndarray:
    """:func:`overlap_mask` from the model's windows (:func:`speaker_activity`)."""
    mask = hysteresis(overlap_probability(starts_s, activity, n_frames), params.onset, params.offset)
    mask = fill_short_runs(mask, value=False, max_len=int(params.min_off_s / FRAME_S))
    return fill_short_runs(mask, value=True, max_len=int(params.min_on_s / FRAME_S))
