"""Who spoke when from one microphone, in the shape of pyannote's 3.x pipeline, on models that
work offline: pyannote/segmentation-3.0 and CAM++ embeddings.

1. **Local speakers.** pyannote/segmentation-3.0 (:data:`analysis.core.models.SEGMENTATION_3`,
   MIT) reads 10 s windows sliding every ``step_s`` and gives, every ~17 ms, one of seven
   *powerset* classes: nobody, one of three window-local speakers, or two of them at once;
   decoded to three binary activities (:class:`pyannote.audio.utils.powerset.Powerset`, inside
   ``pyannote.audio.Inference``). Overlapped speech comes out of the model itself.
2. **An embedding per (window, local speaker)**: CAM++ (:mod:`analysis.stages.speakers.campplus`,
   3D-Speaker, Apache-2.0) of that speaker's frames in the window, overlapped frames left out
   when enough clean speech remains (``exclude_overlap``). Resemblyzer's GE2E can be chosen
   instead (``embedding="ge2e"``) for comparison.
3. **Global clustering** of those embeddings (pyannote's ``AgglomerativeClustering``: centroid
   linkage on the cosine, a distance threshold, small clusters merged into large ones), bounded
   by the participant count: at most that many voices (``count="max"``) or exactly that many
   (``count="exact"``).
4. **Reconstruction** (pyannote's ``SpeakerDiarization.reconstruct``): every window's local
   speakers take their cluster, windows are averaged, and each frame keeps as many speakers as
   the windows count there (two in overlapped speech).

Steps 1, 3 and 4 are pyannote.audio's own ``SpeakerDiarization`` pipeline
(:class:`OfflineSpeakerDiarization` subclasses it); what is Playback's is the local model
loading, the CAM++ network and an embedding step that embeds each window's audio once and skips
window-local speakers who do not speak in it.
"""
from __future__ import annotations

import math
import os
import warnings

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

import numpy as np
import pandas as pd

from analysis.core.frames import FRAME_S
from analysis.core.models import CAMPPLUS, SEGMENTATION_3, resolve_model, shared_model
from analysis.stages.speakers.diarization import Segmentation3Params
from analysis.stages.speakers.overlap import load_quietly

MODEL_RATE_HZ = 16000
WINDOW_S = 10.0


@shared_model
def _segmentation_model():
    """pyannote/segmentation-3.0 in eval mode (ModelUnavailableError when the file is missing)."""
    path = resolve_model(SEGMENTATION_3)
    from pyannote.audio import Model

    return load_quietly(lambda: Model.from_pretrained(path)).eval()


@shared_model
def _campplus_model():
    """The CAM++ network with its published weights (ModelUnavailableError when missing)."""
    from analysis.stages.speakers import campplus

    return campplus.load(resolve_model(CAMPPLUS))


def model_versions() -> dict:
    from importlib.metadata import version

    return {"pyannote.audio": version("pyannote.audio"),
            "segmentation": f"pyannote/segmentation-3.0 ({SEGMENTATION_3.sha256[:16]})",
            "embedding": f"CAM++ 3D-Speaker zh-en common advanced ({CAMPPLUS.sha256[:16]})"}


class WindowEmbedder:
    """Embeddings of window-local speakers: one call per window with its waveform and the
    speakers' frame masks. ``dimension``, ``sample_rate`` and ``metric`` as pyannote's
    embedding wrappers have them."""

    sample_rate = MODEL_RATE_HZ
    metric = "cosine"

    def __init__(self, kind: str = "campplus"):
        if kind not in ("campplus", "ge2e"):
            raise ValueError(f"embedding {kind!r}: use 'campplus' or 'ge2e'")
        self.kind = kind
        self.dimension = 192 if kind == "campplus" else 256

    def window(self, waveform: np.ndarray, masks: list[np.ndarray | None]) -> np.ndarray:
        """Embeddings (len(masks), dimension) for ``waveform`` (samples,) and one boolean mask per
        local speaker on a regular grid over the window (None or too short: NaN row)."""
        import torch

        out = np.full((len(masks), self.dimension), np.nan, np.float32)
        if not any(m is not None for m in masks):
            return out
        if self.kind == "campplus":
            from analysis.stages.speakers import campplus

            model = _campplus_model()
            with torch.inference_mode():
                feats = campplus.fbank(torch.from_numpy(np.ascontiguousarray(waveform, np.float32)))
                for i, mask in enumerate(masks):
                    if mask is None:
                        continue
                    keep = _resample_mask(mask, len(feats))
                    if keep.sum() < 20:
                        continue
                    f = feats[torch.from_numpy(keep)]
                    f = f - f.mean(0, keepdim=True)
                    out[i] = model(f[None])[0].numpy()
            return out
        from analysis.stages.speakers.diarization import _voice_encoder
        from resemblyzer.audio import wav_to_mel_spectrogram

        encoder = _voice_encoder()
        for i, mask in enumerate(masks):
            if mask is None:
                continue
            keep = _resample_mask(mask, len(waveform))
            if keep.sum() < 0.2 * MODEL_RATE_HZ:
                continue
            y = waveform[keep]
            mel = wav_to_mel_spectrogram(y / (np.abs(y).max() + 1e-9) * 0.5)
            if len(mel) < 160:
                mel = np.concatenate([mel] * int(math.ceil(160 / len(mel))))
            with torch.no_grad():
                out[i] = encoder(torch.from_numpy(mel[None]).float()).numpy()[0]
        return out


