"""Benchmark: backchannel and interruption detection on composed conversations with exact truth.

Usage (from the repository root):
    python -m benchmarks.dynamics                 # true speech segments -> analyse_dynamics
    python -m benchmarks.dynamics --from-audio    # mixture -> the single-microphone backend -> dynamics
    python -m benchmarks.dynamics --from-audio --backend embedded,hybrid   # one table per backend
    python -m benchmarks.dynamics --from-audio --backend hybrid --hybrid overlap_probability=0.3   # a HybridParams trial
    python -m benchmarks.dynamics --multitrack    # one mic per person (-20 dB crosstalk) -> Silero VAD per track
    options: --n 12 --seed 0 --tolerance 0.5

Matching rule (``analysis.evaluation.metrics.class_scores``, used by the tests too): a detected
event matches a true one when the class is the same (backchannel / successful / unsuccessful
interruption; "contested" counts as successful: the interrupted person gave way, only later than
the window), the interrupter (participant_id) and the interrupted person (target_participant_id)
are the same, and the starts are within ``tolerance`` seconds (default 0.5 s). One-to-one,
greedy by start distance. Scoring code: ``analysis.evaluation.dynamics``.
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

from analysis.evaluation.composer import compose_set
from analysis.evaluation.dynamics import run
from analysis.stages.dynamics import analyse_dynamics, synthetic_session
from analysis.stages.speakers.diarization import DiarizationParams


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=0.5)
    ap.add_argument("--from-audio", action="store_true", help="diarize the mixture first (end to end)")
    ap.add_argument("--multitrack", action="store_true", help="Silero VAD on each person's track (with crosstalk)")
    ap.add_argument("--backend", default="embedded",
                    help="single-microphone backend(s) for --from-audio: embedded, segmentation3, hybrid or a comma-separated list")
    ap.add_argument("--hybrid", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="HybridParams changes for the hybrid backend (as benchmarks.diarization --hybrid)")
    a = ap.parse_args(argv)
    from benchmarks.diarization import hybrid_params

    trial = hybrid_params(a.hybrid)
    t0 = time.perf_counter()
    comps = compose_set(n=a.n, seed=a.seed)
    dur = sum(c.duration_s for c in comps)
    n_true = pd.concat([c.events for c in comps]).pipe(lambda e: e["outcome"].fillna(e["kind"])).value_counts().to_dict()
    print(f"composed {len(comps)} conversations, {dur / 60:.1f} min, 2-4 people, true events {n_true} "
          f"({time.perf_counter() - t0:.1f} s)")
    modes = [("truth", "")] + ([("multitrack", "")] if a.multitrack else []) + (
        [("audio", backend) for backend in a.backend.split(",")] if a.from_audio else [])
    for mode, backend in modes:
        t1 = time.perf_counter()
        if backend:
            print(f"backend={backend}" + (f" ({' '.join(a.hybrid)})" if backend == "hybrid" and a.hybrid else ""))
        table = run(mode=mode, tolerance_s=a.tolerance, compositions=comps,
                    diarization=DiarizationParams(backend=backend or "embedded", hybrid=trial))
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
