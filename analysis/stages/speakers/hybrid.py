"""Who spoke when from one microphone: segmentation-3.0 says *how many* speak, the embedded
backend's voice scoring says *who*.

1. **Speaker count per 10 ms frame** from pyannote/segmentation-3.0 alone
   (:func:`analysis.stages.speakers.segmentation3.speaker_count`: its sliding windows' local
   activities summed and averaged over windows). Speech is Silero's, as the embedded backend
   has it (default ``speech="silero"``), or the count's (``"segmentation3"``, ``"union"``,
   ``"near"``: measured worse, see :class:`~analysis.stages.speakers.diarization.HybridParams`).
2. **Who** as :mod:`analysis.stages.speakers.diarization` decides it: speech chunks (at most
   3 s) embedded and clustered (``clustering``: k-means or Ward, the count bounded by the
   participant list and chosen by silhouette; chunks under ``cluster_min_s`` join the nearest
   cluster afterwards, :func:`cluster_chunks`), then every frame
   scored against each cluster by sliding 1.5 s windows (embedding + MFCC-statistics
   similarity); the best cluster, majority-filtered, speaks. The embeddings are CAM++ (default
   ``voice="campplus"``) or GE2E (``"ge2e"``, the embedded backend's own).
3. **Overlap**: where segmentation-3.0's mean count reaches ``overlap_count`` (or its soft
   overlap probability reaches ``overlap_probability``, off by default), the second-best
   cluster also speaks (instead of the 2021 overlap model the embedded backend uses).
4. **Pauses inside a turn** (off by default, ``counted_pause_s``): a pause between two
   stretches of one speaker is theirs where segmentation-3.0 counts speech all through it.

Segmentation-3.0's window-local speakers are never matched across windows, so its habit of
merging two people of a 10 s window into one local speaker (the two-person AMI pair) cannot
merge their turns here: it only has to count them.
"""
from __future__ import annotations

import numpy as np

from analysis.core.frames import FRAME_S
from analysis.stages.speakers import segmentation3
from analysis.stages.speakers.diarization import (
    DiarizationParams,
    FrameDiarization,
    _first_appearance_order,
    _unit,
    chunk_embeddings,
    cluster,
    label_frames,
    scores_from_embeddings,
    session_ge2e_mel,
    speaker_scores,
    speech_chunks,
    speech_mask,
)


def _clean(mask: np.ndarray, *, fill: int, least: int) -> np.ndarray:
    """``mask`` with pauses shorter than ``fill`` frames filled and islands shorter than
    ``least`` frames dropped."""
    out = mask.copy()
    edges = np.flatnonzero(np.diff(np.r_[0, out.astype(int), 0]))
    starts, ends = edges[::2], edges[1::2]
    for e, s in zip(ends[:-1], starts[1:]):
        if s - e < fill:
            out[e:s] = True
    edges = np.flatnonzero(np.diff(np.r_[0, out.astype(int), 0]))
    for s, e in zip(edges[::2], edges[1::2]):
        if e - s < least:
            out[s:e] = False
    return out


def _fill_counted_pauses(labels: np.ndarray, counted: np.ndarray, longest: int) -> np.ndarray:
    """``labels`` (-1 silence) with each pause of at most ``longest`` frames between two stretches
    of the same speaker given to that speaker where ``counted`` (speech by the speaker count) holds
    all through the pause."""
    out = labels.copy()
    silent = np.flatnonzero(np.diff(np.r_[0, (labels < 0).astype(int), 0]))
    for a, b in zip(silent[::2], silent[1::2]):
        if 0 < a and b < len(labels) and b - a <= longest and labels[a - 1] == labels[b] and counted[a:b].all():
            out[a:b] = labels[b]
    return out


