"""The audio work of the speakers and tone stages runs in a background thread while the faces
stage runs where faces leave a core free: the artifacts are those of stages run one after
another, a failure in the background leaves nothing half-written, stages skipped as unchanged
start no early work, and where the faces stretches take every core the work waits for its stage."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from analysis import pipeline
from analysis.pipeline import Params, analyze
from capture.ingest import import_media
from conftest import SAMPLE
from tests.media_factory import make_media

pytestmark = pytest.mark.slow


def one_after_another() -> tuple[pipeline.Stage, ...]:
    """The stages with no early work: each does all its work inside its own run."""
    return tuple(dataclasses.replace(stage, early=None) for stage in pipeline.STAGES)


def test_concurrent_run_equals_the_serial_run_on_the_sample(sample_session, store, monkeypatch):
    concurrent_store, concurrent_id, concurrent_records = sample_session      # analysed with early work
    ran = {r["stage"]: r for r in concurrent_records}
    # the voice work ran in the background: the speakers run itself only names the clusters by faces
    assert ran["speakers"]["early_seconds"] > ran["speakers"]["seconds"]
    assert "early_seconds" in ran["tone"] and "early_seconds" not in ran["faces"]

    monkeypatch.setattr(pipeline, "STAGES", one_after_another())
    session_id = import_media(store, SAMPLE / "session.mp4", "Alex,Sam")
    serial_records = analyze(store, session_id)
    assert all("early_seconds" not in r for r in serial_records)
    assert ([r["fingerprint"] for r in serial_records]
            == [r["fingerprint"] for r in concurrent_records])     # same code, parameters and inputs

    tables = sorted(rel for rel in store.list_files(session_id, "derived") if rel.endswith(".parquet"))
    assert tables == sorted(rel for rel in concurrent_store.list_files(concurrent_id, "derived")
                            if rel.endswith(".parquet"))
    assert "derived/speakers.parquet" in tables and "derived/tone_frames.parquet" in tables
    for rel in tables:
        serial = store.read_table(session_id, rel)[0].drop(columns="session_id", errors="ignore")
        concurrent = concurrent_store.read_table(concurrent_id, rel)[0].drop(columns="session_id", errors="ignore")
        assert len(serial), rel
        pd.testing.assert_frame_equal(concurrent, serial, check_exact=True, obj=rel)


def test_a_failure_in_the_background_leaves_nothing_half_written(store, tmp_path, monkeypatch):
    session_id = import_media(store, make_media(tmp_path / "s.mp4", seconds=6.0), "Alex,Sam")

    def broken(s, p):
        raise RuntimeError("the voice work failed")

    stages = tuple(dataclasses.replace(stage, early=broken) if stage.name == "speakers" else stage
                   for stage in pipeline.STAGES)
    monkeypatch.setattr(pipeline, "STAGES", stages)
    with pytest.raises(RuntimeError, match="the voice work failed"):
        analyze(store, session_id)
    assert store.exists(session_id, "derived/faces.run.json")           # the stage before it finished
    for stage in ("speakers", "tone", "dynamics", "events"):
        assert not store.exists(session_id, f"derived/{stage}.run.json"), stage
    assert not store.exists(session_id, "derived/speakers.parquet")

    monkeypatch.undo()
    runs = {r["stage"]: r["this_run"] for r in analyze(store, session_id)}
    assert runs["faces"] == "skipped" and runs["speakers"] == runs["tone"] == runs["events"] == "ran"


def test_unchanged_stages_start_no_early_work(store, tmp_path, monkeypatch):
    session_id = import_media(store, make_media(tmp_path / "s.mp4", seconds=4.0), "Alex,Sam")
    analyze(store, session_id)

    def never(s, p):
        raise AssertionError("early work started for a stage that is skipped")

    monkeypatch.setattr(pipeline, "STAGES", tuple(dataclasses.replace(stage, early=never) if stage.early else stage
                                                  for stage in pipeline.STAGES))
    assert {r["this_run"] for r in analyze(store, session_id)} == {"skipped"}


def test_early_work_waits_for_its_stage_where_faces_take_every_core(store, tmp_path, monkeypatch):
    session_id = import_media(store, make_media(tmp_path / "s.mp4", seconds=6.0), "Alex,Sam")
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 2)
    params = Params()
    params.faces = dataclasses.replace(params.faces, chunk_s=3.0)     # two stretches: both cores
    records = {r["stage"]: r for r in analyze(store, session_id, params=params)}
    assert records["faces"]["status"] == records["speakers"]["status"] == "ok"
    assert all("early_seconds" not in r for r in records.values())
    one_stretch = import_media(store, make_media(tmp_path / "t.mp4", seconds=6.0), "Alex,Sam")
    records = {r["stage"]: r for r in analyze(store, one_stretch)}     # one stretch: a core is free
    assert "early_seconds" in records["speakers"] and "early_seconds" in records["tone"]
