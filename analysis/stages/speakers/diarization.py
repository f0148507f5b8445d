"""Who spoke when from one microphone: voice activity, speaker embeddings, clustering.

The embedded default backend works offline with no account: Silero VAD (model inside the
``silero-vad`` wheel) finds speech; Resemblyzer's GE2E encoder (weights inside the
``resemblyzer`` wheel) embeds each speech island (cut into chunks of at most ``chunk_max_s``);
chunks are clustered into the known number of speakers (k-means weighted by duration), which is
more robust than clustering short windows. Sliding windows then place change points inside
chunks: every 10 ms speech frame takes the speaker whose centroid its covering windows match best,
with a bonus for its own chunk's label; labels are smoothed and a speaker's short pauses filled.

Windows are matched to centroids on two voice descriptions, each z-scored within the session and
summed: the GE2E embedding (trained on other recordings, so a far-field room blurs it) and the
mean and covariance of the window's MFCCs (no training: it adapts to the session's own room and
microphone). On the real AMI excerpts the sum is steadier than either alone.

Overlapped speech (``analysis.stages.speakers.overlap``, pyannote/segmentation) adds a second speaker where two
people talk at once: the cluster, other than the frame's own, that the frame's voice matches
best. Without that model file the backend still runs, one speaker per frame, and says so. Where
faces are visible, ``analysis.stages.speakers.audiovisual`` names the clusters and corrects them by mouth activity.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version

import numpy as np
import pandas as pd

from analysis.core.frames import (
    FRAME_S,
    activity_to_segments,
    as_signal,
    fill_same_speaker_pauses,
    centred_frame_blocks,
    centred_frame_count,
    centred_frame_samples,
    fill_short_runs,
    frame_level_db,
    runs,
)
from analysis.core.models import SEGMENTATION, shared_model
from analysis.core.workers import background_thread, map_in_threads
from analysis.stages.speakers import overlap
from analysis.stages.speakers.overlap import OverlapParams, model_version
from capture.errors import ModelUnavailableError
from capture.media import Pcm16Signal


@dataclass(frozen=True)
class Segmentation3Params:
    """Parameters of the segmentation-3.0 + CAM++ backend (seconds unless named otherwise);
    chosen once on all 13 shared AMI files (benchmarks/diarization.py), never per file."""

    step_s: float = 2.0               # hop of the 10 s segmentation windows (1.0, pyannote's own,
                                      # scores 25.6 % pooled instead of 27.2 % but costs 2-6x more)
    embedding: str = "campplus"       # "campplus" or "ge2e" (Resemblyzer, for comparison)
    exclude_overlap: bool = True      # embed a local speaker's clean (non-overlapped) frames when
                                      # there are at least min_embedding_s of them
    min_embedding_s: float = 0.5      # shortest speech that is embedded (less: that local speaker
                                      # is left out of clustering and assigned afterwards)
    threshold: float = 0.8            # agglomerative clustering: cosine distance between centroids
                                      # below which two clusters merge (best pooled of 0.3-1.0)
    method: str = "centroid"          # linkage (pyannote 3.1's)
    min_cluster_size: int = 12        # smaller clusters join their nearest large one (pyannote 3.1's)
    count: str = "max"                # participant count as "max" (at most) or "exact" number of
                                      # voices ("max" scored better on the 13 AMI files)
    min_duration_off: float = 0.0     # pauses shorter than this inside one speaker's turn are filled
    batch: int = 16                   # segmentation windows per forward pass

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HybridParams:
    """Parameters of the hybrid backend (hybrid.py: segmentation-3.0 speaker count, this module's
    scoring on CAM++; seconds unless named otherwise); chosen once on all 13 shared AMI files."""

    speech: str = "silero"            # "silero" (the embedded backend's speech), "segmentation3",
                                      # "union" (either) or "near" (Silero, or segmentation-3.0
                                      # within near_s of Silero's speech). Pooled over the 13 AMI
                                      # files: silero 28.3 %, union 27.6 % but dev01 25.8 % (+4.2
                                      # points: segmentation-3.0 speech the reference lacks), near
                                      # 27.8 % (dev01 24.4 %), segmentation3 alone 30.1 % (CAM++:
                                      # see voice; trn01's speech missed)
    near_s: float = 0.5               # reach of "near" (see speech)
    cluster_on: str = "silero"        # speech whose chunks are embedded and clustered: "silero"
                                      # or "speech" (the mask above; with segmentation-3.0's longer
                                      # islands chunks straddle two people: dev01 55 %)
    overlap: bool = True              # frames segmentation-3.0 counts two in get the second-best voice
    speech_count: float = 0.5         # mean count over the windows at or above which a frame is speech
    overlap_count: float = 1.5        # mean count over the windows at or above which two speak
                                      # (1.25: pooled 27.8 % instead of 28.1 %, dev01 18.3 %, mixture
                                      # 11.9 %, but dynamics --from-audio successful F1 0.63 instead
                                      # of 0.72; on dev01 a count of 1.2 holds on half the overlapped
                                      # frames and 0.7 % of the others, 1.5 on 16 % of them)
    overlap_probability: float | None = None  # if set, two speak where segmentation-3.0's soft
                                      # overlap probability (its two-speaker powerset classes,
                                      # averaged over windows) reaches this, instead of overlap_count.
                                      # 0.3: pooled 27.4 % (dev01 17.4 %, mixture 12.3 %; 0.2 and
                                      # 0.4: 27.8 %) but dynamics --from-audio F1 0.53 / 0.60 / 0.63,
                                      # as overlap_count 1.25: more overlap costs interruptions
    clustering: str = "ward"          # chunk clustering: "ward" (Ward agglomerative on the unit
                                      # embeddings) or "kmeans" (the embedded backend's); either
                                      # picks the count by silhouette. With cluster_min_s 0.5: pooled
                                      # 25.6 % instead of 28.1 % (trn06 16.5 % instead of 40.9 %:
                                      # k-means split its main speaker; trn08 47.6 instead of
                                      # 49.7 %), no file worse by more than 0.1 point. Ward on every
                                      # chunk: 25.5 % but dev01 25.2 %; k-means with cluster_min_s
                                      # 1.0: 27.3 %; Ward with 1.0: 26.1 %, trn08 52.5 %. Shorter
                                      # chunks (chunk_max_s 2.0 / 1.5 with Ward and 0.5 s): pooled
                                      # 27.7 % (mixture 19.8 %) / 26.1 % (dev00 21.5 %)
    cluster_min_s: float = 0.5        # chunks shorter than this are left out of clustering and join
                                      # the nearest cluster's centroid afterwards (0: all clustered;
                                      # 0.5 as segmentation-3.0's min_embedding_s: shorter speech
                                      # gives an unreliable embedding)
    voice: str = "campplus"           # who: "campplus" (the embedded backend's chunk clustering
                                      # and 1.5 s window scoring, on CAM++ embeddings) or "ge2e"
                                      # (Resemblyzer, as the embedded backend): pooled 28.3 % vs
                                      # 31.1 % with Silero speech
    campplus_hop_s: float | None = 0.5  # hop of the CAM++ scoring windows (None: the embedded
                                        # backend's hop_s, 0.25 s: pooled 28.3 % instead of 28.1 %,
                                        # dev00 14.5 % / dev01 21.3 % / mixture 13.1 % instead of
                                        # 16.4 / 18.5 / 12.0 %, twice the CAM++ time)
    campplus_block_s: float = 20.0    # the CAM++ scoring windows' frame features come from one pass
                                      # of the network over up to this many seconds of consecutive
                                      # windows, each window then pooling its own frames (0: a pass
                                      # per window, 1.5 s each, every frame three times over). 20 s:
                                      # pooled DER 25.6 % as before, every AMI file within 0.1 point,
                                      # dynamics --from-audio F1 0.593 / 0.696 / 0.812 (0.569 / 0.694 /
                                      # 0.800), naming 81.6 % and right-face 99.5 % unchanged, 0.044 x
                                      # real time instead of 0.061-0.064; 10 s: 25.9 % (dev01 20.3 %,
                                      # mixture 12.7 %); 3 and 5 s: 25.7 % (dev01 20.3 %)
    fill_pause_s: float = 0.15        # pauses shorter than this inside speech are filled
    min_speech_s: float = 0.2         # speech islands shorter than this are dropped
    counted_pause_s: float = 0.0      # a pause at most this long between two stretches of one
                                      # speaker is part of their turn when segmentation-3.0 counts
                                      # speech all through it (0: off; shorter pauses are filled
                                      # anyway, same_speaker_pause_s). 2.0: dev00 12.4 % instead of
                                      # 16.4 % (its reference counts pauses inside a turn as speech),
                                      # no other AMI file changes, pooled 27.7 %, dynamics unchanged,
                                      # but composed couples' DER 29.6 % instead of 21.1 % (false
                                      # alarm: their exact truth has those pauses silent)
    prints: str = "ge2e"              # voice prints that name clusters by enrolment: "ge2e" (GE2E
                                      # prints of each cluster's labelled speech and of the clips,
                                      # as the embedded backend) or "campplus" (with voice
                                      # "campplus": the clusters' CAM++ centroids, CAM++ clip prints)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiarizationParams:
    """Parameters of the embedded backend (seconds unless named otherwise)."""

    vad_threshold: float = 0.05       # Silero speech probability above which a 32 ms chunk is speech
                                      # (low: quiet and distant talkers and word onsets count; on
                                      # AMI it adds < 0.5 % false alarm and removes 2-7 % missed)
    fill_pause_s: float = 0.15        # pauses shorter than this inside speech are filled
    fit_edges: bool = True            # move speech edges to follow the level (below)
    edge_floor_db: float = 3.0        # a speech island's first and last frames must be this far
                                      # (dB, 50 ms mean) above the recording's noise floor (median
                                      # level of its non-speech): trims the VAD's hangover in quiet
                                      # rooms without cutting pauses inside speech
    edge_extend_db: float = 6.0       # a speech island grows outwards over neighbouring frames at
                                      # least this far above the noise floor (dB): soft onsets and
                                      # breaths before a word that Silero scores ~0
    edge_extend_s: float = 0.5        # the most a speech island grows outwards on each side
                                      # (see edge_extend_db)
    min_speech_s: float = 0.2         # speech islands shorter than this are dropped
    chunk_max_s: float = 3.0          # speech islands are cut into chunks at most this long; each
                                      # chunk is embedded whole and chunks are clustered
    chunk_prior: float = 1.0          # bonus of a frame's own chunk label, in standard deviations
                                      # of the window-centroid similarity: a sliding window must
                                      # beat it to move a change point
    mfcc_weight: float = 1.0          # weight of the MFCC-statistics similarity next to GE2E's
    n_mfcc: int = 20                  # MFCCs per 10 ms frame for that similarity
    window_s: float = 1.5             # sliding embedding window length (change points)
    hop_s: float = 0.25               # embedding window hop
    min_window_speech: float = 0.4    # a window is embedded only if this fraction of it is speech
    smooth_s: float = 0.5             # majority filter length on frame labels
    same_speaker_pause_s: float = 1.0 # a pause this short between two stretches of one speaker is
                                      # part of their turn (DOMAIN.md's turn gap)
    max_speakers: int = 6             # upper bound when the speaker count is unknown
    min_enrolment_similarity: float = 0.5  # a voice cluster less similar (cosine) than this to every
                                      # enrolment voice print stays unnamed
    overlap: OverlapParams = OverlapParams()  # overlapped speech detection (analysis/stages/speakers/overlap.py)
    backend: str = "embedded"         # single-microphone backend: "embedded" (this module),
                                      # "segmentation3" (pyannote/segmentation-3.0 + CAM++,
                                      # segmentation3.py; not the default: see README) or "hybrid"
                                      # (segmentation-3.0's speaker count, this module's scoring
                                      # on CAM++: hybrid.py; optional)
    segmentation3: Segmentation3Params = Segmentation3Params()  # that backend's parameters
    hybrid: HybridParams = HybridParams()  # the hybrid backend's parameters
    pyannote_pipeline: str | None = None  # a pyannote.audio pipeline used instead (folder or hub id; set
                                      # from PLAYBACK_PYANNOTE_PIPELINE by the pipeline, see pyannote_backend.py)

    def to_dict(self) -> dict:
        return asdict(self)


@shared_model
def _vad_model():
    from silero_vad import load_silero_vad

    return load_silero_vad()


@shared_model
def _voice_encoder():
    from resemblyzer import VoiceEncoder

    return VoiceEncoder("cpu", verbose=False)


def model_versions() -> dict:
    """Model versions of the embedded backend, for the run record."""
    return {"silero-vad": version("silero-vad"), "resemblyzer": version("resemblyzer"), "overlap": model_version()}


def speech_mask(y: np.ndarray, sr: int, *, params: DiarizationParams = DiarizationParams(),
                probabilities: np.ndarray | None = None) -> np.ndarray:
    """Boolean speech mask at :data:`FRAME_S` resolution, shape ``(ceil(len(y)/sr/FRAME_S),)``;
    ``probabilities`` are Silero's (:func:`vad_probabilities`) when already computed."""
    n_frames = int(np.ceil(len(y) / sr / FRAME_S))
    if len(y) < 512:
        return np.zeros(n_frames, bool)
    probs = vad_probabilities(y, sr) if probabilities is None else probabilities
    return mask_from_vad(probs, frame_level_db(y, sr) if params.fit_edges else None, n_frames, sr, params=params)


