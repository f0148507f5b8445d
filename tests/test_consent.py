"""C1-C4: the consent gate, provable records, scopes honoured by the analysis, withdrawal."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from capture.consent import SCOPES, ConsentRecord, consent_text_sha256, make_record, parse_scopes, read_consent
from capture.withdrawal import withdraw
from capture.live.devices import FileCamera, WavMicrophone
from capture.errors import ConsentError, PlaybackError
from capture.ingest import import_media, parse_participants
from capture.live.recorder import Recorder
from conftest import ROOT, SAMPLE, shared
from media_factory import make_media, make_wav

PEOPLE = "Alex,Sam"


def playback(*args, store, **kwargs):
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, **kwargs)


def assert_nothing_written(store):
    assert store.list_sessions() == []
    for folder in ("sessions", "staging"):
        path = store.root / folder
        assert not path.exists() or not any(path.iterdir())


@pytest.fixture
def devices(tmp_path):
    wav = make_wav(tmp_path / "room.wav", 3.0)
    video = make_media(tmp_path / "room.mp4", seconds=3.0)
    return [WavMicrophone(wav)], [FileCamera(video)]


def test_nothing_is_pre_ticked_and_unknown_scopes_are_refused():
    assert parse_scopes(None) == {s: False for s in SCOPES}
    assert parse_scopes("record_audio") == {s: s == "record_audio" for s in SCOPES}
    assert all(parse_scopes("all").values())
    with pytest.raises(PlaybackError, match="Unknown consent scope"):
        parse_scopes("record_everything")


@pytest.mark.parametrize("consents, missing", [
    ({"p1": "all"}, "Sam (no consent yet)"),
    ({"p1": "all", "p2": "record_audio,analyse_voice"}, "Sam (did not agree to record video)"),
    ({"p1": "all", "p2": "none"}, "Sam (did not agree to record audio and record video)"),
])
def test_gate_opens_no_device_and_writes_nothing(store, devices, consents, missing):
    mics, cams = devices
    people = parse_participants(PEOPLE)
    records = {pid: make_record(pid, scopes, method="cli") for pid, scopes in consents.items()}
    recorder = Recorder(store, people, records, mics=mics, cameras=cams)
    with pytest.raises(ConsentError, match=missing.replace("(", r"\(").replace(")", r"\)")):
        recorder.start()
    assert [d.opened for d in mics + cams] == [0, 0]
    assert_nothing_written(store)


def test_consent_to_an_older_text_is_not_enough(store, devices):
    mics, cams = devices
    people = parse_participants(PEOPLE)
    records = {p["id"]: make_record(p["id"], "all", method="cli") for p in people}
    records["p2"] = ConsentRecord(**{**records["p2"].to_dict(), "text_sha256": "0" * 64})
    with pytest.raises(ConsentError, match="older consent text"):
        Recorder(store, people, records, mics=mics, cameras=cams).start()
    assert mics[0].opened == 0 and cams[0].opened == 0
    assert_nothing_written(store)


def test_cli_record_refuses_without_everyones_consent(store):
    result = playback("record", "--participants", PEOPLE, "--simulate", "--consent", "Alex=all", "--duration", "2",
                      store=store)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Sam" in result.stderr and "consent" in result.stderr
    result = playback("record", "--participants", PEOPLE, "--simulate", "--duration", "2", store=store,
                      stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "consent" in result.stderr
    assert_nothing_written(store)


def test_consent_records_are_provable_and_audited(store, devices, tmp_path):
    mics, cams = devices
    people = parse_participants(PEOPLE)
    records = {"p1": make_record("p1", "all", method="spoken+checkbox"),
               "p2": make_record("p2", "record_audio,record_video", method="spoken+checkbox")}
    clip = make_wav(tmp_path / "statement.wav", 2.0, rate=48_000).read_bytes()
    recorder = Recorder(store, people, records, mics=mics, cameras=cams, segment_s=1.0,
                        enrolment={"p1": clip, "p2": clip})
    session_id = recorder.start()
    recorder.wait(1.5)
    recorder.stop()
    stored = read_consent(store, session_id)
    assert set(stored) == {"p1", "p2"}
    alex, sam = stored["p1"], stored["p2"]
    assert alex.text_sha256 == consent_text_sha256() and alex.collected_utc.endswith("+00:00")
    assert alex.method == "spoken+checkbox" and alex.collected_by == "therapist"
    # the spoken statement is kept as a voice sample only where voice analysis was agreed
    assert alex.enrolment == "enrolment/p1.wav" and sam.enrolment is None
    assert not store.exists(session_id, "enrolment/p2.wav")
    from capture.media import decode_wav

    y, sr = decode_wav(store.read_bytes(session_id, alex.enrolment))
    assert sr == 16_000 and len(y) / sr == pytest.approx(2.0, abs=0.05)
    log = (store.root / "audit.log").read_text()
    assert '"consent"' in log and "p1:111111" in log and "p2:110000" in log
    assert "Alex" not in log and "Sam" not in log


def test_import_records_attested_consent_and_checks_given_scopes(store):
    wav = shared("data/ami-pair/dev00.wav")
    session_id = import_media(store, wav, PEOPLE)
    records = read_consent(store, session_id)
    assert all(r.method == "attested-by-therapist" and r.allows("analyse_voice") and not r.allows("take_home_copy")
               for r in records.values())
    with pytest.raises(ConsentError, match="Sam"):
        import_media(store, wav, PEOPLE, consent={"Alex": "all", "Sam": "analyse_voice"})
    assert len(store.list_sessions()) == 1


def test_a_later_take_home_agreement_is_recorded_and_audited(store):
    """An imported session has no take-home scope; Sam agrees at the next session: the therapist
    records it, the take-home rule then passes, and recording scopes cannot change this way."""
    from analysis.takehome import TakeHomeRefused, require_take_home

    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), PEOPLE)
    with pytest.raises(TakeHomeRefused, match=f"playback consent {session_id} --give"):
        require_take_home(store, session_id)
    given = playback("consent", session_id, "--give", "Alex=take_home_copy", "--give", "Sam=take_home_copy,supervision_training",
                     store=store)
    assert given.returncode == 0, given.stderr
    records = read_consent(store, session_id)
    assert all(r.allows("take_home_copy") and r.allows("analyse_voice") and r.method == "changed later"
               for r in records.values())
    assert records["p2"].allows("supervision_training") and not records["p1"].allows("supervision_training")
    assert require_take_home(store, session_id) == {"p1", "p2"}
    revoked = playback("consent", session_id, "--revoke", "Sam=take_home_copy", store=store)
    assert revoked.returncode == 0 and not read_consent(store, session_id)["p2"].allows("take_home_copy")
    for args, words in ((["--revoke", "Sam=record_audio"], "playback withdraw"),
                        (["--give", "Robin=take_home_copy"], "No one called 'Robin'"),
                        (["--give", "Sam"], "NAME=SCOPES")):
        refused = playback("consent", session_id, *args, store=store)
        assert refused.returncode != 0 and words in refused.stderr and "Traceback" not in refused.stderr
    before = read_consent(store, session_id)
    partly = playback("consent", session_id, "--give", "Sam=supervision_training", "--give", "Robin=take_home_copy",
                      store=store)
    assert partly.returncode != 0 and read_consent(store, session_id) == before     # all checked, nothing written
    log = (store.root / "audit.log").read_text()
    assert "p2:101011" in log and "p2:101001" in log and "Sam" not in log and "Alex" not in log   # audio only


def test_a_change_under_an_older_text_keeps_no_sharing_scope_it_did_not_name(store):
    """Both agreed to a take-home copy under an older consent text; a later change for another
    scope is given under the current text, so the take-home scope is not carried over unseen."""
    from analysis.takehome import TakeHomeRefused, require_take_home
    from capture.consent import change_scopes, write_consent

    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), PEOPLE)
    older = [ConsentRecord(**{**r.to_dict(), "scopes": {**r.scopes, "take_home_copy": True,
                                                         "supervision_training": True}, "text_version": "0"})
             for r in read_consent(store, session_id).values()]
    write_consent(store, session_id, older)
    for person in ("Alex", "Sam"):
        record, dropped = change_scopes(store, session_id, person, revoke=["supervision_training"])
        assert record.is_current() and record.allows("analyse_voice") and not record.allows("take_home_copy")
        assert not dropped
    with pytest.raises(TakeHomeRefused):
        require_take_home(store, session_id)


def test_revoking_face_analysis_removes_the_analysis_made_with_it(sample_copy):
    store, session_id = sample_copy
    assert store.list_files(session_id, "derived")
    result = playback("consent", session_id, "--revoke", "Alex=analyse_face", store=store)
    assert result.returncode == 0, result.stderr
    assert "analysis was removed" in result.stderr and f"playback analyze {session_id}" in result.stderr
    assert store.list_files(session_id, "derived") == [] and store.session_row(session_id).status == "imported"
    assert not read_consent(store, session_id)["p1"].allows("analyse_face")


# ----- scopes honoured by the analysis (C3) ----------------------------------------------------
class FakeLandmarker:
    """Stands in for MediaPipe: records every image the face model is given; finds no faces."""

    def __init__(self):
        self.images = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def detect_for_video(self, image, ts_ms):
        self.images.append(np.array(image.numpy_view()))
        return type("Result", (), {"face_landmarks": [], "face_blendshapes": [], "facial_transformation_matrixes": []})()


def test_face_model_never_sees_a_person_without_face_consent(store, monkeypatch):
    import analysis.stages.faces as faces
    from analysis.pipeline import Params, Session, no_progress, run_faces

    session_id = import_media(store, SAMPLE / "session.mp4", PEOPLE,
                              consent={"Alex": "all", "Sam": "record_audio,record_video,analyse_voice"})
    fake = FakeLandmarker()
    calls = []

    def landmarker(num_faces, params):
        import mediapipe as mp

        calls.append(num_faces)
        return mp, fake

    monkeypatch.setattr(faces, "_landmarker", landmarker)
    params = Params()
    params.faces = faces.FaceParams(sample_fps=1.0)
    outputs, info = run_faces(Session(store, session_id), params, no_progress)
    table = outputs["faces.parquet"]
    assert calls == [1] and info["face_consent"] == ["p1"]
    assert len(fake.images) >= 80
    width = fake.images[0].shape[1]
    assert all(img[:, width // 2:].max() == 0 for img in fake.images), "Sam's seat reached the face model"
    assert all(img[:, : width // 2].max() > 0 for img in fake.images)
    assert set(table.participant_id) == {"p1"}


@pytest.mark.slow
def test_real_face_stage_has_no_rows_for_sam(store):
    import analysis.stages.faces as faces
    from analysis.pipeline import Params, Session, no_progress, run_faces

    session_id = import_media(store, SAMPLE / "session.mp4", PEOPLE,
                              consent={"Alex": "record_audio,record_video", "Sam": "all"})
    params = Params()
    params.faces = faces.FaceParams(sample_fps=2.0)
    table = run_faces(Session(store, session_id), params, no_progress)[0]["faces.parquet"]
    assert set(table.participant_id) == {"p2"}
    assert table.detected.mean() > 0.8       # Sam (right) is still found and analysed


def test_voice_scope_unattributes_speech_and_drops_tone(store):
    from analysis.pipeline import Session, honour_voice_consent

    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), PEOPLE,
                              consent={"Alex": "record_audio,analyse_voice", "Sam": "record_audio"})
    s = Session(store, session_id)
    speech = pd.DataFrame({"start_s": [0.0, 2.0, 4.0], "end_s": [1.5, 3.5, 5.0], "participant_id": ["p1", "p2", "p1"],
                           "confidence": [1.0, 1.0, 1.0]})
    out, info = honour_voice_consent("speakers", s, {"speakers.parquet": speech}, {})
    assert list(out["speakers.parquet"].participant_id) == ["p1", "unattributed", "p1"]
    assert info["voice_consent"] == ["p1"]
    store.write_table(session_id, "derived/speakers.parquet", out["speakers.parquet"])
    tone_rows = pd.DataFrame({"start_s": [0.0, 2.0], "end_s": [1.5, 3.5], "participant_id": ["p1", "unattributed"]})
    frames = pd.DataFrame({"t_s": np.arange(0, 5, 0.5), "loudness_db": -20.0, "f0_hz": 150.0, "nucleus": True})
    arousal = pd.DataFrame({"participant_id": ["p1", "unattributed"], "t_s": [1.0, 3.0], "loudness_delta_db": 0.0,
                            "pitch_delta_st": 0.0, "arousal": 0.0})
    out, _ = honour_voice_consent("tone", s, {"tone.parquet": tone_rows, "tone_frames.parquet": frames,
                                              "arousal.parquet": arousal}, {})
    assert list(out["tone.parquet"].participant_id) == ["p1"]
    assert list(out["arousal.parquet"].participant_id) == ["p1"]
    hidden = out["tone_frames.parquet"].query("t_s >= 2 and t_s < 3.5")
    assert hidden.f0_hz.isna().all() and out["tone_frames.parquet"].f0_hz.notna().sum() == 7
    assert not hidden.nucleus.any() and out["tone_frames.parquet"].nucleus.sum() == 7


def test_no_voice_consent_means_the_voice_models_never_run(store, monkeypatch):
    import analysis.stages.speakers.diarization as diarization
    from analysis.pipeline import Params, Session, no_progress, run_speakers

    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), PEOPLE, consent={"Alex": "record_audio",
                                                                                         "Sam": "record_audio"})

    def never(*args, **kwargs):
        raise AssertionError("a voice model ran without voice-analysis consent")

    monkeypatch.setattr(diarization, "diarize_frames", never)
    outputs, info = run_speakers(Session(store, session_id), Params(), no_progress)
    assert outputs["speakers.parquet"].empty


# ----- withdrawal (C4) -------------------------------------------------------------------------
def test_withdrawal_via_cli_erases_the_session(store):
    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), PEOPLE)
    folder = store.root / "sessions" / session_id
    assert folder.is_dir()
    refused = playback("withdraw", session_id, "--participant", "Sam", store=store, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    result = playback("withdraw", session_id, "--participant", "Sam", "--yes", store=store)
    assert result.returncode == 0, result.stderr
    assert store.list_sessions() == [] and not folder.exists()
    log = (store.root / "audit.log").read_text()
    assert "p2:withdrawn" in log and '"withdraw"' in log


def test_withdrawal_during_capture_stops_it_and_erases(store, devices):
    mics, cams = devices
    for m in mics:
        m.loop = True
    people = parse_participants(PEOPLE)
    records = {p["id"]: make_record(p["id"], "all", method="cli") for p in people}
    recorder = Recorder(store, people, records, mics=mics, cameras=cams, segment_s=0.5)
    session_id = recorder.start()
    time.sleep(1.2)
    assert recorder.running and recorder.state.sealed >= 1
    recorder.withdraw("p2")
    assert not recorder.running
    assert store.list_sessions() == [] and not (store.root / "sessions" / session_id).exists()


@pytest.mark.slow
def test_withdrawal_stops_a_recording_in_another_process(store, tmp_path):
    wav = make_wav(tmp_path / "room.wav", 3.0)
    store.list_sessions()
    proc = subprocess.Popen([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "record", "--participants",
                             PEOPLE, "--consent-all", "all", "--simulate", "--no-video", "--audio", str(wav),
                             "--segment-s", "0.5", "--duration", "60"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = proc.stderr.readline()
        assert "Recording session" in line, line + proc.stderr.read()
        session_id = line.split("Recording session ")[1].split()[0]
        time.sleep(1.0)
        started = time.monotonic()
        pid = withdraw(store, session_id, "Sam")
        assert pid == "p2" and time.monotonic() - started < 5
        assert proc.wait(timeout=10) == 3
        assert store.list_sessions() == []
    finally:
        proc.kill()
        proc.wait()


def test_withdrawal_in_the_dashboard_is_one_choice_and_erases(store, monkeypatch):
    """Review page: choose who withdraws, press once: the session is gone and it says so."""
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT, TEST_PASSPHRASE, shared

    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), "Alex,Sam")
    monkeypatch.setenv("PLAYBACK_STORE", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="vault_passphrase").input(TEST_PASSPHRASE)
    at.button[0].click().run()
    assert not at.exception, at.exception
    at.selectbox(key=f"withdraw_who_{session_id}").select("p2").run()
    button = at.button(key=f"withdraw_{session_id}")
    assert button.label == "Sam withdraws: erase this session"
    button.click().run()
    assert not at.exception, at.exception
    assert store.list_sessions() == []
    assert any("Sam withdrew consent" in i.value for i in at.info)