def _campplus_voices(y: np.ndarray, sr: int, mask: np.ndarray, chunks: list[tuple[int, int]],
                     params: DiarizationParams, hop_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CAM++ unit embeddings of each chunk's speech frames (n_chunks, 192) and of the sliding
    ``window_s`` windows every ``hop_s`` holding at least ``min_window_speech`` speech (pooled from
    one network pass per ``hybrid.campplus_block_s`` of windows, :func:`_pooled_windows`):
    ``(chunk_emb, window_starts_s, window_emb)``."""
    import torch

    from analysis.stages.speakers import campplus

    if sr != segmentation3.MODEL_RATE_HZ:
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=segmentation3.MODEL_RATE_HZ)
    model = segmentation3._campplus_model()
    with torch.inference_mode():
        feats = campplus.fbank(torch.from_numpy(np.ascontiguousarray(y, np.float32)))
        n = min(len(feats), len(mask))
        speech = torch.from_numpy(np.asarray(mask[:n], bool))
        chunk_emb = []
        for a, b in chunks:
            b = min(b, n)
            f = feats[a:b][speech[a:b]] if speech[a:b].sum() >= 20 else feats[max(0, min(a, n - 20)):max(b, 20)]
            chunk_emb.append(model((f - f.mean(0, keepdim=True))[None])[0].numpy())
        win, hop = int(params.window_s / FRAME_S), int(round((hop_s or params.hop_s) / FRAME_S))
        starts = [s for s in range(0, max(n - win, 0) + 1, hop) if mask[s:s + win].mean() >= params.min_window_speech]
        block = int(params.hybrid.campplus_block_s / FRAME_S)
        if block >= win:
            window_emb = [_pooled_windows(model, feats, group, win) for group in _window_blocks(starts, win, block)]
        else:
            window_emb = []
            for i in range(0, len(starts), 16):  # 16 a batch: fastest per window on one thread
                batch = torch.stack([feats[s:s + win] for s in starts[i:i + 16]])
                window_emb.append(model(batch - batch.mean(1, keepdim=True)).numpy())
    chunk_emb = _unit(np.asarray(chunk_emb).reshape(len(chunks), -1))
    window_emb = _unit(np.concatenate(window_emb)) if window_emb else np.zeros((0, chunk_emb.shape[1]))
    return chunk_emb, np.asarray(starts) * FRAME_S, window_emb


def _window_blocks(starts: list[int], win: int, block: int) -> list[list[int]]:
    """``starts`` (frames, ascending) grouped so that each group's windows of ``win`` frames lie
    within ``block`` frames of the group's first start."""
    groups: list[list[int]] = []
    for s in starts:
        if groups and s + win - groups[-1][0] <= block:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def _pooled_windows(model, feats, starts: list[int], win: int) -> np.ndarray:
    """CAM++ embeddings (len(starts), 192) of the windows of ``win`` feature frames at ``starts``:
    the network's frame-level output over their whole span once (features mean-normalised over
    that span), then each window's statistics pooled from its own frames (the network's first
    layer halves the frame rate)."""
    import torch

    first, end = starts[0], starts[-1] + win
    span = feats[first:end]
    x = model.head((span - span.mean(0, keepdim=True))[None].permute(0, 2, 1))
    layers = dict(model.xvector.named_children())
    for name, module in layers.items():
        if name in ("stats", "dense"):
            break
        x = module(x)
    pooled = [layers["stats"](x[:, :, (s - first) // 2:(s - first + win + 1) // 2]) for s in starts]
    return layers["dense"](torch.cat(pooled)).numpy()


def _ward(emb: np.ndarray, n_speakers: int | None, params: DiarizationParams) -> np.ndarray:
    """Ward agglomerative labels 0..k-1 of unit embeddings ``emb``: ``n_speakers`` clusters when
    that is 1 or 2, otherwise the count from 2 up to ``n_speakers`` (or ``max_speakers``) with the
    best cosine silhouette (as :func:`~analysis.stages.speakers.diarization.cluster`)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    if len(emb) < 2 or (n_speakers is not None and n_speakers < 2):
        return np.zeros(len(emb), int)
    tree = linkage(emb, method="ward")

    def cut(k: int) -> np.ndarray:
        return np.unique(fcluster(tree, k, criterion="maxclust"), return_inverse=True)[1]

    if n_speakers is not None and min(n_speakers, len(emb)) <= 2:
        return cut(2)
    most = min(n_speakers if n_speakers is not None else params.max_speakers, len(emb) - 1)
    best, best_score = np.zeros(len(emb), int), (-1.0 if n_speakers is not None else 0.1)
    for k in range(2, most + 1):
        labels = cut(k)
        score = silhouette_score(emb, labels, metric="cosine") if labels.max() > 0 else -1.0
        if score > best_score:
            best, best_score = labels, score
    return best


def cluster_chunks(emb: np.ndarray, seconds: np.ndarray, n_speakers: int | None,
                   params: DiarizationParams) -> np.ndarray:
    """Cluster labels of the chunk embeddings ``emb`` (unit rows; ``seconds`` long each) by
    ``params.hybrid.clustering``; chunks shorter than ``cluster_min_s`` (their embeddings the
    least reliable) join the nearest duration-weighted centroid of the others afterwards, when at
    least three chunks are long enough."""
    hybrid = params.hybrid

    def run(e: np.ndarray, w: np.ndarray) -> np.ndarray:
        if hybrid.clustering == "ward":
            return _ward(e, n_speakers, params)
        return cluster(e, n_speakers, params=params, weights=w)

    if len(emb) == 0:
        return np.zeros(0, int)
    long = seconds >= hybrid.cluster_min_s
    if long.all() or long.sum() < 3:
        return run(emb, seconds)
    own = run(emb[long], seconds[long])
    centroids = _unit(np.array([(emb[long][own == c] * seconds[long][own == c, None]).sum(0)
                                for c in range(int(own.max()) + 1)]))
    labels = (emb @ centroids.T).argmax(1)
    labels[long] = own
    return np.unique(labels, return_inverse=True)[1]


def diarize_frames(y: np.ndarray, sr: int, *, n_speakers: int | None,
                   params: DiarizationParams = DiarizationParams()) -> FrameDiarization:
    """Frame-level diarization (10 ms frames) of ``y`` (``sr`` Hz) by the hybrid backend, with
    ``params.hybrid`` (:class:`~analysis.stages.speakers.diarization.HybridParams`) and the
    embedded backend's other ``params``."""
    hybrid = params.hybrid
    silero = speech_mask(y, sr, params=params)
    n = len(silero)
    count, overlap = segmentation3.count_and_overlap(y, sr, n, params.segmentation3)
    seg_speech = _clean(count >= hybrid.speech_count, fill=int(hybrid.fill_pause_s / FRAME_S), least=int(hybrid.min_speech_s / FRAME_S))
    if hybrid.speech == "near":
        reach = int(hybrid.near_s / FRAME_S)
        near = np.convolve(silero.astype(float), np.ones(2 * reach + 1), mode="same") > 0
        mask = silero | (seg_speech & near)
    else:
        mask = {"segmentation3": seg_speech, "union": seg_speech | silero, "silero": silero}[hybrid.speech]
    chunks = speech_chunks(silero if hybrid.cluster_on == "silero" else mask, params=params)
    if hybrid.voice == "campplus":
        chunk_emb, starts, window_emb = _campplus_voices(y, sr, mask, chunks, params, hybrid.campplus_hop_s)
    else:
        mel = session_ge2e_mel(y, sr)
        chunk_emb = chunk_embeddings(mel, chunks)
    chunk_labels = cluster_chunks(chunk_emb, np.array([b - a for a, b in chunks], float) * FRAME_S, n_speakers,
                                  params)
    k = int(chunk_labels.max()) + 1 if len(chunk_labels) else 1
    if hybrid.voice == "campplus":
        def score():
            return scores_from_embeddings(y, sr, mask, chunks, chunk_labels, chunk_emb, starts, window_emb,
                                          params=params)
    else:
        def score():
            return speaker_scores(y, sr, mel, mask, chunks, chunk_labels, chunk_emb, params=params)
    labels, scores, filled, margin, centroids = label_frames(mask, chunks, chunk_labels, k, params, score)
    if hybrid.counted_pause_s > 0:
        labels = _fill_counted_pauses(labels, seg_speech, int(round(hybrid.counted_pause_s / FRAME_S)))
        mask = mask | (labels >= 0)
    second = np.full(n, -1)
    if hybrid.overlap and k > 1:
        others = filled.copy()
        speaking = labels >= 0
        others[np.flatnonzero(speaking), labels[speaking]] = -np.inf
        two = count >= hybrid.overlap_count if hybrid.overlap_probability is None else \
            overlap >= hybrid.overlap_probability
        overlapped = two & speaking & np.isfinite(others.max(1))
        second[overlapped] = others[overlapped].argmax(1)
    if hybrid.voice == "campplus" and hybrid.prints != "campplus":
        centroids = None  # enrolment then computes GE2E cluster prints from the labels
    frames = FrameDiarization(labels=labels, scores=scores, confidence=margin, speech=mask, centroids=centroids,
                              second=second, overlap_note=f"overlaps from pyannote/segmentation-3.0 speaker count: "
                                                          f"{(second >= 0).sum() * FRAME_S:.1f} s",
                              method="single microphone: pyannote/segmentation-3.0 speaker count + Silero VAD + "
                                     f"{'CAM++' if hybrid.voice == 'campplus' else 'Resemblyzer'} embeddings + "
                                     f"{'Ward clustering' if hybrid.clustering == 'ward' else 'k-means'}")
    return frames.relabelled(_first_appearance_order(labels, k))


def model_versions() -> dict:
    from analysis.stages.speakers import diarization

    versions = {**diarization.model_versions(), **segmentation3.model_versions()}
    versions.pop("embedding", None)
    return versions
