"""Pipeline contract: re-runs skip unchanged stages, exports, and the CLI on a stored session."""
from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.export import export
from analysis.pipeline import Params, analyze
from capture.ingest import import_media
from conftest import ROOT, shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ami_session(tmp_path_factory):
    from capture.store import Store

    store = Store(tmp_path_factory.mktemp("store"))
    session_id = import_media(store, shared("data/ami-pair/dev00.wav"), "Alex,Sam")
    first = analyze(store, session_id)
    return store, session_id, first


def test_rerun_skips_unchanged_stages(ami_session):
    store, session_id, first = ami_session
    assert {r["this_run"] for r in first} == {"ran"}
    again = analyze(store, session_id)
    assert {r["this_run"] for r in again} == {"skipped"}


def test_changed_parameter_reruns_that_stage_and_what_follows(ami_session):
    store, session_id, _ = ami_session
    params = Params()
    params.dynamics = type(params.dynamics)(turn_gap_s=0.7)
    runs = {r["stage"]: r["this_run"] for r in analyze(store, session_id, params=params)}
    assert runs == {"faces": "skipped", "speakers": "skipped", "tone": "skipped", "dynamics": "ran",
                    "expressions": "skipped", "events": "ran"}
    analyze(store, session_id)  # back to defaults for the other tests


def test_decoded_audio_is_let_go_once_no_stage_left_reads_it(ami_session, monkeypatch):
    """The session's decoded audio (96 MB at 50 minutes) is released before the first stage
    after the last one that reads it (tone), not held under dynamics, expressions and events."""
    import analysis.pipeline as pipeline

    store, session_id, _ = ami_session
    happened = []
    release = pipeline.Session.release_audio

    def released(self):
        happened.append(("released", self._audio is not None))
        release(self)

    monkeypatch.setattr(pipeline.Session, "release_audio", released)
    analyze(store, session_id, force=True, hook=lambda stage, completed, total: happened.append(stage))
    first = next(i for i, event in enumerate(happened) if isinstance(event, tuple))
    assert happened[first] == ("released", True)                  # it held the decoded audio until then
    assert max(i for i, event in enumerate(happened) if event == "tone") < first
    assert first < min(i for i, event in enumerate(happened) if event == "dynamics")


def test_audio_only_session_has_no_face_rows(ami_session):
    store, session_id, _ = ami_session
    faces, meta = store.read_table(session_id, "derived/faces.parquet")
    assert faces.empty and meta["skipped"] == "no video"


def test_rttm_export(ami_session):
    store, session_id, _ = ami_session
    lines = export(store, session_id, "rttm").splitlines()
    assert lines and all(line.startswith(f"SPEAKER {session_id} 1 ") for line in lines)
    assert {line.split()[7] for line in lines} <= {"Alex", "Sam"}


def test_csv_export_via_cli_has_every_event_with_explanation(ami_session, tmp_path):
    import pandas as pd

    store, session_id, _ = ami_session
    out = tmp_path / "events.csv"
    result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "export", session_id,
                             "--format", "csv", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    stored, _ = store.read_table(session_id, "derived/events.parquet")
    assert len(table) == len(stored) > 0
    assert table.explanation.notna().all() and (table.start_s.diff().dropna() >= 0).all()


def test_analyze_unknown_session_is_a_readable_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(tmp_path), "analyze", "nope"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "No session 'nope'" in result.stderr and "Traceback" not in result.stderr
