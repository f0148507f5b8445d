"""Peak memory of the audio stages' whole-signal functions, at two session lengths.

    .venv/bin/python -m benchmarks.audio_memory [--minutes 10 30] [--functions ge2e_mel prosody_frames ...] [--pcm16]

Real speech (the shared AMI group excerpt ``../shared/data/ami-group/mixture.wav``, 60 s,
16 kHz) is looped to each length (plus 0.37 s, so that no length is a round number of samples)
as float32 (with ``--pcm16``, as the pipeline holds a session's audio: a
``capture.media.Pcm16Signal`` of its 16-bit samples, 1.92 MB per minute). Each function at
each length runs in a fresh child process that loads the models first (on 2 s of audio), then
calls the function once and reports two peaks, in MB (10^6 bytes), above what was held before the call:

- **traced**: the highest memory allocated through Python and numpy during the call
  (``tracemalloc``); torch's and Praat's own allocations are not seen;
- **resident**: the kernel's resident-memory high-water mark (VmHWM, reset before each call
  through /proc/self/clear_refs) minus the resident memory before the call: everything,
  torch and Praat included.

The peaks include what the function returns (its size is printed as **result**: a 10 ms or
20 ms frame table grows with length by nature). A function whose working memory does not grow
with length scores the same at both lengths apart from its result. The input signal itself
(float32, 3.84 MB per minute) is held before each call and not counted. ``tracemalloc`` also
counts zero-filled numpy buffers that are never written (they take no resident memory).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PLAYBACK_MODEL_DIR", str(ROOT.parent / "shared" / "models"))   # the overlap model
os.environ.setdefault("PLAYBACK_OFFLINE", "1")
SPEECH = ROOT.parent / "shared" / "data" / "ami-group" / "mixture.wav"
MB = 1e6
ODD_SAMPLES = 5923     # added to each length (0.37 s): like a real recording's, it is no multiple of a block
FUNCTIONS = ["speech_mask", "ge2e_mel", "mfcc_statistics", "overlap_mask", "prosody_frames"]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _looped_speech(minutes: float, pcm16: bool = False):
    import numpy as np
    import soundfile as sf

    from capture.media import Pcm16Signal

    speech, sr = sf.read(str(SPEECH), dtype="int16" if pcm16 else "float32")
    total = int(round(minutes * 60 * sr)) + ODD_SAMPLES
    looped = np.tile(speech, total // len(speech) + 1)[:total]
    return (Pcm16Signal(looped) if pcm16 else looped), sr


def child(minutes: float, name: str, pcm16: bool = False) -> None:
    """Print one JSON line: ``{"function", "traced_mb", "resident_mb", "result_mb", "seconds"}``."""
    import numpy as np

    from analysis.core.frames import FRAME_S
    from analysis.stages import tone
    from analysis.stages.speakers import diarization, overlap

    y, sr = _looped_speech(minutes, pcm16)
    warm = y[: 2 * sr]
    diarization.speech_mask(warm, sr)                      # models loaded before measuring
    diarization.chunk_embeddings(diarization.ge2e_mel(warm, sr), [(0, 100)])
    overlap.overlap_mask(warm, sr, 200)
    mask = diarization.speech_mask(y, sr) if name == "mfcc_statistics" else None
    work = {
        "speech_mask": lambda: diarization.speech_mask(y, sr),
        "ge2e_mel": lambda: diarization.ge2e_mel(y, sr),
        "mfcc_statistics": lambda: diarization.mfcc_statistics(y, sr, mask, diarization.speech_chunks(mask)),
        "overlap_mask": lambda: overlap.overlap_mask(y, sr, int(np.ceil(len(y) / sr / FRAME_S))),
        "prosody_frames": lambda: tone.prosody_frames(y, sr),
    }[name]
    gc.collect()
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                   # resets VmHWM to the current VmRSS
    resident_before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] - traced_before
    resident_peak = _status_kb("VmHWM") - resident_before
    tracemalloc.stop()
    result_bytes = (result.memory_usage(deep=True).sum() if hasattr(result, "memory_usage")
                    else getattr(result, "nbytes", 0))
    del result
    print(json.dumps({"function": name, "traced_mb": traced_peak / MB, "resident_mb": resident_peak * 1024 / MB,
                      "result_mb": result_bytes / MB, "seconds": seconds}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--functions", nargs="+", choices=FUNCTIONS, default=FUNCTIONS)
    parser.add_argument("--pcm16", action="store_true",
                        help="the signal as the pipeline holds a session's audio: its 16-bit samples "
                             "(capture.media.Pcm16Signal, 1.92 MB per minute)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.functions[0], args.pcm16)
        return
    if not SPEECH.exists():
        sys.exit(f"missing {SPEECH}: ../shared must sit beside the project")
    results: dict[float, dict[str, dict]] = {}
    for minutes in args.minutes:
        results[minutes] = {}
        for name in args.functions:
            out = subprocess.run([sys.executable, "-m", "benchmarks.audio_memory", "--child", str(minutes),
                                  "--functions", name, *(["--pcm16"] if args.pcm16 else [])], cwd=ROOT, capture_output=True,
                                 text=True)
            if out.returncode:
                sys.exit(f"{name} on {minutes:g} minutes failed:\n{out.stderr[-3000:]}")
            results[minutes][name] = json.loads(out.stdout.splitlines()[-1])
    lengths = " | ".join(f"{m:g} min: traced / resident MB (result MB, s)" for m in args.minutes)
    print(f"| function | {lengths} |")
    print("|---|" + "---|" * len(args.minutes))
    for name in args.functions:
        cells = " | ".join(f"{r['traced_mb']:.0f} / {r['resident_mb']:.0f} ({r['result_mb']:.0f} MB, {r['seconds']:.0f} s)"
                           for r in (results[m][name] for m in args.minutes))
        print(f"| `{name}` | {cells} |")


if __name__ == "__main__":
    main()
