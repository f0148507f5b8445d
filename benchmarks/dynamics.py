"""Benchmark: backchannel and interruption detection on composed conversations with exact truth.

Usage (from the repository root):
    python -m benchmarks.dynamics                 # true speech segments -> analyse_dynamics
    python -m benchmarks.dynamics --from-audio    # mixture -> analysis.stages.speakers.diarization.diarize -> dynamics
    python -m benchmarks.dynamics --multitrack    # one mic per person (-20 dB crosstalk) -> Silero VAD per track
    options: --n 12 --seed 0 --tolerance 0.5

Matching rule (documented, used by the tests too): a detected event matches a true one when the
class is the same (backchannel / successful / unsuccessful interruption; "contested" counts as
successful: the interrupted person gave way, only later than the window), the interrupter
(participant_id) and the interrupted person (target_participant_id) are the same, and the starts
are within ``tolerance`` seconds (default 0.5 s). One-to-one, greedy by start distance.
Competitive: among matched interruptions, the tone attribute (from per-track loudness) compared
with the raised-voice truth.

End to end, diarization cluster labels are mapped to true speakers by the assignment that
maximises total overlap duration (Hungarian method on the overlap matrix); clusters left over
keep their own label (their events then count as false positives). Backchannels and
interruptions are overlaps, so end to end they need overlap-aware speaker activity: per-person
microphones (``--multitrack``), or the single-microphone backend's overlapped speech detection
(``analysis.stages.speakers.overlap``; without its model file every frame has one speaker and these classes
are not found).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from analysis.core.frames import FRAME_S, frame_level_db
from analysis.evaluation.composer import compose_set
from analysis.stages.dynamics import DynamicsParams, analyse_dynamics, synthetic_session

CLASSES = ("backchannel", "successful", "unsuccessful")


def event_class(kind: str, label: str) -> str | None:
    """Benchmark class of an event row: backchannel, successful, unsuccessful, or None."""
    if kind == "backchannel":
        return "backchannel"
    if kind == "interruption":
        outcome = str(label).split(",")[0].strip()
        return "successful" if outcome in ("successful", "contested") else outcome
    return None


def match_events(truth: pd.DataFrame, detected: pd.DataFrame, *, tolerance_s: float = 0.5) -> pd.DataFrame:
    """Per-class tp/fp/fn counts plus the matched pairs' tone agreement.

    Returns a DataFrame with one row per class: tp, fp, fn, and for interruptions
    tone_agree/tone_total over matched pairs whose detected label carries a tone.
    """
    t = truth.assign(cls=[event_class(k, l) for k, l in zip(truth["kind"], truth["label"])])
    d = detected.assign(cls=[event_class(k, l) for k, l in zip(detected["kind"], detected["label"])])
    t, d = t[t["cls"].notna()], d[d["cls"].notna()]
    rows = []
    for cls in CLASSES:
        tc, dc = t[t["cls"] == cls].reset_index(drop=True), d[d["cls"] == cls].reset_index(drop=True)
        pairs = []
        for i, tr in tc.iterrows():
            for j, dr in dc.iterrows():
                dist = abs(tr["start_s"] - dr["start_s"])
                if (dist <= tolerance_s and str(tr["participant_id"]) == str(dr["participant_id"])
                        and str(tr["target_participant_id"]) == str(dr["target_participant_id"])):
                    pairs.append((dist, i, j))
        used_t, used_d, matched = set(), set(), []
        for dist, i, j in sorted(pairs):
            if i not in used_t and j not in used_d:
                used_t.add(i)
                used_d.add(j)
                matched.append((i, j))
        agree = total = 0
        for i, j in matched:
            dl = str(dc.loc[j, "label"])
            if "competitive" in dl or "cooperative" in dl:
                total += 1
                agree += ("competitive" in dl) == ("competitive" in str(tc.loc[i, "label"]))
        rows.append(dict(cls=cls, tp=len(matched), fp=len(dc) - len(matched), fn=len(tc) - len(matched),
                         tone_agree=agree, tone_total=total))
    return pd.DataFrame(rows)


def prf(table: pd.DataFrame) -> pd.DataFrame:
    """Add precision, recall, F1 to a tp/fp/fn table (NaN-free: 1.0 when nothing to find or claim)."""
    t = table.copy()
    t["precision"] = np.where(t.tp + t.fp > 0, t.tp / (t.tp + t.fp).clip(lower=1), 1.0)
    t["recall"] = np.where(t.tp + t.fn > 0, t.tp / (t.tp + t.fn).clip(lower=1), 1.0)
    t["f1"] = np.where(t.precision + t.recall > 0, 2 * t.precision * t.recall / (t.precision + t.recall), 0.0)
    return t


def map_clusters(hyp: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """Cluster label -> true participant id, maximising total overlap (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

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
    from analysis.stages.speakers.multitrack import diarize_tracks

    mix = np.sum(list(tracks.values()), axis=0)
    g = np.float32(10 ** (bleed_db / 20))
    mics = [y + g * (mix - y) for y in tracks.values()]
    return diarize_tracks(mics, sr, list(tracks))[["start_s", "end_s", "participant_id"]]


def _diarize_cached(c, cache_dir: str | None) -> pd.DataFrame:
    """analysis.stages.speakers.diarization.diarize on the mixture, cached by content hash in ``cache_dir``
    (gitignored ``benchmarks/out/``) so re-scoring does not re-run the models."""
    import hashlib
    from pathlib import Path

    from analysis.stages.speakers.diarization import DiarizationParams, diarize, model_versions

    settings = repr((DiarizationParams().to_dict(), model_versions())).encode()
    key = hashlib.sha1(c.y.tobytes() + settings).hexdigest()[:16] + f"-{len(c.tracks)}"
    path = Path(cache_dir) / f"{key}.csv" if cache_dir else None
    if path is not None and path.exists():
        return pd.read_csv(path, dtype={"participant_id": str})
    hyp = diarize(c.y, c.sr, n_speakers=len(c.tracks))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        hyp.to_csv(path, index=False)
    return hyp


def run(*, n: int = 12, seed: int = 0, tolerance_s: float = 0.5, mode: str = "truth",
        params: DynamicsParams = DynamicsParams(), compositions=None, verbose: bool = True,
        cache_dir: str | None = "benchmarks/out/diarization") -> pd.DataFrame:
    """Score every composition; returns the summed per-class table with precision/recall/F1."""
    comps = compositions if compositions is not None else compose_set(n=n, seed=seed)
    total = None
    for c in comps:
        tone = track_tone_frames(c.tracks, c.sr)
        if mode == "truth":
            speech = c.speech
        elif mode == "multitrack":
            speech = multitrack_speech(c.tracks, c.sr)
        elif mode == "audio":
            hyp = _diarize_cached(c, cache_dir)
            mapping = map_clusters(hyp, c.speech)
            speech = hyp.assign(participant_id=[mapping.get(str(p), str(p)) for p in hyp["participant_id"]])
            tone = tone[tone["participant_id"].isin(set(speech["participant_id"]))]
        else:
            raise ValueError(f"mode {mode!r}: use truth, multitrack or audio")
        res = analyse_dynamics(speech[["start_s", "end_s", "participant_id"]], params=params, names=c.names,
                               tone_frames=tone, session_end_s=c.duration_s)
        table = match_events(c.events, res.events, tolerance_s=tolerance_s)
        total = table if total is None else total.assign(**{k: total[k] + table[k] for k in
                                                           ("tp", "fp", "fn", "tone_agree", "tone_total")})
    out = prf(total)
    if verbose:
        print(f"mode={mode}  conversations={len(comps)}  tolerance={tolerance_s} s  params={params.to_dict()}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=0.5)
    ap.add_argument("--from-audio", action="store_true", help="diarize the mixture first (end to end)")
    ap.add_argument("--multitrack", action="store_true", help="Silero VAD on each person's track (with crosstalk)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    comps = compose_set(n=a.n, seed=a.seed)
    dur = sum(c.duration_s for c in comps)
    n_true = pd.concat([c.events for c in comps])["label"].str.split(",").str[0].value_counts().to_dict()
    print(f"composed {len(comps)} conversations, {dur / 60:.1f} min, 2-4 people, true events {n_true} "
          f"({time.perf_counter() - t0:.1f} s)")
    modes = ["truth"] + (["multitrack"] if a.multitrack else []) + (["audio"] if a.from_audio else [])
    for mode in modes:
        t1 = time.perf_counter()
        table = run(mode=mode, tolerance_s=a.tolerance, compositions=comps)
        table = table.assign(competitive_acc=np.where(table.tone_total > 0, table.tone_agree / table.tone_total.clip(lower=1), np.nan))
        print(table[["cls", "tp", "fp", "fn", "precision", "recall", "f1", "competitive_acc"]]
              .round(3).to_string(index=False))
        print(f"({time.perf_counter() - t1:.1f} s)\n")
    sess = synthetic_session(duration_s=3000.0, n_speakers=4, seed=0)
    t2 = time.perf_counter()
    res = analyse_dynamics(sess, session_end_s=3000.0)
    print(f"speed: 50-minute 4-person session, {len(sess)} segments -> {len(res.events)} events in "
          f"{(time.perf_counter() - t2) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
