"""Speed and peak memory of `playback analyze` on the bundled sample, plus its accuracy.

    .venv/bin/python -m benchmarks.analyze_sample

Imports the sample into a temporary store with the real CLI, times `playback analyze` in a
child process (wall clock and peak resident memory of that process), and scores the results
against the sample's ground truth.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from analysis.evaluation.metrics import der, match_events, read_rttm
from capture.store import Store

ROOT = Path(__file__).resolve().parent.parent
# read by the child processes and when the store is opened, not at import
os.environ.setdefault("PLAYBACK_MODEL_DIR", str(ROOT.parent / "shared" / "models"))
os.environ.setdefault("PLAYBACK_PASSPHRASE", "benchmark passphrase (not a secret)")  # the throwaway vault's


def playback(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store), *args],
                          capture_output=True, text=True, cwd=ROOT, check=True)


def main() -> None:
    sample = ROOT / "sample_data"
    with tempfile.TemporaryDirectory() as tmp:
        session_id = playback("import", str(sample / "session.mp4"), "--participants", "Alex,Sam",
                              store=Path(tmp)).stdout.strip().splitlines()[-1]
        started = time.perf_counter()
        playback("analyze", session_id, store=Path(tmp))
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        store = Store(tmp)
        duration = store.manifest(session_id)["duration_s"]
        names = {"p1": "Alex", "p2": "Sam"}
        speakers, _ = store.read_table(session_id, "derived/speakers.parquet")
        events, _ = store.read_table(session_id, "derived/events.parquet")
        faces, _ = store.read_table(session_id, "derived/faces.parquet")
        runs = {stage: store.read_json(session_id, f"derived/{stage}.run.json")["seconds"]
                for stage in ("faces", "speakers", "tone", "dynamics", "expressions", "events")}
    truth = pd.read_csv(sample / "truth" / "events.csv")
    events = events.assign(participant=events.participant_id.map(names), target=events.target_participant_id.map(names))
    score = der(read_rttm(sample / "truth" / "speech.rttm"), speakers.assign(name=speakers.participant_id.map(names)),
                hyp_label="name")
    found = match_events(truth[truth.kind == "interruption"], events[events.kind == "interruption"])
    false_bc = match_events(truth[truth.kind == "backchannel"], events[events.kind == "interruption"], tolerance_s=0.5)
    print(f"sample: {duration:.1f} s, {os.cpu_count()} cores")
    print(f"playback analyze: {wall:.1f} s wall = {wall / duration:.2f} x the sample's duration; "
          f"peak memory {peak_mb:.0f} MB")
    print("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in runs.items()))
    print(f"DER {score['der']:.1%} (missed {score['missed']:.1%}, false alarm {score['false_alarm']:.1%}, "
          f"confusion {score['confusion']:.1%})")
    print(f"interruptions found {found.found_start_s.notna().sum()}/{len(found)}; "
          f"backchannels counted as interruptions {false_bc.found_start_s.notna().sum()}/{len(false_bc)}")
    print("faces found: " + ", ".join(f"{names[p]} {v:.0%}" for p, v in faces.groupby("participant_id").detected.mean().items()))


if __name__ == "__main__":
    main()
