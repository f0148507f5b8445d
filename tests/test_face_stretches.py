"""The faces stage in stretches on every core: the same sampled frames as one pass, the same
people found, features within tracking noise (tracking restarts at each stretch)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.pipeline import Params, analyze
from analysis.stages.faces import BLENDSHAPES, FaceParams, chunks
from capture.ingest import import_media
from conftest import SAMPLE

pytestmark = pytest.mark.slow


def test_stretches_cover_the_session_on_the_sampling_grid():
    assert chunks(84.0, FaceParams(chunk_s=30.0)) == [(0.0, 30.0), (30.0, 60.0), (60.0, None)]
    assert chunks(84.0, FaceParams()) == [(0.0, None)]           # the default: one pass up to 5 minutes
    assert chunks(600.0, FaceParams()) == [(0.0, 300.0), (300.0, None)]


def test_faces_in_three_stretches_equal_one_pass(sample_session, store):
    serial_store, serial_id, _ = sample_session
    session_id = import_media(store, SAMPLE / "session.mp4", "Alex,Sam")
    params = Params()
    params.faces = dataclasses.replace(params.faces, chunk_s=30.0)
    records = analyze(store, session_id, params=params)
    assert next(r for r in records if r["stage"] == "faces")["status"] == "ok"
    one, _ = serial_store.read_table(serial_id, "derived/faces.parquet")
    three, _ = store.read_table(session_id, "derived/faces.parquet")
    assert list(three.t_s) == list(one.t_s) and list(three.participant_id) == list(one.participant_id)
    assert (three.detected == one.detected).mean() > 0.99
    both = one.detected & three.detected
    diff = np.abs(three.loc[both, BLENDSHAPES].to_numpy() - one.loc[both, BLENDSHAPES].to_numpy())
    assert diff.mean() < 0.01 and np.abs(three.face_x[both] - one.face_x[both]).max() < 0.02
