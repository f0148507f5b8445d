"""Tone stage speed on a 10-minute recording, what it finds there, and pitch against the former
tracker (pYIN).

    .venv/bin/python -m benchmarks.tone [--minutes 10] [--pyin]

The recording is the AMI group mixture (../shared/data/ami-group, 60 s, 4 people) looped to
``--minutes``, with its reference speaker turns looped alike. Prints the tone stage's wall time
(prosody frames with pitch and syllable nuclei, per-segment tone against each speaker's
baseline, arousal curves and the tone events) as a multiple of real time, the frames' share
voiced, each speaker's median F0 (Hz) and speaking rate (syllables/s), and the events by kind
(the loop repeats ordinary meeting talk, so any event there is a false alarm). ``--pyin`` also times librosa's
pYIN at the same hop on the same audio, for comparison (about 40 s for 10 minutes here).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from analysis.evaluation.diarization import DATA, read_wav
from analysis.evaluation.metrics import read_rttm
from analysis.stages.tone import ToneParams, arousal_curve, prosody_frames, segment_tone, tone_events


def looped(minutes: float) -> tuple[np.ndarray, int, pd.DataFrame]:
    """The group mixture and its reference turns (start_s, end_s, participant_id) looped to ``minutes``."""
    y, sr = read_wav(DATA / "ami-group" / "mixture.wav")
    turns = read_rttm(DATA / "ami-group" / "mixture.rttm").rename(columns={"speaker": "participant_id"})
    length_s = len(y) / sr
    reps = int(np.ceil(minutes * 60 / length_s))
    speech = pd.concat([turns.assign(start_s=turns.start_s + i * length_s, end_s=turns.end_s + i * length_s)
                        for i in range(reps)], ignore_index=True)
    return np.tile(y, reps)[: int(minutes * 60 * sr)], sr, speech[speech.start_s < minutes * 60]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--pyin", action="store_true", help="also time librosa pYIN on the same audio")
    a = ap.parse_args(argv)
    y, sr, speech = looped(a.minutes)
    duration_s = len(y) / sr
    prosody_frames(y[: sr * 5], sr)                      # imports and first-call costs, not timed
    started = time.perf_counter()
    frames = prosody_frames(y, sr)
    frames_s = time.perf_counter() - started
    segments = segment_tone(frames, speech)
    arousal = arousal_curve(frames, speech)
    events = tone_events(segments, arousal, speech, np.zeros(0), {})
    total_s = time.perf_counter() - started
    print(f"tone stage on {duration_s / 60:.1f} min ({len(speech)} turns): {total_s:.2f} s = "
          f"{total_s / duration_s:.4f} x real time (frames {frames_s:.2f} s, segments, arousal and events "
          f"{total_s - frames_s:.2f} s)")
    print(f"voiced frames {frames.f0_hz.notna().mean():.1%}; events by kind {events.kind.value_counts().to_dict()}")
    by_person = segments.groupby("participant_id")
    print("median F0 (Hz) of each speaker's turns with enough solo voiced speech:",
          {pid: "n/a" if np.isnan(hz) else round(float(hz)) for pid, hz in by_person.f0_hz.median().items()})
    print("median speaking rate (syllables/s) of their turns with 2 s heard alone:",
          {pid: "n/a" if np.isnan(r) else round(float(r), 2) for pid, r in by_person.speech_rate_sps.median().items()})
    if a.pyin:
        import librosa

        p = ToneParams()
        hop = int(round(p.hop_s * sr))
        started = time.perf_counter()
        librosa.pyin(y, fmin=p.fmin_hz, fmax=p.fmax_hz, sr=sr, frame_length=1024, hop_length=hop, center=True)
        pyin_s = time.perf_counter() - started
        print(f"pYIN alone on the same audio: {pyin_s:.1f} s = {pyin_s / duration_s:.4f} x real time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
