"""Importing real recordings, and readable errors for bad files that leave nothing behind."""
from __future__ import annotations

import subprocess
import sys

import pytest

from capture.errors import BadMediaError, PlaybackError
from capture.ingest import import_media, parse_participants
from conftest import ROOT, shared
from media_factory import written_file


def playback(*args, store):
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def assert_store_empty(store):
    assert store.list_sessions() == []
    for folder in ("sessions", "staging"):
        path = store.root / folder
        assert not path.exists() or not any(path.iterdir()), f"{folder} holds a half-made session"


def test_import_ami_wav_via_cli(store):
    result = playback("import", str(shared("data/ami-pair/dev00.wav")), "--participants", "Alex,Sam", store=store)
    assert result.returncode == 0, result.stderr
    session_id = result.stdout.strip().splitlines()[-1]
    manifest = store.manifest(session_id)
    assert [p["name"] for p in manifest["participants"]] == ["Alex", "Sam"]
    assert manifest["duration_s"] == pytest.approx(30.0, abs=0.05)
    assert manifest["media"]["video"] is None
    assert "Alex" not in session_id and "Sam" not in session_id
    listing = playback("sessions", store=store)
    assert session_id in listing.stdout


def test_import_grid_talking_face(store):
    session_id = import_media(store, shared("data/talking/bbaf2n.mpg"), "Ben")
    manifest = store.manifest(session_id)
    probe = manifest["media"]["probe"]
    assert probe["has_video"] and probe["has_audio"]
    assert (probe["video_width"], probe["video_height"]) == (360, 288)
    from capture.media import decode_wav

    y, sr = decode_wav(store.read_bytes(session_id, manifest["media"]["audio"]))
    assert sr == 16000 and y.ndim == 1
    assert len(y) / sr == pytest.approx(probe["duration_s"], abs=0.1)


def test_audio_offset_from_stream_start_times(store):
    """face_noface.mov's audio starts 2.43 s after its video: the normalised audio is padded."""
    session_id = import_media(store, shared("data/faces/face_noface.mov"), "Kim")
    manifest = store.manifest(session_id)
    from capture.media import decode_wav

    y, sr = decode_wav(store.read_bytes(session_id, manifest["media"]["audio"]))
    lead = manifest["media"]["probe"]["audio_start_s"] - manifest["time_origin_s"]
    assert lead == pytest.approx(2.43, abs=0.01)
    assert abs(y[: int(lead * sr) - 160]).max() == 0.0


def _truncated_mp4(tmp_path):
    data = shared("data/faces/single_face.mp4").read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.mark.parametrize("make_file, expected", [
    (written_file("notes.mp4", b"session notes, not a video"), "not a readable"),
    (written_file("empty.mp4", b""), "empty"),
    (_truncated_mp4, "truncated"),
    (lambda tmp: tmp / "missing.mp4", "no such file"),
])
def test_bad_file_gives_one_readable_line_and_no_session(store, tmp_path, make_file, expected):
    path = make_file(tmp_path)
    result = playback("import", str(path), "--participants", "Alex,Sam", store=store)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("playback: ") and expected in lines[0]
    assert "Traceback" not in result.stderr
    assert_store_empty(store)


def test_failure_midway_leaves_no_session(store, monkeypatch):
    import capture.ingest as importer

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(importer, "encode_wav", broken)
    with pytest.raises(OSError):
        import_media(store, shared("data/ami-pair/dev00.wav"), "Alex,Sam")
    assert_store_empty(store)


@pytest.mark.parametrize("text", ["", " , ", "Alex,alex"])
def test_participants_must_be_named_and_distinct(text):
    with pytest.raises(PlaybackError):
        parse_participants(text)


def test_probe_limits(tmp_path, monkeypatch):
    import capture.media as media

    monkeypatch.setattr(media, "MAX_DURATION_S", 10.0)
    with pytest.raises(BadMediaError, match="limit"):
        media.probe(shared("data/ami-pair/dev00.wav"))


def test_decode_audio_until_stops_early_with_the_same_samples(tmp_path):
    """``decode_audio(until_s=)`` gives exactly the first seconds of the whole decode (AAC at
    another rate, resampled to 16 kHz), of that length."""
    import numpy as np

    from capture.media import decode_audio
    from media_factory import make_media

    path = make_media(tmp_path / "talk.mp4", seconds=6.0, video=False, rate=44_100)
    whole = decode_audio(path)
    first = decode_audio(path, until_s=2.5)
    assert len(whole) > 5 * 16_000 and len(first) == 40_000
    np.testing.assert_array_equal(first, whole[:40_000])