def _resample_mask(mask: np.ndarray, n: int) -> np.ndarray:
    """Boolean ``mask`` on a regular grid over a window, read at ``n`` regular points of it."""
    idx = np.minimum(((np.arange(n) + 0.5) * len(mask) / n).astype(int), len(mask) - 1)
    return np.asarray(mask, bool)[idx]


def _pipeline_class():
    """:class:`OfflineSpeakerDiarization`, built on first use (pyannote imports are slow)."""
    from pyannote.audio import Audio, Inference
    from pyannote.audio.core.pipeline import Pipeline
    from pyannote.audio.pipelines import SpeakerDiarization
    from pyannote.audio.pipelines.clustering import AgglomerativeClustering
    from pyannote.pipeline.parameter import ParamDict, Uniform

    class OfflineSpeakerDiarization(SpeakerDiarization):
        """pyannote.audio's ``SpeakerDiarization`` on a local segmentation model and a
        :class:`WindowEmbedder`, with agglomerative clustering (no PLDA: the pretrained PLDA
        belongs to another embedding). Only the constructor and the embedding step differ."""

        def __init__(self, segmentation, embedder: WindowEmbedder, *, step_s: float, batch: int,
                     exclude_overlap: bool, min_embedding_s: float):
            Pipeline.__init__(self)
            self.legacy = False
            self.segmentation_model = "pyannote/segmentation-3.0 (local file)"
            duration = segmentation.specifications.duration
            self.segmentation_step = step_s / duration
            self.embedding = embedder.kind
            self.embedding_batch_size = 1
            self.embedding_exclude_overlap = exclude_overlap
            self.min_embedding_s = min_embedding_s
            self.plda = None
            self.klustering = "AgglomerativeClustering"
            self.der_variant = {"collar": 0.0, "skip_overlap": False}
            self._segmentation = Inference(segmentation, duration=duration, step=step_s, skip_aggregation=True,
                                           batch_size=batch)
            self.segmentation = ParamDict(min_duration_off=Uniform(0.0, 1.0))
            self._embedding = embedder
            self._audio = Audio(sample_rate=embedder.sample_rate, mono="downmix")
            self.clustering = AgglomerativeClustering(metric=embedder.metric)
            self._expects_num_speakers = False

        def get_embeddings(self, file, binary_segmentations, exclude_overlap: bool = False, hook=None):
            """(num_chunks, local speakers, dimension) embeddings, NaN for a local speaker with
            less than ``min_embedding_s`` of speech in the window (left out of clustering, as
            pyannote's ``filter_embeddings`` leaves out NaN rows).

            Such a local speaker is also made *inactive* in that window: its column of
            ``binary_segmentations`` is zeroed in place (for a powerset model it is the very
            array ``reconstruct`` reads), so ``apply`` gives it pyannote's throw-away cluster -2.
            Otherwise the nearest-centroid step, comparing a NaN embedding, would put it in
            cluster 0 whatever its voice. (When no local speaker at all could be embedded the
            segmentation is left alone: there is no cluster to keep.)"""
            if self.training and "training_cache/embeddings" in file:  # as pyannote's: reused across trials
                return file["training_cache/embeddings"]["embeddings"]
            data = np.nan_to_num(binary_segmentations.data, nan=0.0) > 0.5
            num_chunks, num_frames, local = data.shape
            frame_s = binary_segmentations.sliding_window.duration / num_frames
            least = int(self.min_embedding_s / frame_s)
            out = np.full((num_chunks, local, self._embedding.dimension), np.nan, np.float32)
            for c, (chunk, _) in enumerate(binary_segmentations):
                masks = []
                clean = data[c].sum(1) < 2
                for s in range(local):
                    mask = data[c, :, s]
                    if exclude_overlap and (mask & clean).sum() >= least:
                        mask = mask & clean
                    masks.append(mask if mask.sum() >= least else None)
                if any(m is not None for m in masks):
                    waveform, _ = self._audio.crop(file, chunk, mode="pad")
                    out[c] = self._embedding.window(waveform.numpy()[0], masks)
                if hook is not None:
                    hook("embeddings", None, total=num_chunks, completed=c + 1)
            unembedded = np.isnan(out).any(2) & data.any(1)
            if unembedded.any() and not np.isnan(out).any(2).all():  # all NaN: pyannote's own path
                chunks, speakers = np.nonzero(unembedded)
                binary_segmentations.data[chunks, :, speakers] = 0.0
            if self.training:
                file["training_cache/embeddings"] = {"embeddings": out}
            return out

    return OfflineSpeakerDiarization


