"""Live analysis: the delay from Stop to results, by recording length.

    .venv/bin/python -m benchmarks.live_delay [--minutes 1 4] [--no-offline]

For each length N (minutes) a fresh child process records a session "Alex,Sam" at real-time
pace with the file-backed devices: the bundled sample (84 s, two drawn faces, 1280x720) looped
as a camera (15 fps) and as a microphone, so an N-minute recording takes N minutes and no media
is generated or kept. A :class:`analysis.live.LiveAnalyser` runs beside it. At Stop the child
times the three steps to results: the live analysis finishing its last segments (``drain``),
:func:`capture.live.recorder.assemble` and :func:`analysis.live.finish` (each stage's run
seconds). Peak memory is the resident peak (VmHWM) of the recording process and, apart, of the
live worker (the largest child that ended). Unless ``--no-offline``, the session is then analysed
from scratch (``analyze(force=True)``) for comparison: its time, whether the faces table is
identical and the diarization error rate between the live and offline speakers tables.

The target (issue 14): results within 60 s after Stop whatever the length.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "session.mp4"
MB = 1024


def child(minutes: float, offline: bool) -> None:
    """Record ``minutes`` live in a new store under a temporary folder (removed after), finish,
    print one JSON line of figures."""
    from capture.store import Store

    folder = Path(tempfile.mkdtemp(prefix="live-delay-"))
    try:
        _record_and_finish(Store(folder / "store").unlock(os.environ["PLAYBACK_PASSPHRASE"]), minutes, offline)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _record_and_finish(store, minutes: float, offline: bool) -> None:
    """Record ``minutes`` into ``store`` live, finish, print the figures."""
    import pandas as pd

    from analysis.evaluation.metrics import der
    from analysis.live import LiveAnalyser, finish
    from analysis.pipeline import analyze
    from capture.consent import make_record
    from capture.ingest import parse_participants
    from capture.live.devices import FileCamera, WavMicrophone
    from capture.live.recorder import Recorder

    people = parse_participants("Alex,Sam")
    records = {p["id"]: make_record(p["id"], "all", method="cli") for p in people}
    recorder = Recorder(store, people, records, mics=[WavMicrophone(SAMPLE, loop=True)],
                        cameras=[FileCamera(SAMPLE, fps=15, loop=True)])
    session_id = recorder.start()
    live = LiveAnalyser(store, session_id).start()
    recorder.wait(minutes * 60)
    steps: dict[str, float] = {}
    stop = time.perf_counter()
    load_at_stop = os.getloadavg()[0]

    def sealed(kept: bool) -> None:
        began = time.perf_counter()
        steps["drain_ok"] = live.drain()
        steps["drain_s"] = time.perf_counter() - began

    manifest = recorder.stop(sealed=sealed)
    steps["assemble_s"] = time.perf_counter() - stop - steps["drain_s"]
    report = finish(store, session_id)
    delay = time.perf_counter() - stop
    out = {"minutes": minutes, "recorded_s": manifest["duration_s"], "delay_s": round(delay, 2),
           "drain_s": round(steps["drain_s"], 2), "drained": steps["drain_ok"],
           "assemble_s": round(steps["assemble_s"], 2), "finish_s": report["seconds"], "stages": report["stages"],
           "live": report["live"], "load_average_at_stop": round(load_at_stop, 2),
           "load_average_after": round(os.getloadavg()[0], 2),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // MB,
           "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // MB}
    if offline:
        faces_live = store.read_table(session_id, "derived/faces.parquet")[0]
        speakers_live = store.read_table(session_id, "derived/speakers.parquet")[0]
        began = time.perf_counter()
        analyze(store, session_id, force=True)
        out["offline_s"] = round(time.perf_counter() - began, 2)
        faces_offline = store.read_table(session_id, "derived/faces.parquet")[0]
        speakers_offline = store.read_table(session_id, "derived/speakers.parquet")[0]
        try:
            pd.testing.assert_frame_equal(faces_live, faces_offline)
            out["faces"] = "identical"
        except AssertionError as exc:
            out["faces"] = f"differ: {str(exc).splitlines()[0]}"
        out["speakers_der_live_vs_offline"] = round(der(speakers_offline, speakers_live, ref_label="participant_id")["der"], 5)
    print("@@" + json.dumps(out), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--no-offline", action="store_true", help="skip the from-scratch analysis for comparison")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        child(args.child, not args.no_offline)
        return 0
    env = {**os.environ, "PLAYBACK_PASSPHRASE": os.environ.get("PLAYBACK_PASSPHRASE", "benchmark passphrase"),
           "PLAYBACK_MODEL_DIR": os.environ.get("PLAYBACK_MODEL_DIR", str(ROOT.parent / "shared" / "models")),
           "PLAYBACK_OFFLINE": "1", "PYANNOTE_METRICS_ENABLED": "0"}
    rows = []
    for minutes in args.minutes:
        cmd = [sys.executable, "-m", "benchmarks.live_delay", "--child", str(minutes)] + (
            ["--no-offline"] if args.no_offline else [])
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        line = next((l for l in done.stdout.splitlines() if l.startswith("@@")), None)
        if line is None:
            print(f"{minutes} min: the recording failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            return 1
        row = json.loads(line[2:])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'minutes':>7} {'delay s':>8} {'drain':>6} {'assemble':>9} {'finish':>7} {'peak MB':>8} {'worker MB':>9} {'load':>5}"
          f" {'offline s':>9}  stages of the finish (s)")
    for r in rows:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
        print(f"{r['minutes']:>7.1f} {r['delay_s']:>8.1f} {r['drain_s']:>6.1f} {r['assemble_s']:>9.1f} "
              f"{r['finish_s']:>7.1f} {r['peak_rss_mb']:>8} {r['worker_peak_rss_mb']:>9} {r['load_average_at_stop']:>5.1f} "
              f"{r.get('offline_s', float('nan')):>9.1f}  {stages}")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        slope = (b["delay_s"] - a["delay_s"]) / (b["minutes"] - a["minutes"])
        print(f"\ndelay grows by {slope:.2f} s per minute recorded between {a['minutes']:g} and {b['minutes']:g} min"
              f" (target: results within 60 s after Stop; load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
