"""Diarization accuracy and speed on real recordings (../shared/data) and the sample.

    .venv/bin/python benchmarks/diarization.py

Prints one row per file and backend: diarization error rate (pyannote.metrics, no collar,
overlapped speech scored) split into missed speech, false alarm and confusion; speaker-naming
accuracy where names are known (share of reference speech time attributed to the right named
person); processing time as a multiple of real time.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"

import analysis  # noqa: E402,F401
from analysis.core.frames import activity_to_segments  # noqa: E402
from analysis.stages.speakers.diarization import diarize_frames  # noqa: E402
from analysis.stages.speakers.enrolment import name_clusters, speech_from_segments, voice_print  # noqa: E402
from analysis.evaluation.metrics import der, read_rttm  # noqa: E402
from analysis.stages.speakers.multitrack import diarize_tracks  # noqa: E402


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    y, sr = sf.read(path, dtype="float32")
    return (y.mean(1) if y.ndim == 2 else y), sr


def solo_segments(ref: pd.DataFrame, speaker: str) -> list[tuple[float, float]]:
    """Reference turns of ``speaker`` minus the times anyone else speaks."""
    others = ref[ref.speaker != speaker]
    out = []
    for turn in ref[ref.speaker == speaker].itertuples():
        pieces = [(turn.start_s, turn.end_s)]
        for o in others.itertuples():
            pieces = [p for s, e in pieces for p in ((s, min(e, o.start_s)), (max(s, o.end_s), e)) if p[1] > p[0]]
        out += pieces
    return out


def named_accuracy(ref: pd.DataFrame, hyp: pd.DataFrame) -> float:
    """Share of reference speech time where the hypothesis has the same (named) speaker active."""
    total = right = 0.0
    for turn in ref.itertuples():
        same = hyp[hyp.participant_id == turn.speaker]
        overlap = (np.minimum(same.end_s, turn.end_s) - np.maximum(same.start_s, turn.start_s)).clip(lower=0).sum()
        total += turn.end_s - turn.start_s
        right += overlap
    return right / total if total else float("nan")


def row(name: str, backend: str, ref: pd.DataFrame, hyp: pd.DataFrame, seconds: float, duration: float,
        naming: float = float("nan")) -> dict:
    score = der(ref.rename(columns={"speaker": "speaker"}), hyp, start_s=0.0, end_s=duration)
    return {"file": name, "backend": backend, "DER": score["der"], "missed": score["missed"],
            "false alarm": score["false_alarm"], "confusion": score["confusion"], "naming": naming,
            "x real time": seconds / duration}


def single_mic(name: str, wav: Path, ref: pd.DataFrame, n: int) -> dict:
    y, sr = read_wav(wav)
    started = time.perf_counter()
    frames = diarize_frames(y, sr, n_speakers=n)
    elapsed = time.perf_counter() - started
    k = frames.scores.shape[1]
    hyp = activity_to_segments(frames.activity(), [f"spk{c}" for c in range(k)])
    return row(name, "single mic (embedded)", ref, hyp, elapsed, len(y) / sr)


def cross_session(ref: pd.DataFrame) -> dict:
    """Enrol both speakers from dev00 (their solo reference speech), name dev01's clusters."""
    y0, sr = read_wav(DATA / "ami-pair" / "dev00.wav")
    y1, _ = read_wav(DATA / "ami-pair" / "dev01.wav")
    r0, r1 = ref[ref.uri == "dev00"], ref[ref.uri == "dev01"]
    prints = {spk: voice_print(speech_from_segments(y0, sr, solo_segments(r0, spk)), sr) for spk in r0.speaker.unique()}
    started = time.perf_counter()
    frames = diarize_frames(y1, sr, n_speakers=len(prints))
    names = name_clusters(y1, sr, frames, prints)
    elapsed = time.perf_counter() - started
    active = frames.activity()
    people = [names[c][0] if c in names else f"unknown{c}" for c in range(active.shape[1])]
    hyp = activity_to_segments(active, people)
    hyp = hyp[hyp.participant_id.isin(list(prints))]
    return row("dev01 named from dev00", "single mic + enrolment", r1, hyp, elapsed, len(y1) / sr, named_accuracy(r1, hyp))


def multitrack(ref: pd.DataFrame, bleed_db: float | None) -> dict:
    tracks = [read_wav(DATA / "ami-group" / "sources" / f"source{i}.wav")[0] for i in range(4)]
    sr = 16000
    if bleed_db is not None:
        mix = np.sum(tracks, axis=0)
        gain = np.float32(10 ** (bleed_db / 20))
        tracks = [y + gain * (mix - y) for y in tracks]
    started = time.perf_counter()
    hyp = diarize_tracks(tracks, sr, ["MEO015", "FEE013", "MEE014", "FEE016"])
    elapsed = time.perf_counter() - started
    name = "ami-group sources" + (f" + bleed {bleed_db:.0f} dB" if bleed_db is not None else "")
    return row(name, "multi-track", ref, hyp, elapsed, len(tracks[0]) / sr, named_accuracy(ref, hyp))


def main() -> None:
    # load the models once before timing (a one-off cost per process, reported separately)
    started = time.perf_counter()
    warm, sr = read_wav(DATA / "ami-pair" / "dev00.wav")
    diarize_frames(warm[: sr * 5], sr, n_speakers=2)
    load_s = time.perf_counter() - started
    pair = read_rttm(DATA / "ami-pair" / "reference.rttm")
    group = read_rttm(DATA / "ami-group" / "mixture.rttm")
    rows = [
        single_mic("ami-pair/dev00", DATA / "ami-pair" / "dev00.wav", pair[pair.uri == "dev00"], 2),
        single_mic("ami-pair/dev01", DATA / "ami-pair" / "dev01.wav", pair[pair.uri == "dev01"], 2),
        single_mic("ami-group/mixture", DATA / "ami-group" / "mixture.wav", group, 4),
        cross_session(pair),
        multitrack(group, None),
        multitrack(group, -20.0),
    ]
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(f"{os.cpu_count()} cores; loading the voice models took {load_s:.1f} s (not counted below)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1%}" if v < 1.5 else f"{v:.2f}",
                          formatters={"x real time": "{:.3f}".format}))


if __name__ == "__main__":
    main()
