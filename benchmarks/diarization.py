"""Diarization accuracy and speed on real recordings (../shared/data) and the sample.

    .venv/bin/python -m benchmarks.diarization                 # both single-mic backends, all 13 AMI files
    .venv/bin/python -m benchmarks.diarization --backend segmentation3
    .venv/bin/python -m benchmarks.diarization --backend hybrid   # vs embedded: --backend embedded,hybrid
    .venv/bin/python -m benchmarks.diarization --backend embedded --extra   # + naming, multi-track (from 0 and 2.95 s)
    .venv/bin/python -m benchmarks.diarization --backend embedded,hybrid --extra   # naming by each backend
    .venv/bin/python -m benchmarks.diarization --backend hybrid --hybrid overlap_count=1.25   # a HybridParams trial

Prints one row per file and backend: diarization error rate (pyannote.metrics, no collar,
overlapped speech scored) split into missed speech, false alarm and confusion, then the
**pooled** figures over every shared AMI file (errors summed over files / reference speech
summed over files: several files have under 10 s of speech, so their own DER is noise) with
the issue's targets; speaker-naming accuracy where names are known (share of reference speech
time attributed to the right named person); processing time as a multiple of real time, with
model loading timed apart. Each file is diarized with its number of reference speakers as the
participant count (what a session knows). The scoring is ``analysis.evaluation.diarization``
(the diarization tests use the same functions).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.frames import activity_to_segments
from analysis.evaluation.diarization import DATA, HONEST_START_S, cross_session, multitrack, read_wav
from analysis.evaluation.metrics import der, read_rttm
from analysis.stages.speakers.diarization import DiarizationParams, HybridParams, diarize_frames

# the targets (issue 18) and the embedded backend's figures they are measured against
TARGET_POOLED = 0.25
TARGETS = {"ami-pair/dev00": 0.15, "ami-pair/dev01": 0.15, "ami-group/mixture": 0.12}
MAX_WORSE = 0.02
TARGET_SPEED = 0.05


def ami_files() -> list[tuple[str, Path, pd.DataFrame, int]]:
    """Every shared AMI excerpt: ``(name, wav, reference, number of reference speakers)``."""
    pair = read_rttm(DATA / "ami-pair" / "reference.rttm")
    more = read_rttm(DATA / "ami-more" / "reference.rttm")
    group = read_rttm(DATA / "ami-group" / "mixture.rttm")
    files = [(f"ami-pair/{u}", DATA / "ami-pair" / f"{u}.wav", pair[pair.uri == u]) for u in ("dev00", "dev01")]
    files.append(("ami-group/mixture", DATA / "ami-group" / "mixture.wav", group))
    files += [(f"ami-more/{u}", DATA / "ami-more" / f"{u}.wav", more[more.uri == u]) for u in sorted(more.uri.unique())]
    return [(name, wav, ref, ref.speaker.nunique()) for name, wav, ref in files]


def diarize_segments(backend: str, y: np.ndarray, sr: int, n: int, hybrid_params: HybridParams = HybridParams()
                     ) -> pd.DataFrame:
    """Hypothesis segments of one backend (``embedded``: today's Silero + GE2E backend;
    ``segmentation3``: pyannote/segmentation-3.0 + CAM++; ``hybrid``: segmentation-3.0's
    speaker count with the embedded scoring on CAM++, analysis/stages/speakers/hybrid.py)."""
    if backend in ("embedded", "hybrid"):
        if backend == "hybrid":
            from analysis.stages.speakers import hybrid

            frames = hybrid.diarize_frames(y, sr, n_speakers=n, params=DiarizationParams(hybrid=hybrid_params))
        else:
            frames = diarize_frames(y, sr, n_speakers=n)
        return activity_to_segments(frames.activity(), [f"spk{c}" for c in range(frames.scores.shape[1])])
    from analysis.stages.speakers import segmentation3

    return segmentation3.diarize(y, sr, n_speakers=n)


def single_mic_row(backend: str, name: str, wav: Path, ref: pd.DataFrame, n: int,
                   hybrid_params: HybridParams = HybridParams()) -> dict:
    """One file's DER (no collar, overlap scored, 0 to the file's end) and time."""
    y, sr = read_wav(wav)
    started = time.perf_counter()
    hyp = diarize_segments(backend, y, sr, n, hybrid_params)
    seconds = time.perf_counter() - started
    duration = len(y) / sr
    score = der(ref, hyp, start_s=0.0, end_s=duration)
    return {"file": name, "backend": backend, "DER": score["der"], "missed": score["missed"],
            "false alarm": score["false_alarm"], "confusion": score["confusion"], "speech s": score["total_s"],
            "total_s": score["total_s"], "seconds": seconds, "duration": duration, "x real time": seconds / duration}


def pooled(rows: pd.DataFrame) -> dict:
    """Errors summed over files / reference speech summed over files (der's shares are of each
    file's scored reference speech, ``total_s``)."""
    total = rows.total_s.sum()
    parts = {k: (rows[k] * rows.total_s).sum() / total for k in ("missed", "false alarm", "confusion")}
    return {"file": "POOLED (13 files)", "backend": rows.backend.iloc[0], "DER": sum(parts.values()), **parts,
            "x real time": rows.seconds.sum() / rows.duration.sum()}


def load_time(backend: str) -> float:
    """Seconds to load the backend's models (first call on 5 s of audio; not counted below)."""
    started = time.perf_counter()
    warm, sr = read_wav(DATA / "ami-pair" / "dev00.wav")
    diarize_segments(backend, warm[: sr * 5], sr, 2)
    return time.perf_counter() - started


def run(backend: str, hybrid_params: HybridParams = HybridParams()) -> pd.DataFrame:
    return pd.DataFrame([single_mic_row(backend, name, wav, ref, n, hybrid_params) for name, wav, ref, n in ami_files()])


def hybrid_params(changes: list[str]) -> HybridParams:
    """``HybridParams`` with ``FIELD=VALUE`` changes, each value of its field's default type."""
    defaults = HybridParams()
    values = {}
    for change in changes:
        name, _, text = change.partition("=")
        default = getattr(defaults, name)
        values[name] = None if text == "None" else type(default or 0.0)(text) if not isinstance(default, bool) \
            else text == "True"
    return replace(defaults, **values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both",
                        help="embedded, segmentation3, hybrid, both (embedded and segmentation3), all, "
                             "or a comma-separated list; the first is the 'before' of the targets")
    parser.add_argument("--extra", action="store_true", help="also cross-session naming and multi-track")
    parser.add_argument("--hybrid", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="HybridParams changes for the hybrid backend (a trial: parameters are chosen once for all files)")
    args = parser.parse_args()
    try:
        trial = hybrid_params(args.hybrid)
    except (AttributeError, ValueError) as error:
        parser.error(f"--hybrid: {error}")
    backends = {"both": ["embedded", "segmentation3"], "all": ["embedded", "segmentation3", "hybrid"]}.get(
        args.backend, args.backend.split(","))
    unknown = set(backends) - {"embedded", "segmentation3", "hybrid"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    pd.set_option("display.width", 200)
    fmt = {"x real time": "{:.3f}".format, "speech s": "{:.1f}".format}
    tables = {}
    for backend in backends:
        loading = load_time(backend)
        table = run(backend, trial)
        tables[backend] = table
        summary = pd.concat([table, pd.DataFrame([pooled(table)])], ignore_index=True)
        changed = f" ({' '.join(args.hybrid)})" if backend == "hybrid" and args.hybrid else ""
        print(f"\n{backend}{changed}: {os.cpu_count()} cores; loading the models took {loading:.1f} s (not counted below)")
        print(summary[["file", "backend", "DER", "missed", "false alarm", "confusion", "speech s", "x real time"]]
              .to_string(index=False, float_format=lambda v: f"{v:.1%}", formatters=fmt))
    for candidate in backends[1:]:
        before, after = tables[backends[0]].set_index("file"), tables[candidate].set_index("file")
        p_before, p_after = pooled(tables[backends[0]]), pooled(tables[candidate])
        print(f"\ntargets (issue 18), {candidate} against {backends[0]}:")
        print(f"  pooled DER {p_after['DER']:.1%} (before {p_before['DER']:.1%}): "
              f"{'met' if p_after['DER'] <= TARGET_POOLED else 'NOT met'} (at most {TARGET_POOLED:.0%})")
        worse = (after.DER - before.DER)[lambda d: d > MAX_WORSE]
        print(f"  files worse by more than {MAX_WORSE:.0%} points: {', '.join(f'{f} (+{d:.1%})' for f, d in worse.items()) or 'none'}")
        for name, target in TARGETS.items():
            print(f"  {name} {after.DER[name]:.1%} (before {before.DER[name]:.1%}): "
                  f"{'met' if after.DER[name] <= target else 'NOT met'} (at most {target:.0%})")
        print(f"  speed {p_after['x real time']:.3f} x real time: "
              f"{'met' if p_after['x real time'] <= TARGET_SPEED else 'NOT met'} (at most {TARGET_SPEED})")
    if args.extra:
        pair = read_rttm(DATA / "ami-pair" / "reference.rttm")
        group = read_rttm(DATA / "ami-group" / "mixture.rttm")
        naming = [cross_session(pair, DiarizationParams(backend=backend, hybrid=trial)) for backend in backends]
        # multi-track scored as before (from 0 s) and from HONEST_START_S (the reference omits
        # FEE013's first words, 0-1.75 s: analysis.evaluation.diarization); the latter is honest
        extra = pd.DataFrame([*naming, *(multitrack(group, bleed, start) for bleed in (None, -20.0)
                                         for start in (0.0, HONEST_START_S))])
        print(extra.to_string(index=False, float_format=lambda v: f"{v:.1%}" if v < 1.5 else f"{v:.2f}",
                              formatters={"x real time": "{:.3f}".format}))


if __name__ == "__main__":
    main()
