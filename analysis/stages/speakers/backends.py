"""The single-microphone backend a session's parameters name (``DiarizationParams.backend``):
the embedded one (:mod:`.diarization`, the default), segmentation-3.0 + CAM++
(:mod:`.segmentation3`, optional: see the README) or the hybrid of the two (:mod:`.hybrid`,
optional: segmentation-3.0 counts speakers, the embedded scoring on CAM++ says who)."""
from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd

from analysis.core.frames import activity_to_segments
from analysis.stages.speakers import diarization, hybrid, segmentation3
from analysis.stages.speakers.diarization import DiarizationParams, FrameDiarization


def model_versions(params: DiarizationParams) -> dict:
    """Model versions of ``params.backend``, for the run record."""
    if params.backend == "segmentation3":
        return {"silero-vad": version("silero-vad"), **segmentation3.model_versions()}
    if params.backend == "hybrid":
        return hybrid.model_versions()
    return diarization.model_versions()


def diarize_backend_frames(y: np.ndarray, sr: int, *, n_speakers: int | None,
                           params: DiarizationParams) -> FrameDiarization:
    """Frame-level diarization (10 ms frames) of ``y`` (``sr`` Hz; an array or a
    :class:`capture.media.Pcm16Signal`) with ``params.backend``."""
    if params.backend == "segmentation3":         # these take the whole signal as an array
        return segmentation3.diarize_frames(np.asarray(y), sr, n_speakers=n_speakers, params=params.segmentation3)
    if params.backend == "hybrid":
        return hybrid.diarize_frames(np.asarray(y), sr, n_speakers=n_speakers, params=params)
    if params.backend != "embedded":
        raise ValueError(f"diarization backend {params.backend!r}: use 'embedded', 'segmentation3' or 'hybrid'")
    return diarization.diarize_frames(y, sr, n_speakers=n_speakers, params=params)


def diarize_backend(y: np.ndarray, sr: int, *, n_speakers: int | None, params: DiarizationParams) -> pd.DataFrame:
    """Speaker segments of ``y`` with ``params.backend``, as :func:`.diarization.diarize` gives
    them (``start_s, end_s, participant_id, confidence``, labels ``spk0, spk1, ...``)."""
    frames = diarize_backend_frames(y, sr, n_speakers=n_speakers, params=params)
    k = frames.scores.shape[1]
    return activity_to_segments(frames.activity(), [f"spk{c}" for c in range(k)], frames.confidence)