def mask_from_vad(probs: np.ndarray, level_db: np.ndarray | None, n_frames: int, sr: int, *,
                  params: DiarizationParams = DiarizationParams()) -> np.ndarray:
    """:func:`speech_mask` from Silero's probabilities (one per 512 samples at ``sr`` Hz) and the
    10 ms levels (:func:`frame_level_db`, dBFS; needed with ``params.fit_edges``): shape (n_frames,)."""
    chunk_s = 512 / sr
    idx = np.minimum((np.arange(n_frames) * FRAME_S / chunk_s).astype(int), len(probs) - 1)
    mask = probs[idx] > params.vad_threshold
    mask = fill_short_runs(mask, value=False, max_len=int(params.fill_pause_s / FRAME_S))
    mask = fill_short_runs(mask, value=True, max_len=int(params.min_speech_s / FRAME_S))
    return _fit_edges_to_level(mask, level_db, params=params) if params.fit_edges else mask


def vad_probabilities(y: np.ndarray, sr: int) -> np.ndarray:
    """Silero's speech probability of each chunk of ``y`` (at least one chunk long, ``sr`` Hz),
    one per 512 samples at 16 kHz: exactly what ``model.audio_forward(y, sr)`` gives (one pass,
    the model's state carried from chunk to chunk, the last chunk padded with zeros) without the
    zero-padded copy of the whole signal it makes when the length is no multiple of a chunk."""
    import torch

    if sr != 16000 and sr % 16000 == 0:     # as Silero reads 32 or 48 kHz: every n-th sample
        y, sr = y[:: sr // 16000], 16000
    chunk = 512 if sr == 16000 else 256     # Silero's chunk at 16 kHz and 8 kHz
    model = _vad_model()
    if isinstance(y, Pcm16Signal):
        return _vad_in_blocks(model, y, sr, chunk)
    x = torch.from_numpy(np.ascontiguousarray(y, np.float32))
    whole = len(x) - len(x) % chunk
    with torch.no_grad():
        parts = [model.audio_forward(x[:whole], sr)]         # resets the model's state first
        if whole < len(x):                                   # the last chunk, with the state so far
            last = torch.zeros(1, chunk)
            last[0, :len(x) - whole] = x[whole:]
            parts.append(model(last, sr))
    return torch.cat(parts, 1).numpy()[0]


# samples of a 16-bit signal converted to float32 at a time for Silero (a multiple of its chunks)
VAD_BLOCK_SAMPLES = 2**20


def _vad_in_blocks(model, y: Pcm16Signal, sr: int, chunk: int) -> np.ndarray:
    """:func:`vad_probabilities` of a :class:`Pcm16Signal`, :data:`VAD_BLOCK_SAMPLES` at a time:
    Silero's ``audio_forward`` loop (the state reset, then ``forward`` on each chunk in turn,
    the last one padded with zeros) run here, so neither a whole float32 copy of the signal nor
    a tensor per chunk of the whole recording is held."""
    import torch

    out = np.empty(-(-len(y) // chunk), np.float32)
    model.reset_states()
    with torch.no_grad():
        for first in range(0, len(y), VAD_BLOCK_SAMPLES):
            block = y[first:first + VAD_BLOCK_SAMPLES]
            if len(block) % chunk:
                block = np.pad(block, (0, chunk - len(block) % chunk))
            x = torch.from_numpy(block)[None]
            for i in range(0, x.shape[1], chunk):
                out[(first + i) // chunk] = model(x[:, i:i + chunk], sr)[0, 0]
    return out


def _fit_edges_to_level(mask: np.ndarray, level_db: np.ndarray, *, params: DiarizationParams) -> np.ndarray:
    """``mask`` with each speech island's edges moved to follow the 50 ms mean level: leading
    and trailing frames within ``edge_floor_db`` of the noise floor (median level of the
    non-speech) are removed, then neighbouring frames at least ``edge_extend_db`` above it are
    added, up to ``edge_extend_s`` on each side."""
    if mask.all() or not mask.any():
        return mask
    level = np.convolve(level_db, np.ones(5) / 5, mode="same")
    level = np.pad(level, (0, max(0, len(mask) - len(level))), constant_values=-120.0)[: len(mask)]
    floor = np.median(level[~mask])
    quiet, loud = level < floor + params.edge_floor_db, level >= floor + params.edge_extend_db
    reach = int(params.edge_extend_s / FRAME_S)
    trimmed = mask.copy()
    for s, e, is_speech in runs(mask):
        if is_speech:
            a, b = s, e
            while a < b and quiet[a]:
                a += 1
            while b > a and quiet[b - 1]:
                b -= 1
            trimmed[s:a] = trimmed[b:e] = False
    out = trimmed.copy()
    for s, e, is_speech in runs(trimmed):
        if is_speech:
            a, b = s, e
            while a > 0 and s - a < reach and loud[a - 1] and not out[a - 1]:
                a -= 1
            while b < len(out) and b - e < reach and loud[b] and not out[b]:
                b += 1
            out[a:s] = out[e:b] = True
    return out


# 10 ms frames of a spectrum computed at a time (40 s; an STFT block of about 6 MB at 16 kHz):
# the mel and MFCC inputs never hold the whole session's spectrum
SPECTRUM_BLOCK_FRAMES = 4000


def mel_power(y: np.ndarray, sr: int, *, n_fft: int, hop: int, n_mels: int, prepare=None) -> np.ndarray:
    """``librosa.feature.melspectrogram(y=prepare(y), sr=sr, n_fft=n_fft, hop_length=hop,
    n_mels=n_mels)`` (power, frames centred every ``hop`` samples, zero padding) computed
    :data:`SPECTRUM_BLOCK_FRAMES` frames at a time, with the same output: shape ``(n_mels,
    1 + len(y) // hop)`` for an even ``n_fft``. ``prepare`` (elementwise, e.g. a gain) is applied
    to each block's samples."""
    out = None
    for first, samples in centred_frame_blocks(as_signal(y), n_fft, hop, SPECTRUM_BLOCK_FRAMES):
        block = _mel_block(samples, sr, n_fft=n_fft, hop=hop, n_mels=n_mels, prepare=prepare)
        if out is None:
            out = np.empty((n_mels, centred_frame_count(len(y), n_fft, hop)), block.dtype)
        out[:, first:first + block.shape[1]] = block
    return out


def _mel_block(samples: np.ndarray, sr: int, *, n_fft: int, hop: int, n_mels: int, prepare=None) -> np.ndarray:
    """The mel power of one block of :func:`centred_frame_blocks`: shape (n_mels, frames)."""
    import librosa

    return librosa.feature.melspectrogram(y=prepare(samples) if prepare else samples, sr=sr, n_fft=n_fft,
                                          hop_length=hop, n_mels=n_mels, center=False)


def _ge2e_framing() -> tuple[int, int, int]:
    """Resemblyzer's mel framing at 16 kHz: ``(n_fft, hop, n_mels)``."""
    from resemblyzer import hparams

    rate = hparams.sampling_rate
    return (int(rate * hparams.mel_window_length / 1000), int(rate * hparams.mel_window_step / 1000),
            hparams.mel_n_channels)


def _ge2e_gain(y: np.ndarray, peak: float | None) -> float:
    if peak is None:
        peak = max(y.max(), -y.min()) if len(y) else 0.0   # the largest |y| without a copy of y
    return peak or 1.0


def ge2e_mel(y: np.ndarray, sr: int, *, peak: float | None = None) -> np.ndarray:
    """Resemblyzer's mel input (``resemblyzer.audio.wav_to_mel_spectrogram``) for mono ``y`` at
    ``sr`` Hz, peak-normalised (by ``peak``, the largest absolute sample, when ``y`` is part of a
    longer recording), computed in blocks: shape (10 ms frames, 40) float32, aligned with
    :data:`FRAME_S` frames. :class:`Ge2eMelBlocks` reads the same rows a slice at a time."""
    if sr != 16000:
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=16000)
    gain = _ge2e_gain(y, peak)
    n_fft, hop, n_mels = _ge2e_framing()
    mel = mel_power(y, 16000, n_fft=n_fft, hop=hop, n_mels=n_mels, prepare=lambda block: block / gain * 0.5)
    return mel.astype(np.float32, copy=False).T


# blocks of a session's GE2E mel input kept at a time while embedding (640 kB each)
MEL_BLOCKS_KEPT = 8


class Ge2eMelBlocks:
    """``ge2e_mel(y, 16000)`` read a slice of rows at a time (``mel[a:b]``, ``len(mel)``): each
    :data:`SPECTRUM_BLOCK_FRAMES`-frame block is computed when first read, as :func:`ge2e_mel`
    computes it (the same values), and only the :data:`MEL_BLOCKS_KEPT` last read are kept, so
    that memory does not grow with the session (the whole mel of 50 minutes is 48 MB). Threads
    may read it at once."""

    def __init__(self, y: np.ndarray):
        self.y = as_signal(y)
        self.gain = _ge2e_gain(self.y, None)
        self.n_fft, self.hop, self.n_mels = _ge2e_framing()
        self.n_frames = centred_frame_count(len(y), self.n_fft, self.hop)
        self._blocks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, step = rows.indices(self.n_frames)
        if step != 1:
            raise IndexError("Ge2eMelBlocks reads contiguous rows only")
        if b <= a:
            return np.zeros((0, self.n_mels), np.float32)
        size = SPECTRUM_BLOCK_FRAMES
        parts = [self._block(j) for j in range(a // size, (b - 1) // size + 1)]
        held = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return held[a - a // size * size:b - a // size * size]

    def _block(self, j: int) -> np.ndarray:
        with self._lock:
            if j not in self._blocks:
                first = j * SPECTRUM_BLOCK_FRAMES
                samples = centred_frame_samples(self.y, self.n_fft, self.hop, first,
                                                min(SPECTRUM_BLOCK_FRAMES, self.n_frames - first))
                mel = _mel_block(samples, 16000, n_fft=self.n_fft, hop=self.hop, n_mels=self.n_mels,
                                 prepare=lambda block: block / self.gain * 0.5)
                self._blocks[j] = mel.astype(np.float32, copy=False).T
                while len(self._blocks) > MEL_BLOCKS_KEPT:
                    self._blocks.popitem(last=False)
            self._blocks.move_to_end(j)
            return self._blocks[j]


def session_ge2e_mel(y: np.ndarray, sr: int) -> Ge2eMelBlocks | np.ndarray:
    """A session's GE2E mel input for :func:`chunk_embeddings` and :func:`window_embeddings`:
    read a block at a time (:class:`Ge2eMelBlocks`) at 16 kHz, the whole :func:`ge2e_mel`
    otherwise (it resamples first)."""
    return Ge2eMelBlocks(y) if sr == 16000 else ge2e_mel(y, sr)


def ge2e_mel_span(y: np.ndarray, first: int, last: int, *, peak: float, offset: int = 0) -> np.ndarray:
    """Frames ``first`` to ``last`` (exclusive) of ``ge2e_mel(recording, 16000, peak=peak)``
    computed from the samples around them only: shape (last - first, 40). ``y`` (16 kHz) holds
    the recording from sample ``offset`` (a multiple of 160, or 0) to its end or beyond ``last``."""
    hop = 160                                         # 10 ms at 16 kHz; the 25 ms window reaches 200 samples out
    lo = max(max(first - 2, 0) * hop, offset)
    hi = min(offset + len(y), (last + 2) * hop)
    mel = ge2e_mel(y[lo - offset:hi - offset], 16000, peak=peak)
    return mel[first - lo // hop:last - lo // hop]


# windows embedded at a time (memory: about 0.5 MB of LSTM activations per window; 64 on each of
# two threads is as fast as 256 on one, and the embeddings are the same)
WINDOW_BATCH = 64


def window_embeddings(mel: np.ndarray, mask: np.ndarray, *, params: DiarizationParams = DiarizationParams(),
                      threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Embed the overlapping windows of ``mel`` (:func:`ge2e_mel`) that hold speech (on
    ``threads`` threads, :func:`embed_windows`).

    Returns ``(starts_s, embeddings)``: window start times, shape ``(w,)``, and L2-normalised
    GE2E embeddings, shape ``(w, 256)``.
    """
    starts = speech_window_starts(mask, params=params)
    if not starts:
        return np.zeros(0), np.zeros((0, 256), np.float32)
    return np.asarray(starts) * FRAME_S, embed_windows(mel, starts, int(params.window_s / FRAME_S), threads=threads)


def window_grid(n_frames: int, *, params: DiarizationParams = DiarizationParams()) -> range:
    """Start frames of every sliding window (``window_s`` long, every ``hop_s``) in ``n_frames``."""
    win, hop = int(params.window_s / FRAME_S), int(params.hop_s / FRAME_S)
    return range(0, max(n_frames - win, 0) + 1, hop)


def speech_window_starts(mask: np.ndarray, *, params: DiarizationParams = DiarizationParams()) -> list[int]:
    """Start frames of the sliding windows that are at least ``min_window_speech`` speech."""
    win = int(params.window_s / FRAME_S)
    return [s for s in window_grid(len(mask), params=params) if mask[s : s + win].mean() >= params.min_window_speech]


def embed_windows(mel: np.ndarray, starts: list[int], win: int, *, first: int = 0, threads: int = 1) -> np.ndarray:
    """Unit GE2E embeddings, shape (len(starts), 256), of the ``win``-frame windows of ``mel``
    (:func:`ge2e_mel`, whose row 0 is frame ``first``) starting at frames ``starts``; the
    batches of :data:`WINDOW_BATCH` windows shared among ``threads`` threads (the same
    embeddings: each batch is computed as on one thread)."""
    import torch

    encoder = _voice_encoder()

    def embed(i: int) -> np.ndarray:
        with torch.no_grad():   # in batches: the LSTM's activations grow with the batch, not the session
            batch = np.stack([_pad(mel[s - first : s - first + win], win) for s in starts[i:i + WINDOW_BATCH]])
            return encoder(torch.from_numpy(batch).float()).numpy()

    parts = map_in_threads(embed, range(0, len(starts), WINDOW_BATCH), threads)
    return _unit(np.concatenate(parts)) if parts else np.zeros((0, 256), np.float32)


def _pad(block: np.ndarray, length: int) -> np.ndarray:
    if len(block) >= length:
        return block
    return np.pad(block, ((0, length - len(block)), (0, 0)))


def speech_chunks(mask: np.ndarray, *, params: DiarizationParams = DiarizationParams()) -> list[tuple[int, int]]:
    """Speech islands of ``mask`` cut into near-equal chunks of at most ``chunk_max_s``: a list
    of ``(start_frame, end_frame)``."""
    longest = max(1, int(params.chunk_max_s / FRAME_S))
    chunks = []
    for s, e, is_speech in runs(mask):
        if is_speech:
            bounds = np.linspace(s, e, int(np.ceil((e - s) / longest)) + 1).astype(int)
            chunks += [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return chunks


def chunk_embeddings(mel: np.ndarray, chunks: list[tuple[int, int]], *, threads: int = 1) -> np.ndarray:
    """L2-normalised GE2E embedding of each chunk of ``mel`` (:func:`ge2e_mel`), shape
    ``(len(chunks), 256)``; chunks shorter than the encoder's 1.6 s are tiled to that length.
    The chunks are shared among ``threads`` threads (the same embeddings)."""
    import torch

    if not chunks:
        return np.zeros((0, 256), np.float32)
    encoder = _voice_encoder()

    def embed(chunk: tuple[int, int]) -> np.ndarray:
        a, b = chunk
        block = mel[a:b] if b <= len(mel) else mel[a:]
        if len(block) == 0:
            block = mel[max(0, a - 1) : a + 1]
        if len(block) < 160:
            block = np.concatenate([block] * int(np.ceil(160 / len(block))))
        with torch.no_grad():
            return encoder(torch.from_numpy(block[None]).float()).numpy()[0]

    return _unit(np.asarray(map_in_threads(embed, chunks, threads)))


def cluster(emb: np.ndarray, n_speakers: int | None, *, params: DiarizationParams = DiarizationParams(),
            weights: np.ndarray | None = None) -> np.ndarray:
    """Cluster labels 0..k-1 for embeddings of shape (w, d), optionally weighted (e.g. by
    duration). With ``n_speakers`` of 1 or 2 that many clusters; otherwise the count from 2 up
    to ``n_speakers`` (or ``max_speakers``) with the best silhouette (unknown count: only if
    it is above 0.1, else one cluster)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if len(emb) == 0:
        return np.zeros(0, int)
    if n_speakers is not None and min(n_speakers, len(emb)) <= 2:
        k = max(1, min(n_speakers, len(emb)))
        return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb, sample_weight=weights) if k > 1 else np.zeros(len(emb), int)
    # a participant list gives at most n voices (someone may barely speak): between 2 and n,
    # the count whose clusters are best separated wins
    most = min(n_speakers if n_speakers is not None else params.max_speakers, len(emb) - 1)
    best, best_score = np.zeros(len(emb), int), (-1.0 if n_speakers is not None else 0.1)
    for k in range(2, most + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(emb, sample_weight=weights)
        score = silhouette_score(emb, labels, metric="cosine") if len(set(labels.tolist())) > 1 else -1.0
        if score > best_score:
            best, best_score = labels, score
    return best


def session_mfcc(y: np.ndarray, sr: int, n_mfcc: int) -> np.ndarray:
    """``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_fft=25 ms, hop_length=10 ms,
    n_mels=40)`` computed in blocks with the same output: shape (10 ms frames, ``n_mfcc``). The
    log-mel's floor (``power_to_db``'s ``top_db``, 80 dB under the session's loudest mel value)
    is found over the whole session in a first pass over the blocks; the second computes them
    again and takes the cepstra, so that only one block of log-mel is held at a time (the whole
    session's would be 48 MB at 50 minutes)."""
    import librosa

    top_db = 80.0                       # librosa.power_to_db's default, as librosa.feature.mfcc uses it
    n_fft, hop = int(0.025 * sr), int(round(FRAME_S * sr))

    def log_mel_blocks():
        for first, samples in centred_frame_blocks(as_signal(y), n_fft, hop, SPECTRUM_BLOCK_FRAMES):
            yield first, librosa.power_to_db(_mel_block(samples, sr, n_fft=n_fft, hop=hop, n_mels=40), top_db=None)

    floor = max(block.max() for _, block in log_mel_blocks()) - top_db
    mfcc = None
    for first, block in log_mel_blocks():
        np.maximum(block, floor, out=block)
        if mfcc is None:
            mfcc = np.empty((centred_frame_count(len(y), n_fft, hop), n_mfcc), block.dtype)
        mfcc[first:first + block.shape[1]] = librosa.feature.mfcc(S=block, n_mfcc=n_mfcc).T
    return mfcc


def standardise_columns(x: np.ndarray, rows: int = 65536) -> np.ndarray:
    """``x`` of shape (n, d) standardised in place per column, ``(x - x.mean(0)) / (x.std(0) +
    1e-9)``, bit for bit as numpy computes it, but without numpy's temporary copy of ``x`` for
    the deviations (24 MB for 50 minutes of 20 MFCCs): the column sums run over ``rows`` rows at
    a time, carrying the running sum on, in the same order as numpy's axis-0 sum (row after
    row). Returns ``x``."""
    def column_sum(blocks) -> np.ndarray:
        total = None
        for block in blocks:
            total = np.add.reduce(block if total is None else np.concatenate([total[None], block]), axis=0)
        return total

    n = len(x)
    if n == 0:
        return x
    mean = column_sum(x[a:a + rows] for a in range(0, n, rows))
    mean /= n

    def squared_deviations():
        for a in range(0, n, rows):
            deviation = x[a:a + rows] - mean
            deviation *= deviation
            yield deviation

    variance = column_sum(squared_deviations())
    variance /= n
    x -= mean
    x /= np.sqrt(variance) + 1e-9
    return x


def mfcc_statistics(y: np.ndarray, sr: int, mask: np.ndarray, spans: list[tuple[int, int]], *,
                    params: DiarizationParams = DiarizationParams()) -> np.ndarray:
    """Mean and covariance (upper triangle) of the session-standardised MFCCs over the speech
    frames of each span ``(start_frame, end_frame)`` at :data:`FRAME_S`: shape
    ``(len(spans), n + n (n + 1) / 2)`` for ``n = params.n_mfcc``."""
    mfcc = standardise_columns(session_mfcc(y, sr, params.n_mfcc))
    upper = np.triu_indices(params.n_mfcc)
    out = []
    for a, b in spans:
        block = mfcc[a:b]
        speech = block[mask[a : a + len(block)]]
        block = speech if len(speech) >= 5 else block
        cov = np.cov(block.T) if len(block) > 1 else np.zeros((params.n_mfcc, params.n_mfcc))
        out.append(np.r_[block.mean(0), cov[upper]])
    return np.asarray(out).reshape(len(spans), -1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9)


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9) if x.size else x


def label_frames(mask: np.ndarray, chunks: list[tuple[int, int]], chunk_labels: np.ndarray, k: int,
                 params: DiarizationParams, score) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, object]:
    """From cluster scores to one speaker per 10 ms frame: ``score()`` gives ``(scores, centroids)``
    (:func:`speaker_scores` or :func:`scores_from_embeddings`); each chunk's own cluster gets
    ``chunk_prior``, then a majority filter and same-speaker pauses filled. Returns ``labels``
    (-1 silence), ``scores`` (NaN off speech), ``filled`` (-inf off speech), ``margin`` (0..1:
    2 standard deviations apart is sure) and the centroids."""
    n = len(mask)
    prior = np.zeros((n, k))
    for (a, b), c in zip(chunks, chunk_labels):
        prior[a:b, c] = params.chunk_prior
    if len(chunk_labels):
        scores, centroids = score()
        scores = np.where(np.isnan(scores), 0.0, scores) + prior  # uncovered frames keep their chunk label
        scores[~mask] = np.nan
    else:
        centroids = None
        scores = np.full((n, 1), np.nan)
    filled = np.where(np.isnan(scores), -np.inf, scores)
    raw = np.where(mask, filled.argmax(1), -1)
    labels = _majority_filter(raw, int(params.smooth_s / FRAME_S), k) if k > 1 else raw
    labels = np.where(mask, labels, -1)
    labels = fill_same_speaker_pauses(labels, int(params.same_speaker_pause_s / FRAME_S))
    top2 = np.sort(np.nan_to_num(filled, neginf=0.0), axis=1)[:, -2:] if k > 1 else np.ones((n, 2))
    margin = np.clip((top2[:, -1] - top2[:, 0]) / 2, 0, 1) if k > 1 else np.ones(n)
    return labels, scores, filled, margin, centroids


def speaker_scores(y: np.ndarray, sr: int, mel: np.ndarray, mask: np.ndarray, chunks: list[tuple[int, int]],
                   chunk_labels: np.ndarray, chunk_emb: np.ndarray, *, params: DiarizationParams) -> tuple[np.ndarray, np.ndarray]:
    """How much each 10 ms frame sounds like each cluster, in session standard deviations.

    Returns ``(scores, centroids)``: shape ``(n_frames, k)`` (NaN where no window covers the
    frame), the mean over the covering windows of their z-scored GE2E similarity plus
    ``mfcc_weight`` times their z-scored MFCC-statistics similarity; and the clusters' unit GE2E
    centroids, shape ``(k, 256)``.
    """
    starts, emb = window_embeddings(mel, mask, params=params)
    return scores_from_embeddings(y, sr, mask, chunks, chunk_labels, chunk_emb, starts, emb, params=params)


def scores_from_embeddings(y: np.ndarray, sr: int, mask: np.ndarray, chunks: list[tuple[int, int]],
                           chunk_labels: np.ndarray, chunk_emb: np.ndarray, starts: np.ndarray, emb: np.ndarray,
                           *, params: DiarizationParams) -> tuple[np.ndarray, np.ndarray]:
    """:func:`speaker_scores` from given embeddings: chunks' ``chunk_emb`` (one row per chunk) and
    windows' ``emb`` starting at ``starts`` (s), any embedding (GE2E, CAM++) as unit rows."""
    n, k = len(mask), int(chunk_labels.max()) + 1
    weights = np.array([b - a for a, b in chunks], float)

    def cluster_means(x: np.ndarray) -> np.ndarray:
        return _unit(np.stack([(x[chunk_labels == c] * weights[chunk_labels == c, None]).sum(0) for c in range(k)]))

    centroids = cluster_means(chunk_emb)
    if not len(emb):
        return np.full((n, k), np.nan), centroids
    similarity = _zscore(emb @ centroids.T)
    if params.mfcc_weight:
        win = int(params.window_s / FRAME_S)
        spans = [(s, s + win) for s in (starts / FRAME_S).round().astype(int)]
        stats = mfcc_statistics(y, sr, mask, spans + list(chunks), params=params)
        window_stats, chunk_stats = stats[: len(spans)], stats[len(spans):]
        mean, std = window_stats.mean(0), window_stats.std(0) + 1e-9
        spectral = _unit((window_stats - mean) / std) @ cluster_means(_unit((chunk_stats - mean) / std)).T
        similarity = similarity + params.mfcc_weight * _zscore(spectral)
    return _spread(starts, similarity, params.window_s, n), centroids


def _spread(starts_s: np.ndarray, window_sim: np.ndarray, window_s: float, n_frames: int) -> np.ndarray:
    """Per-frame mean of ``window_sim`` (w, k) over the windows (``window_s`` long, starting at
    ``starts_s``) covering each frame: shape ``(n_frames, k)``, NaN where none covers it."""
    k = window_sim.shape[1]
    total = np.zeros((n_frames + 1, k))
    count = np.zeros(n_frames + 1)
    win = int(window_s / FRAME_S)
    for start, sim in zip((starts_s / FRAME_S).round().astype(int), window_sim):
        total[start : start + win] += sim
        count[start : start + win] += 1
    with np.errstate(invalid="ignore"):
        return (total / count[:, None])[:n_frames]


def diarize(
    y: np.ndarray, sr: int, *, n_speakers: int | None, params: DiarizationParams = DiarizationParams()
) -> pd.DataFrame:
    """Speaker segments of ``y`` (float mono at ``sr`` Hz): columns ``start_s, end_s,
    participant_id, confidence`` with cluster labels ``spk0, spk1, ...`` (ordered by first
    speech), sorted by start; two people's segments overlap where both talk. Empty when there
    is no speech."""
    frames = diarize_frames(y, sr, n_speakers=n_speakers, params=params)
    k = frames.scores.shape[1]
    return activity_to_segments(frames.activity(), [f"spk{c}" for c in range(k)], frames.confidence)


@dataclass
class FrameDiarization:
    """Frame-level result: ``labels`` (n_frames,) int, -1 for non-speech; ``scores``
    (n_frames, k) similarity per cluster; ``confidence`` (n_frames,) in [0, 1]; ``centroids``
    (k, 256) unit voice print of each cluster, in label order (None when not computed);
    ``second`` (n_frames,) int, the cluster also speaking in overlapped frames, -1 elsewhere
    (None when overlap detection did not run); ``overlap_note`` says how overlaps were found."""

    labels: np.ndarray
    scores: np.ndarray
    confidence: np.ndarray
    speech: np.ndarray
    centroids: np.ndarray | None = None
    second: np.ndarray | None = None
    overlap_note: str = "overlap detection off"
    method: str = "single microphone: Silero VAD + Resemblyzer embeddings + k-means"  # the run record's words

    def activity(self) -> np.ndarray:
        """Who speaks in each frame, shape (n_frames, k) bool (two clusters where overlapped)."""
        k = self.scores.shape[1]
        active = np.stack([self.labels == c for c in range(k)], 1) if k else np.zeros((len(self.labels), 0), bool)
        if self.second is not None:
            rows = np.flatnonzero(self.second >= 0)
            active[rows, self.second[rows]] = True
        return active

    def relabelled(self, order: list[int]) -> "FrameDiarization":
        """The same result with cluster ``order[j]`` renamed ``j``."""
        new_of = {old: new for new, old in enumerate(order)}

        def rename(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else np.array([new_of.get(int(v), -1) for v in values], int)

        return FrameDiarization(labels=rename(self.labels), scores=self.scores[:, order], confidence=self.confidence,
                                speech=self.speech, centroids=self.centroids[order] if self.centroids is not None else None,
                                second=rename(self.second), overlap_note=self.overlap_note, method=self.method)


@dataclass
class VoiceFeatures:
    """What the embedded backend measures on a recording before it clusters: the ``speech`` mask
    (n_frames,), speech ``chunks`` ``(start_frame, end_frame)`` and their unit GE2E embeddings
    ``chunk_emb`` (len(chunks), 256), the sliding windows' ``starts_s`` (w,) and embeddings
    ``window_emb`` (w, 256), and the overlap model's windows (``(starts_s, activity)``,
    :func:`overlap.speaker_activity`; None with ``overlap_note`` saying why)."""

    speech: np.ndarray
    chunks: list[tuple[int, int]]
    chunk_emb: np.ndarray
    starts_s: np.ndarray
    window_emb: np.ndarray
    overlap: tuple[np.ndarray, np.ndarray] | None
    overlap_note: str


def overlap_windows(y: np.ndarray, sr: int, *, params: OverlapParams) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """The overlap model's windows of ``y`` (:func:`overlap.speaker_activity`), or None and why
    (detection off, its model file missing, or a recording shorter than 0.5 s: no overlap)."""
    if not params.enabled:
        return None, "overlap detection off"
    if len(y) < sr * 0.5:
        return None, ""
    try:
        return overlap.speaker_activity(y, sr, params=params), ""
    except ModelUnavailableError as exc:
        logging.getLogger(__name__).warning("Overlapped speech is not detected: %s", exc)
        return None, f"overlapped speech not detected (model file {SEGMENTATION.filename} missing)"


# threads the voice work keeps busy: each of its models runs on about one core (Silero's
# chunk-by-chunk loop, GE2E's LSTM), so the overlap model runs beside Silero and the embeddings
# are shared between two threads (a 50-minute session: 85.5 s of work in 47.0 s on 2 cores)
VOICE_THREADS = min(2, os.cpu_count() or 1)


@contextmanager
def _torch_threads(n: int):
    """torch's intra-op threads set to ``n`` for the block (process-wide), then put back. Two
    Python threads each running torch on its own pool of two oversubscribe two cores: at 50
    minutes the voice work took 141 CPU s in 74 s instead of 114 CPU s in 63 s."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def voice_features(y: np.ndarray, sr: int, *, params: DiarizationParams = DiarizationParams()) -> VoiceFeatures:
    """:class:`VoiceFeatures` of ``y`` (float mono, ``sr`` Hz), on :data:`VOICE_THREADS` threads
    of one torch thread each (the same features as on one)."""
    with _torch_threads(1), background_thread("playback-overlap") as side:
        overlap = side.submit(overlap_windows, y, sr, params=params.overlap) if VOICE_THREADS > 1 else None
        mask = speech_mask(y, sr, params=params)
        chunks = speech_chunks(mask, params=params)
        mel = session_ge2e_mel(y, sr)
        chunk_emb = chunk_embeddings(mel, chunks, threads=VOICE_THREADS)
        starts, emb = (window_embeddings(mel, mask, params=params, threads=VOICE_THREADS) if chunks
                       else (np.zeros(0), np.zeros((0, 256))))
        windows, note = overlap.result() if overlap is not None else overlap_windows(y, sr, params=params.overlap)
    return VoiceFeatures(mask, chunks, chunk_emb, starts, emb, windows, note)


def diarize_frames(
    y: np.ndarray, sr: int, *, n_speakers: int | None, params: DiarizationParams = DiarizationParams(),
    features: VoiceFeatures | None = None,
) -> FrameDiarization:
    """Frame-level diarization of ``y`` (float mono, ``sr`` Hz); ``features`` when already
    measured (:func:`voice_features`, or the live analysis's)."""
    f = voice_features(y, sr, params=params) if features is None else features
    chunks = f.chunks
    chunk_labels = cluster(f.chunk_emb, n_speakers, params=params,
                           weights=np.array([b - a for a, b in chunks], float) if chunks else None)
    k = int(chunk_labels.max()) + 1 if len(chunk_labels) else 1
    labels, scores, filled, margin, centroids = label_frames(
        f.speech, chunks, chunk_labels, k, params,
        lambda: scores_from_embeddings(y, sr, f.speech, chunks, chunk_labels, f.chunk_emb, f.starts_s, f.window_emb,
                                       params=params))
    second, note = _second_speakers(labels, filled, f, params=params.overlap)
    frames = FrameDiarization(labels=labels, scores=scores, confidence=margin, speech=f.speech, centroids=centroids,
                              second=second, overlap_note=note)
    return frames.relabelled(_first_appearance_order(labels, k))


def _second_speakers(labels: np.ndarray, scores: np.ndarray, features: VoiceFeatures, *,
                     params: OverlapParams) -> tuple[np.ndarray | None, str]:
    """Per frame, the cluster also speaking where :mod:`analysis.stages.speakers.overlap` finds overlapped
    speech inside labelled speech (the best-matching other cluster; -1 elsewhere), and a note
    for the record. ``(None, reason)`` when detection is off or its model is missing."""
    k = scores.shape[1]
    if features.overlap is None and features.overlap_note:
        return None, features.overlap_note
    overlapped = (overlap.mask_from_windows(*features.overlap, len(labels), params=params)
                  if features.overlap is not None else np.zeros(len(labels), bool)) & (labels >= 0)
    second = np.full(len(labels), -1)
    if k > 1:
        others = scores.copy()
        speaking = labels >= 0
        others[np.flatnonzero(speaking), labels[speaking]] = -np.inf
        overlapped &= np.isfinite(others.max(1))  # filled pauses have no voice to match
        second[overlapped] = others[overlapped].argmax(1)
    return second, f"overlaps from {overlap.model_version()}: {(second >= 0).sum() * FRAME_S:.1f} s"


def _majority_filter(labels: np.ndarray, width: int, k: int) -> np.ndarray:
    """Most frequent speech label within a centred window of ``width`` frames."""
    if width <= 1:
        return labels
    onehot = np.stack([(labels == c).astype(float) for c in range(k)], 1)
    kernel = np.ones(width)
    smoothed = np.stack([np.convolve(onehot[:, c], kernel, mode="same") for c in range(k)], 1)
    return np.where(labels >= 0, smoothed.argmax(1), -1)


def _first_appearance_order(labels: np.ndarray, k: int) -> list[int]:
    seen: list[int] = []
    for value in labels[labels >= 0]:
        if value not in seen:
            seen.append(int(value))
            if len(seen) == k:
                break
    return seen + [c for c in range(k) if c not in seen]
