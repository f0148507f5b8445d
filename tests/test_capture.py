"""Live capture through the file-backed devices: streams on one clock, sealed segments, crash
recovery after SIGKILL (R1, R2), and a recorded session that analyses like an imported one."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from capture.consent import make_record
from capture.live.devices import FileCamera, WavMicrophone
from capture.ingest import parse_participants
from capture.media import decode_wav, iter_video_frames
from capture.live.recorder import Recorder, pack_segment, read_segment, unpack_segment
from capture.live.recovery import recover_interrupted
from conftest import ROOT, SAMPLE
from media_factory import make_media, make_wav

PEOPLE = "Alex,Sam"


def _recorder(store, mics, cams, **kwargs):
    people = parse_participants(PEOPLE)
    records = {p["id"]: make_record(p["id"], "all", method="cli") for p in people}
    return Recorder(store, people, records, mics=mics, cameras=cams, **kwargs)


def test_two_microphones_and_a_camera_line_up_on_one_clock(store, tmp_path):
    wav = make_wav(tmp_path / "voice.wav", 5.0, freq=180.0, seed=3)
    video = make_media(tmp_path / "cam.mp4", seconds=5.0, fps=15)
    recorder = _recorder(store, [WavMicrophone(wav), WavMicrophone(wav)], [FileCamera(video)], segment_s=1.0,
                         track_owner={0: "p1", 1: "p2"})
    session_id = recorder.start()
    recorder.wait(3.0)
    manifest = recorder.stop()
    assert store.session_row(session_id).status == "recorded"
    media = manifest["media"]
    assert manifest["duration_s"] == pytest.approx(3.0, abs=1.1)
    assert [t["participant_id"] for t in media["tracks"]] == ["p1", "p2"]
    a, sr = decode_wav(store.read_bytes(session_id, media["tracks"][0]["rel"]))
    b, _ = decode_wav(store.read_bytes(session_id, media["tracks"][1]["rel"]))
    assert sr == 16_000 and len(a) == len(b) == int(round(manifest["duration_s"] * sr))
    # the same sound on two microphones started by two threads: aligned within 20 ms
    lags = range(-800, 801, 4)
    core = slice(8000, len(a) - 8000)
    best = max(lags, key=lambda k: float(np.dot(a[core], np.roll(b, k)[core])))
    assert abs(best) <= 320
    mix, _ = decode_wav(store.read_bytes(session_id, media["audio"]))
    assert len(mix) == len(a)
    with store.open_media(session_id, media["video"]) as path:
        times = [t for t, _ in iter_video_frames(path, fps=100)]
    assert times[0] < 0.5 and times[-1] <= manifest["duration_s"] + 0.01
    assert all(y > x for x, y in zip(times, times[1:]))
    assert store.list_files(session_id, "spool") == []


def test_recovery_leaves_a_running_capture_alone(store, tmp_path):
    from capture.store import Store

    wav = make_wav(tmp_path / "voice.wav", 2.0)
    recorder = _recorder(store, [WavMicrophone(wav, loop=True)], [], segment_s=0.5)
    session_id = recorder.start()
    try:
        time.sleep(0.8)
        other = Store(store.root).unlock()
        assert recover_interrupted(other) == []
        assert other.session_row(session_id).status == "recording"
    finally:
        recorder.stop()
    assert store.session_row(session_id).status == "recorded"


def test_cli_record_simulate_prints_the_session_id_last(store, tmp_path):
    wav = make_wav(tmp_path / "voice.wav", 3.0)
    video = make_media(tmp_path / "cam.mp4", seconds=3.0)
    store.list_sessions()
    result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "record",
                             "--participants", PEOPLE, "--consent-all", "all", "--simulate", "--video", str(video),
                             "--audio", f"Alex={wav}", "--audio", f"Sam={wav}", "--duration", "2", "--segment-s", "1"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    session_id = result.stdout.strip().splitlines()[-1]
    assert session_id == result.stdout.strip()
    assert "Recording session" in result.stderr
    manifest = store.manifest(session_id)
    assert [t["participant_id"] for t in manifest["media"]["tracks"]] == ["p1", "p2"]
    consent = playback_consent(store, session_id)
    assert "Alex" in consent and "yes" in consent


def playback_consent(store, session_id):
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "consent", session_id],
                          capture_output=True, text=True, cwd=ROOT, timeout=60).stdout


def test_a_damaged_video_segment_is_counted_and_skipped_and_the_rest_assembled(store, tmp_path):
    """Assembly remuxes the camera's segments as it reads them, checking each one's container:
    a segment whose MP4 is cut short adds nothing, is counted, and every other segment's frames
    are in the session's video."""
    wav = make_wav(tmp_path / "voice.wav", 5.0, freq=180.0, seed=3)
    video = make_media(tmp_path / "cam.mp4", seconds=5.0, size=(160, 120), fps=15)
    recorder = _recorder(store, [WavMicrophone(wav)], [FileCamera(video)], segment_s=1.0)
    session_id = recorder.start()
    recorder.wait(3.5)
    cams = sorted(rel for rel in store.list_files(session_id, "spool") if rel.endswith(".seg")
                  and read_segment(store.read_bytes(session_id, rel))[0]["kind"] == "video")
    damaged = cams[1]
    header, payload = unpack_segment(store.read_bytes(session_id, damaged))
    lost_frames = read_segment(store.read_bytes(session_id, damaged))[1]
    store.write_bytes(session_id, damaged, pack_segment(header, payload[: len(payload) // 2]))
    manifest = recorder.stop()
    assert manifest["capture"]["segments_unreadable"] == 1
    assert manifest["capture"]["segments"] >= len(cams) + 2
    with store.open_media(session_id, manifest["media"]["video"]) as path:
        times = [t for t, _ in iter_video_frames(path, fps=100)]
    assert lost_frames > 0 and times and all(y > x for x, y in zip(times, times[1:]))
    gap = max(y - x for x, y in zip(times, times[1:]))
    assert gap >= header["t1_s"] - header["t0_s"] - 0.2       # the damaged second is missing, not garbled


@pytest.mark.slow
def test_sigkill_at_random_moments_recovers_up_to_the_last_sealed_segment(store, tmp_path):
    """Kill a real recording process (microphone + camera, 1 s segments) 20 times at random
    moments; each time, every sealed segment reads back and the recovered duration is within one
    segment of what had been recorded."""
    segment_s = 1.0
    slack_s = 0.6          # process scheduling on a shared, busy machine
    wav = make_wav(tmp_path / "voice.wav", 4.0)
    video = make_media(tmp_path / "cam.mp4", seconds=4.0, size=(160, 120), fps=15)
    store.list_sessions()
    rng = random.Random(20261124)
    env = os.environ.copy()
    outcomes = []
    for i in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-m", "analysis.cli", "--store", str(store.root), "record", "--participants", PEOPLE,
             "--consent-all", "all", "--simulate", "--video", str(video), "--audio", str(wav), "--fps", "10",
             "--segment-s", str(segment_s), "--duration", "60"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = proc.stderr.readline()
            assert "Recording session" in line, line + proc.stderr.read()
            started = time.monotonic()
            session_id = line.split("Recording session ")[1].split()[0]
            time.sleep(rng.uniform(0.05, 3.0))
            os.kill(proc.pid, signal.SIGKILL)
            recorded = time.monotonic() - started
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stderr.close()
        assert store.session_row(session_id).status == "recording"
        sealed = [rel for rel in store.list_files(session_id, "spool") if rel.endswith(".seg")]
        for rel in sealed:                                  # every sealed segment is whole
            header, content = read_segment(store.read_bytes(session_id, rel))
            assert (len(content) if header["kind"] == "audio" else content) > 0
        assert recover_interrupted(store) == [session_id]
        manifest = store.manifest(session_id)
        duration = manifest["duration_s"]
        assert store.session_row(session_id).status == "interrupted"
        assert manifest["capture"]["state"] == "interrupted" and manifest["capture"]["segments_unreadable"] == 0
        assert recorded - segment_s - slack_s <= duration <= recorded + slack_s, (i, recorded, duration)
        if sealed:
            y, sr = decode_wav(store.read_bytes(session_id, manifest["media"]["audio"]))
            assert len(y) == int(round(duration * sr))
            if manifest["media"]["video"]:
                with store.open_media(session_id, manifest["media"]["video"]) as path:
                    assert sum(1 for _ in iter_video_frames(path, fps=100)) > 0
        outcomes.append((round(recorded, 2), duration, len(sealed)))
    assert sum(1 for _, d, _ in outcomes if d > 0) >= 10, outcomes
    print("recorded s, recovered s, sealed segments:", outcomes)


@pytest.mark.slow
def test_recorded_session_analyses_like_an_imported_one(store):
    from analysis.pipeline import analyze

    recorder = _recorder(store, [WavMicrophone(SAMPLE / "session.mp4")], [FileCamera(SAMPLE / "session.mp4", fps=15)],
                         segment_s=2.0)
    session_id = recorder.start()
    recorder.wait(12.0)
    recorder.stop()
    records = analyze(store, session_id)
    assert {r["stage"] for r in records} == {"faces", "speakers", "tone", "dynamics", "expressions", "events"}
    assert all(r["status"] == "ok" for r in records)
    faces, _ = store.read_table(session_id, "derived/faces.parquet")
    speakers, _ = store.read_table(session_id, "derived/speakers.parquet")
    assert set(faces.participant_id) == {"p1", "p2"} and faces.detected.mean() > 0.7
    assert len(speakers) > 0 and set(speakers.participant_id) <= {"p1", "p2"}
    assert store.session_row(session_id).status == "analysed"
