"""Backchannel and interruption detection scored on composed conversations with exact truth
(shared by ``benchmarks/dynamics.py`` and ``tests/test_composer.py``).

Matching rule: :func:`analysis.evaluation.metrics.class_scores` (same class, interrupter and
interrupted person, starts within the tolerance, one-to-one, closest first). Competitive: among
matched interruptions, the tone attribute (from per-track loudness) compared with the raised-voice
truth.

End to end, diarization cluster labels are mapped to true speakers by the assignment that
maximises total overlap duration (Hungarian method on the overlap matrix); clusters left over
keep their own label (their events then count as false positives).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from analysis.core.frames import FRAME_S, frame_level_db
from analysis.evaluation.composer import compose_set
from analysis.evaluation.metrics import class_scores, prf
from analysis.stages.dynamics import DynamicsParams, analyse_dynamics
from analysis.stages.speakers import backends
from analysis.stages.speakers.diarization import DiarizationParams
from analysis.stages.speakers.multitrack import diarize_tracks

COUNTS = ("tp", "fp", "fn", "tone_agree", "tone_total")


def map_clusters(hyp: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """Cluster label -> true participant id, maximising total overlap (Hungarian)."""
    hl, rl = sorted(hyp["participant_id"].astype(str).unique()), sorted(ref["participant_id"].astype(str).unique())
    if not hl or not rl:
        return {}
    m = np.zeros((len(hl), len(rl)))
    for i, h in enumerate(hl):
        hs = hyp[hyp["participant_id"].astype(str) == h]
        for j, r in enumerate(rl):
            rs = ref[ref["participant_id"].astype(str) == r]
            a0, a1 = hs["start_s"].to_numpy()[:, None], hs["end_s"].to_numpy()[:, None]
            b0, b1 = rs["start_s"].to_numpy()[None, :], rs["end_s"].to_numpy()[None, :]
            m[i, j] = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None).sum()
    ri, ci = linear_sum_assignment(-m)
    return {hl[i]: rl[j] for i, j in zip(ri, ci)}


def track_tone_frames(tracks: dict, sr: int, *, frame_s: float = FRAME_S) -> pd.DataFrame:
    """Per-participant loudness frames (dBFS of each track; f0 not estimated: NaN)."""
    parts = []
    for pid, y in tracks.items():
        e = frame_level_db(y, sr, frame_s=frame_s)
        parts.append(pd.DataFrame({"participant_id": pid, "t_s": (np.arange(len(e)) + 0.5) * frame_s,
                                   "loudness_db": e, "f0_hz": np.nan}))
    return pd.concat(parts, ignore_index=True)


def multitrack_speech(tracks: dict, sr: int, *, bleed_db: float = -20.0) -> pd.DataFrame:
    """One microphone per person: each track gets the others' speech at ``bleed_db`` (crosstalk,
    as lapel microphones pick up the room), then the product's multi-track backend
    (``analysis.stages.speakers.multitrack``: bleed cancellation, per-track VAD) finds each person's speech."""
    mix = np.sum(list(tracks.values()), axis=0)
    g = np.float32(10 ** (bleed_db / 20))
    mics = [y + g * (mix - y) for y in tracks.values()]
    return diarize_tracks(mics, sr, list(tracks))[["start_s", "end_s", "participant_id"]]


def diarize_cached(c, cache_dir: str | None, diarization: DiarizationParams = DiarizationParams()) -> pd.DataFrame:
    """The single-microphone backend ``diarization.backend`` on the mixture, cached by content
    hash and parameters in ``cache_dir`` (gitignored ``benchmarks/out/``) so re-scoring does not
    re-run the models."""
    settings = repr((diarization.to_dict(), backends.model_versions(diarization))).encode()
    key = hashlib.sha1(c.y.tobytes() + settings).hexdigest()[:16] + f"-{len(c.tracks)}"
    path = Path(cache_dir) / f"{key}.csv" if cache_dir else None
    if path is not None and path.exists():
        return pd.read_csv(path, dtype={"participant_id": str})
    hyp = backends.diarize_backend(c.y, c.sr, n_speakers=len(c.tracks), params=diarization)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        hyp.to_csv(path, index=False)
    return hyp


def run(*, n: int = 12, seed: int = 0, tolerance_s: float = 0.5, mode: str = "truth",
        params: DynamicsParams = DynamicsParams(), compositions=None, verbose: bool = True,
        cache_dir: str | None = "benchmarks/out/diarization",
        diarization: DiarizationParams = DiarizationParams()) -> pd.DataFrame:
    """Score every composition; returns the summed per-class table with precision/recall/F1.

    mode: ``truth`` (true speech segments), ``multitrack`` (one mic per person, -20 dB
    crosstalk, the multi-track backend) or ``audio`` (the mixture diarized by
    ``diarization.backend``, clusters mapped)."""
    comps = compositions if compositions is not None else compose_set(n=n, seed=seed)
    total = None
    for c in comps:
        tone = track_tone_frames(c.tracks, c.sr)
        if mode == "truth":
            speech = c.speech
        elif mode == "multitrack":
            speech = multitrack_speech(c.tracks, c.sr)
        elif mode == "audio":
            hyp = diarize_cached(c, cache_dir, diarization)
            mapping = map_clusters(hyp, c.speech)
            speech = hyp.assign(participant_id=[mapping.get(str(p), str(p)) for p in hyp["participant_id"]])
            tone = tone[tone["participant_id"].isin(set(speech["participant_id"]))]
        else:
            raise ValueError(f"mode {mode!r}: use truth, multitrack or audio")
        res = analyse_dynamics(speech[["start_s", "end_s", "participant_id"]], params=params, names=c.names,
                               tone_frames=tone, session_end_s=c.duration_s)
        table = class_scores(c.events, res.events, tolerance_s=tolerance_s)
        total = table if total is None else total.assign(**{k: total[k] + table[k] for k in COUNTS})
    out = prf(total)
    if verbose:
        print(f"mode={mode}  conversations={len(comps)}  tolerance={tolerance_s} s  params={params.to_dict()}")
    return out


__all__ = ["map_clusters", "track_tone_frames", "multitrack_speech", "diarize_cached", "run"]
