"""Putting names on voices with enrolment clips ("I, Sam, agree to record this session").

A *voice print* is the duration-weighted mean GE2E embedding (Resemblyzer) of the speech in a
labelled sample of one person's voice. Voice clusters of a session are named by matching their
centroids to the prints one-to-one (Hungarian assignment on cosine similarity), so the same
person is recognised across sessions without any account or network.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from analysis.core.frames import FRAME_S
from analysis.stages.speakers.diarization import DiarizationParams, FrameDiarization, chunk_embeddings, ge2e_mel, speech_chunks, speech_mask


def voice_print(y: np.ndarray, sr: int, *, params: DiarizationParams = DiarizationParams()) -> np.ndarray | None:
    """Voice print of mono ``y`` at ``sr`` Hz: unit vector of shape (256,), None without speech
    (with ``params.backend == "segmentation3"``, or ``"hybrid"`` with CAM++ prints: a CAM++
    print, shape (192,), to match that backend's cluster centroids)."""
    if params.backend == "segmentation3" or (params.backend == "hybrid" and params.hybrid.voice == "campplus"
                                             and params.hybrid.prints == "campplus"):
        from analysis.stages.speakers import segmentation3

        return segmentation3.voice_print(y, sr, vad_params=params)
    chunks = speech_chunks(speech_mask(y, sr, params=params), params=params)
    return _print_of(ge2e_mel(y, sr), chunks) if chunks else None


def cluster_centroids(y: np.ndarray, sr: int, labels: np.ndarray, *, params: DiarizationParams = DiarizationParams()) -> dict[int, np.ndarray]:
    """Voice print of each cluster's speech (frames labelled ``c`` in ``labels``)."""
    mel = ge2e_mel(y, sr)
    chunks = {c: speech_chunks(labels == c, params=params) for c in sorted(set(labels[labels >= 0].tolist()))}
    return {c: _print_of(mel, own) for c, own in chunks.items() if own}


def _print_of(mel: np.ndarray, chunks: list[tuple[int, int]]) -> np.ndarray:
    """Duration-weighted mean GE2E embedding of ``chunks`` of ``mel``, unit length, shape (256,)."""
    emb = chunk_embeddings(mel, chunks)
    weights = np.array([b - a for a, b in chunks], float)
    mean = (emb * weights[:, None]).sum(0)
    return mean / (np.linalg.norm(mean) + 1e-9)


def name_clusters(y: np.ndarray, sr: int, frames: FrameDiarization, prints: dict[str, np.ndarray], *,
                  params: DiarizationParams = DiarizationParams()) -> dict[int, tuple[str, float]]:
    """Map cluster index -> (participant id, cosine similarity) by matching cluster voice prints
    (the diarizer's centroids, or computed from the labelled speech) to enrolment ``prints``;
    clusters matching no print above ``params.min_enrolment_similarity`` are left out."""
    if frames.centroids is not None:
        present = set(frames.labels[frames.labels >= 0].tolist())
        centroids = {c: frames.centroids[c] for c in range(len(frames.centroids)) if c in present}
    else:
        centroids = cluster_centroids(y, sr, frames.labels, params=params)
    if not centroids or not prints:
        return {}
    clusters = list(centroids)
    people = list(prints)
    sim = np.array([[float(centroids[c] @ prints[p]) for p in people] for c in clusters])
    rows, cols = linear_sum_assignment(-sim)
    return {clusters[r]: (people[c], sim[r, c]) for r, c in zip(rows, cols) if sim[r, c] >= params.min_enrolment_similarity}


def speech_from_segments(y: np.ndarray, sr: int, segments: list[tuple[float, float]]) -> np.ndarray:
    """Concatenate the samples of ``segments`` (start_s, end_s) of ``y``: a labelled voice sample."""
    parts = [y[int(s * sr): int(e * sr)] for s, e in segments if e > s]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


__all__ = ["voice_print", "name_clusters", "cluster_centroids", "speech_from_segments", "FRAME_S"]
