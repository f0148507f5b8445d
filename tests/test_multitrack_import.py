"""Multi-track import: one audio file per participant (as video-call tools save them) becomes one
16 kHz mono track each, aligned to session time, plus their mix as the session audio."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from capture.consent import read_consent
from capture.errors import PlaybackError
from capture.ingest import import_media
from capture.media import decode_audio, decode_wav
from conftest import ROOT, shared
from media_factory import make_media, make_wav

NAMES = ["Ana", "Ben", "Cleo", "Dev"]


def sources():
    return [shared(f"data/ami-group/sources/source{i}.wav") for i in range(4)]


def test_ami_group_sources_via_cli(store):
    tracks = [arg for name, path in zip(NAMES, sources()) for arg in ("--track", f"{name}={path}")]
    result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "import", *tracks,
                             "--participants", ",".join(NAMES)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    session_id = result.stdout.strip().splitlines()[-1]
    assert session_id == result.stdout.strip() and not any(n in session_id for n in NAMES)
    manifest = store.manifest(session_id)
    media = manifest["media"]
    assert manifest["duration_s"] == pytest.approx(60.0, abs=0.05)
    assert [t["participant_id"] for t in media["tracks"]] == ["p1", "p2", "p3", "p4"]
    assert [t["rel"] for t in media["tracks"]] == [f"media/track{i}.wav" for i in range(1, 5)]
    originals = [decode_audio(path) for path in sources()]
    for track, original in zip(media["tracks"], originals):
        y, sr = decode_wav(store.read_bytes(session_id, track["rel"]))
        assert sr == 16_000 and y.ndim == 1 and len(y) == 60 * 16_000
        assert np.abs(y - original[: len(y)]).max() < 1e-3   # same samples, same time
    mix, _ = decode_wav(store.read_bytes(session_id, media["audio"]))
    tracks = np.stack([decode_wav(store.read_bytes(session_id, t["rel"]))[0] for t in media["tracks"]])
    total = tracks.sum(0)
    scale = min(1.0, 0.99 / np.abs(total).max())
    assert np.abs(mix - total * scale).max() < 2e-3             # the session audio is the tracks' mix
    # the tracks line up with AMI's own mixture (a weighted sum of the same sources)
    reference = decode_audio(shared("data/ami-group/mixture.wav"))[: tracks.shape[1]]
    gains, *_ = np.linalg.lstsq(tracks.T, reference, rcond=None)
    assert np.corrcoef(tracks.T @ gains, reference)[0, 1] > 0.999
    assert media["video"] is None and media["original"] == "media/audio.wav"
    consent = read_consent(store, session_id)
    assert set(consent) == {"p1", "p2", "p3", "p4"} and consent["p1"].method == "attested-by-therapist"


def test_tracks_are_aligned_to_the_video(store, tmp_path):
    """A 4 s call video with per-person tracks: a longer track is cut to the video, a track whose
    stream starts 0.5 s late is padded by 0.5 s, and an unassigned track keeps no owner."""
    video = make_media(tmp_path / "call.mp4", seconds=4.0)
    late = make_media(tmp_path / "sam.mkv", video=False, seconds=3.0, audio_start_s=0.5)
    session_id = import_media(store, video, "Alex,Sam", tracks=[
        f"Alex={shared('data/ami-group/sources/source0.wav')}", f"Sam={late}",
        str(make_wav(tmp_path / "room.wav", 2.0)),
    ])
    media = store.manifest(session_id)["media"]
    assert media["video"] == "media/original.mp4"
    assert [t["participant_id"] for t in media["tracks"]] == ["p1", "p2", None]
    ys = [decode_wav(store.read_bytes(session_id, t["rel"]))[0] for t in media["tracks"]]
    n = int(round(store.manifest(session_id)["duration_s"] * 16_000))
    assert all(len(y) == n for y in ys)
    sam = ys[1]
    assert np.abs(sam[: int(0.45 * 16_000)]).max() == 0.0 and np.abs(sam[int(0.6 * 16_000):int(3.4 * 16_000)]).max() > 0.05
    room = ys[2]
    assert np.abs(room[int(2.1 * 16_000):]).max() == 0.0      # padded with silence after its end


@pytest.mark.parametrize("tracks, message", [
    (["Zoe={src}"], "not one of the participants"),
    (["Alex={src}", "Alex={src}"], "at most one"),
])
def test_bad_track_assignments_leave_nothing(store, tracks, message):
    src = shared("data/ami-group/sources/source0.wav")
    with pytest.raises(PlaybackError, match=message):
        import_media(store, None, "Alex,Sam", tracks=[t.format(src=src) for t in tracks])
    assert store.list_sessions() == []


@pytest.mark.slow
def test_tone_reads_each_person_from_their_own_track(store):
    """Analysed multi-track: prosody frames per person (their own track), every person with
    speech has a tone summary measured even where others talk over them, and from their own
    tracks both women's median pitch is above both men's (AMI: FEE013, FEE016 are women)."""
    from analysis.pipeline import analyze

    session_id = import_media(store, None, ",".join(NAMES), tracks=[f"{n}={p}" for n, p in zip(NAMES, sources())])
    analyze(store, session_id)
    frames, _ = store.read_table(session_id, "derived/tone_frames.parquet")
    segments, _ = store.read_table(session_id, "derived/tone.parquet")
    assert set(frames.participant_id) == {"p1", "p2", "p3", "p4"}
    assert (frames.groupby("participant_id").size() == len(frames) // 4).all()      # one frame row per hop each
    overlapped = segments[segments.overlap_share > 0.5]
    assert len(overlapped) and overlapped.loudness_db.notna().all()                    # own track: still measured
    # the tracks' speakers (by loudness in AMI's own turns): source0 MEO015, 1 FEE013, 2 MEE014, 3 FEE016
    median = segments.groupby("participant_id").f0_hz.median()
    print("median F0 (Hz) per person from their own track:", median.round().to_dict())
    women, men = [median["p2"], median["p4"]], [median.get("p1"), median.get("p3")]
    assert min(women) > max(m for m in men if np.isfinite(m))
