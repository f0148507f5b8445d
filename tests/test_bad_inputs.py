"""B1-B3: a corpus of awkward and broken inputs, generated at test time. Each one gives a typed,
readable error or a valid session; never a traceback, never a half-made session."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from capture.errors import BadMediaError, PlaybackError
from capture.ingest import import_media
from capture.media import decode_wav, iter_video_frames
from conftest import ROOT
from media_factory import make_media, written_file


def _truncate(src_kwargs, name, keep):
    def make(tmp):
        full = make_media(tmp / f"full-{name}", **src_kwargs)
        data = full.read_bytes()
        (tmp / name).write_bytes(data[: int(len(data) * keep)])
        return tmp / name
    return make


def _media(name, **kwargs):
    return lambda tmp: make_media(tmp / name, **kwargs)


# (case, maker, expected: "error:<words in the message>" or "ok:<duration_s>")
CORPUS = [
    ("not media", written_file("notes.mp4", b"Session notes: not a video at all.\n" * 20), "error:not a readable"),
    ("zero bytes", written_file("empty.mov", b""), "error:empty"),
    ("truncated mp4", _truncate({"seconds": 3.0}, "cut.mp4", 0.4), "error:not a readable"),
    ("truncated mkv", _truncate({"seconds": 3.0}, "cut.mkv", 0.5), "either"),
    ("truncated wav", _truncate({"seconds": 3.0, "video": False}, "cut.wav", 0.5), "either"),
    ("no audio track", _media("noaudio.mp4", audio=False, seconds=2.0), "ok:2.0"),
    ("no video track", _media("novideo.m4a", video=False, seconds=2.0), "ok:2.0"),
    ("silence", _media("silence.wav", video=False, silent=True, seconds=2.0), "ok:2.0"),
    ("one second", _media("one.mp4", seconds=1.0), "ok:1.0"),
    ("too short", _media("blip.wav", video=False, seconds=0.3), "error:at least"),
    ("variable frame rate", _media("vfr.mp4", vfr=True, seconds=3.0), "ok:3.0"),
    ("44.1 kHz stereo", _media("stereo44.m4a", video=False, rate=44_100, channels=2, seconds=2.0), "ok:2.0"),
    ("48 kHz stereo with video", _media("stereo48.mkv", rate=48_000, channels=2, seconds=2.0), "ok:2.0"),
    ("very large resolution", _media("huge.mkv", size=(7680, 4320), fps=2, seconds=1.0, audio=False),
     "error:over the limit"),
    ("mov", _media("a.mov"), "ok:2.0"),
    ("webm", _media("a.webm"), "ok:2.0"),
    ("wav", _media("a.wav", video=False), "ok:2.0"),
    ("audio starts late", _media("late.mkv", audio_start_s=0.5, seconds=2.0), "ok:2.5"),
]


def _store_is_empty(store):
    assert store.list_sessions() == []
    for folder in ("sessions", "staging"):
        path = store.root / folder
        assert not path.exists() or not any(path.iterdir()), f"{folder} holds a half-made session"


@pytest.mark.parametrize("case, make, expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_input_corpus(store, tmp_path, monkeypatch, case, make, expected):
    path = make(tmp_path)
    if case == "very large resolution":
        import capture.ingest as importer

        def never(*a, **k):
            raise AssertionError("decoded before the limits were checked")
        monkeypatch.setattr(importer, "decode_audio", never)
    try:
        session_id = import_media(store, path, "Alex,Sam")
    except PlaybackError as exc:
        message = str(exc)
        assert isinstance(exc, BadMediaError), f"{case}: {type(exc).__name__}: {message}"
        assert "\n" not in message and path.name in message
        assert expected.startswith(("error:", "either")), f"{case} should import, got: {message}"
        if expected.startswith("error:"):
            assert expected[6:] in message
        _store_is_empty(store)
        return
    assert not expected.startswith("error:"), f"{case} should fail with '{expected[6:]}'"
    manifest = store.manifest(session_id)
    if expected.startswith("ok:"):
        assert manifest["duration_s"] == pytest.approx(float(expected[3:]), abs=0.15)
    media = manifest["media"]
    if media["audio"]:
        y, sr = decode_wav(store.read_bytes(session_id, media["audio"]))
        assert sr == 16_000 and y.ndim == 1 and np.isfinite(y).all()
        assert len(y) / sr == pytest.approx(manifest["duration_s"], abs=0.2)
        if case == "silence":
            assert np.abs(y).max() < 1e-3
        if case == "audio starts late":
            assert np.abs(y[: int(0.45 * sr)]).max() == 0.0 and np.abs(y[int(0.6 * sr):]).max() > 0.05
    if media["video"]:
        with store.open_media(session_id, media["video"]) as video:
            times = [t for t, _ in iter_video_frames(video, fps=100, origin_s=manifest["time_origin_s"])]
        assert times and all(b > a for a, b in zip(times, times[1:]))
        assert times[-1] <= manifest["duration_s"] + 0.1
        if case == "variable frame rate":
            gaps = np.diff(times)
            assert gaps.max() / gaps.min() > 2, "frame times come from timestamps, not a constant rate"


def test_cli_gives_one_readable_line_for_each_bad_file(store, tmp_path):
    for make in (written_file("notes.mp4", b"not media"), _media("huge.mkv", size=(7680, 4320), fps=2, seconds=1.0,
                                                                  audio=False)):
        path = make(tmp_path)
        result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "import", str(path),
                                 "--participants", "Alex,Sam"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        lines = [line for line in result.stderr.strip().splitlines() if line.startswith("playback: ")]
        assert len(lines) == 1 and path.name in lines[0]
    _store_is_empty(store)


def test_track_that_is_not_audio_is_refused_before_anything_iswritten_file(store, tmp_path):
    video_only = make_media(tmp_path / "camera.mp4", audio=False)
    with pytest.raises(BadMediaError, match="no audio stream"):
        import_media(store, None, "Alex,Sam", tracks=[f"Alex={video_only}"])
    _store_is_empty(store)