@shared_model
def _offline_class():
    return _pipeline_class()


def build_pipeline(params: Segmentation3Params = Segmentation3Params()):
    """An instantiated :class:`OfflineSpeakerDiarization` (models loaded once per process)."""
    cls = _offline_class()
    pipeline = cls(_segmentation_model(), WindowEmbedder(params.embedding), step_s=params.step_s,
                   batch=params.batch, exclude_overlap=params.exclude_overlap,
                   min_embedding_s=params.min_embedding_s)
    pipeline.instantiate({
        "segmentation": {"min_duration_off": params.min_duration_off},
        "clustering": {"method": params.method, "threshold": params.threshold,
                       "min_cluster_size": params.min_cluster_size},
    })
    return pipeline


def diarize_annotation(y: np.ndarray, sr: int, *, n_speakers: int | None,
                       params: Segmentation3Params = Segmentation3Params()):
    """pyannote's ``DiarizeOutput`` for mono ``y`` at ``sr`` Hz."""
    import torch

    if sr != MODEL_RATE_HZ:
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=MODEL_RATE_HZ)
    waveform = torch.from_numpy(np.ascontiguousarray(y, np.float32)).reshape(1, -1)
    kwargs = {}
    if n_speakers:
        kwargs = {"num_speakers": int(n_speakers)} if params.count == "exact" else {"max_speakers": int(n_speakers)}
    pipeline = build_pipeline(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline({"waveform": waveform, "sample_rate": MODEL_RATE_HZ, "uri": "session"}, **kwargs)


def speaker_count(y: np.ndarray, sr: int, n_frames: int,
                  params: Segmentation3Params = Segmentation3Params()) -> np.ndarray:
    """How many people speak in each 10 ms frame (``n_frames`` of them), from
    segmentation-3.0 alone: its sliding windows' local activities summed and averaged over the
    overlapping windows (pyannote's ``speaker_count`` before it rounds), shape (n_frames,)
    float. No embedding."""
    return count_and_overlap(y, sr, n_frames, params)[0]


def count_and_overlap(y: np.ndarray, sr: int, n_frames: int,
                      params: Segmentation3Params = Segmentation3Params()) -> tuple[np.ndarray, np.ndarray]:
    """:func:`speaker_count` and, from the same forward passes, the **overlap probability** of
    each 10 ms frame: segmentation-3.0's powerset probability of its two-speaker classes, averaged
    over the overlapping windows (soft, where the count takes each window's most likely class);
    two arrays of shape (n_frames,)."""
    import torch
    from pyannote.audio import Inference
    from pyannote.audio.utils.powerset import Powerset
    from pyannote.core import SlidingWindowFeature

    if sr != MODEL_RATE_HZ:
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=MODEL_RATE_HZ)
    model = _segmentation_model()
    spec = model.specifications
    spec = spec[0] if isinstance(spec, (list, tuple)) else spec
    sizes = Powerset(len(spec.classes), spec.powerset_max_classes).mapping.sum(1).numpy()
    inference = Inference(model, duration=spec.duration, step=params.step_s, skip_aggregation=True,
                          skip_conversion=True, batch_size=params.batch)
    waveform = torch.from_numpy(np.ascontiguousarray(y, np.float32)).reshape(1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log_probs = inference({"waveform": waveform, "sample_rate": MODEL_RATE_HZ, "uri": "session"})
    probs = np.exp(log_probs.data)  # (windows, frames, powerset classes)
    per_window = {"count": sizes[probs.argmax(-1)][..., None],
                  "overlap": probs[..., sizes >= 2].sum(-1, keepdims=True)}
    times = (np.arange(n_frames) + 0.5) * FRAME_S
    out = []
    for name in ("count", "overlap"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = Inference.aggregate(SlidingWindowFeature(per_window[name].astype(np.float32), log_probs.sliding_window),
                                       model.receptive_field, hamming=False, missing=0.0, skip_average=False)
        window = mean.sliding_window
        index = np.clip(np.floor((times - window.start - window.duration / 2) / window.step + 0.5).astype(int),
                        0, len(mean.data) - 1)
        out.append(np.asarray(mean.data[:, 0], float)[index] if len(mean.data) else np.zeros(n_frames))
    return out[0], out[1]


def diarize(y: np.ndarray, sr: int, *, n_speakers: int | None,
            params: Segmentation3Params = Segmentation3Params()) -> pd.DataFrame:
    """Speaker segments: columns ``start_s, end_s, participant_id, confidence`` with labels
    ``spk0, spk1, ...`` in order of first speech; two people's segments overlap where both
    talk. Confidence is 1.0 (the pipeline gives hard turns)."""
    output = diarize_annotation(y, sr, n_speakers=n_speakers, params=params)
    rows = [(float(t.start), float(t.end), str(label)) for t, _, label in
            output.speaker_diarization.itertracks(yield_label=True)]
    frame = pd.DataFrame(rows, columns=["start_s", "end_s", "participant_id"])
    order = frame.sort_values("start_s").participant_id.drop_duplicates().tolist()
    frame["participant_id"] = frame.participant_id.map({label: f"spk{i}" for i, label in enumerate(order)})
    frame["confidence"] = 1.0
    return frame.sort_values(["start_s", "participant_id"], ignore_index=True)


def to_frames(output, n_frames: int):
    """A :class:`~analysis.stages.speakers.diarization.FrameDiarization` (10 ms frames) of
    pyannote's ``DiarizeOutput``, so that enrolment and faces name its clusters as they name the
    embedded backend's: ``labels`` from the exclusive diarization (one speaker per frame),
    ``second`` the other speaker where two speak at once, ``centroids`` the clusters' unit CAM++
    embeddings, ``confidence`` 1 (hard turns)."""
    from analysis.stages.speakers.diarization import FrameDiarization

    labels_of = output.speaker_diarization.labels()
    k = max(len(labels_of), 1)
    index = {label: i for i, label in enumerate(labels_of)}

    def grid(annotation) -> np.ndarray:
        active = np.zeros((n_frames, k), bool)
        for turn, _, label in annotation.itertracks(yield_label=True):
            a, b = int(round(turn.start / FRAME_S)), min(int(round(turn.end / FRAME_S)), n_frames)
            if label in index and b > a:
                active[a:b, index[label]] = True
        return active

    active, exclusive = grid(output.speaker_diarization), grid(output.exclusive_speaker_diarization)
    speech = active.any(1)
    labels = np.where(exclusive.any(1), exclusive.argmax(1), np.where(speech, active.argmax(1), -1))
    others = active.copy()
    others[np.flatnonzero(labels >= 0), labels[labels >= 0]] = False
    second = np.where(others.any(1), others.argmax(1), -1)
    scores = np.where(speech[:, None], active.astype(float), np.nan)
    centroids = None
    if output.speaker_embeddings is not None and len(output.speaker_embeddings) >= k:
        c = np.asarray(output.speaker_embeddings[:k], float)
        centroids = c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-9)
    frames = FrameDiarization(labels=labels.astype(int), scores=scores, confidence=np.ones(n_frames), speech=speech,
                              centroids=centroids, second=second.astype(int),
                              overlap_note=f"overlaps from pyannote/segmentation-3.0: {(second >= 0).sum() * FRAME_S:.1f} s",
                              method="single microphone: pyannote/segmentation-3.0 + CAM++ embeddings + "
                                     "agglomerative clustering")
    order = []
    for value in labels[labels >= 0]:
        if int(value) not in order:
            order.append(int(value))
    return frames.relabelled(order + [c for c in range(k) if c not in order])


def diarize_frames(y: np.ndarray, sr: int, *, n_speakers: int | None,
                   params: Segmentation3Params = Segmentation3Params()):
    """:func:`to_frames` of :func:`diarize_annotation` (clusters in order of first speech)."""
    n_frames = int(np.ceil(len(y) / sr / FRAME_S))
    return to_frames(diarize_annotation(y, sr, n_speakers=n_speakers, params=params), n_frames)


def voice_print(y: np.ndarray, sr: int, *, vad_params=None) -> np.ndarray | None:
    """CAM++ voice print of mono ``y`` (an enrolment clip): the unit embedding of its speech
    frames (Silero VAD, the embedded backend's settings), shape (192,); None without speech."""
    import torch

    from analysis.stages.speakers import campplus
    from analysis.stages.speakers.diarization import DiarizationParams, speech_mask

    if sr != MODEL_RATE_HZ:
        import librosa

        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=MODEL_RATE_HZ)
    mask = speech_mask(y, MODEL_RATE_HZ, params=vad_params or DiarizationParams())
    if mask.sum() < 20:
        return None
    with torch.inference_mode():
        feats = campplus.fbank(torch.from_numpy(np.ascontiguousarray(y, np.float32)))
        keep = torch.from_numpy(_resample_mask(mask, len(feats)))
        f = feats[keep]
        f = f - f.mean(0, keepdim=True)
        e = _campplus_model()(f[None])[0].numpy()
    return e / (np.linalg.norm(e) + 1e-9)
