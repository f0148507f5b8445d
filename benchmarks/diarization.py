"""Diarization accuracy and speed on real recordings (../shared/data) and the sample.

    .venv/bin/python -m benchmarks.diarization

Prints one row per file and backend: diarization error rate (pyannote.metrics, no collar,
overlapped speech scored) split into missed speech, false alarm and confusion; speaker-naming
accuracy where names are known (share of reference speech time attributed to the right named
person); processing time as a multiple of real time. The scoring is
``analysis.evaluation.diarization`` (the diarization tests use the same functions).
"""
from __future__ import annotations

import os
import time

import pandas as pd

from analysis.evaluation.diarization import DATA, cross_session, multitrack, read_wav, single_mic
from analysis.evaluation.metrics import read_rttm
from analysis.stages.speakers.diarization import diarize_frames


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
