"""The one RTTM reader and writer (analysis.core.rttm) and the exports built on it."""
from __future__ import annotations

import pandas as pd
import pytest
from pyannote.core import Annotation, Segment

from analysis.core.rttm import read_rttm, to_rttm
from analysis.export import export
from analysis.stages.speakers import pyannote_backend as pb

# dyadic times: start + duration is exact in binary, so the round trip is exact
TABLE = pd.DataFrame({
    "uri": ["s1"] * 4,
    "start_s": [0.5, 1.25, 1.25, 10.0],
    "end_s": [2.0, 1.875, 3.5, 12.125],
    "speaker": ["p1", "p2", "p3", "p1"],
})


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "s1.rttm"
    path.write_text(to_rttm(TABLE, "s1", label="speaker"))
    pd.testing.assert_frame_equal(read_rttm(path), TABLE, check_exact=True)


def test_format_is_byte_exact():
    segments = pd.DataFrame({"start_s": [3.0, 0.25], "end_s": [4.5004, 1.0], "participant_id": ["Sam Lee", "p1"],
                             "confidence": [0.5, 1.0]})
    assert to_rttm(segments, "abc") == (
        "SPEAKER abc 1 0.250 0.750 <NA> <NA> p1 <NA> <NA>\n"
        "SPEAKER abc 1 3.000 1.500 <NA> <NA> Sam_Lee <NA> <NA>\n")
    assert to_rttm(segments, "abc", confidence="confidence", sort=False) == (
        "SPEAKER abc 1 3.000 1.500 <NA> <NA> Sam_Lee 0.500 <NA>\n"
        "SPEAKER abc 1 0.250 0.750 <NA> <NA> p1 1.000 <NA>\n")
    assert to_rttm(segments.iloc[0:0], "abc") == ""


def test_same_lines_as_pyannote_on_ordinary_turns():
    """Where pyannote's writer applies (no empty or tied turns, no spaces, no confidence) the
    text is the same as ``Annotation.to_rttm``."""
    segments = pd.DataFrame({"start_s": [0.1, 2.345, 7.0], "end_s": [1.9, 4.0, 7.333], "participant_id": ["a", "b", "a"]})
    annotation = Annotation(uri="u")
    for i, r in enumerate(segments.itertuples()):
        annotation[Segment(r.start_s, r.end_s), i] = r.participant_id
    assert to_rttm(segments, "u") == annotation.to_rttm()


def test_reader_skips_other_lines_and_refuses_short_speaker_lines(tmp_path):
    path = tmp_path / "x.rttm"
    path.write_text("SPKR-INFO s1 1 <NA> <NA> <NA> unknown p1 <NA> <NA>\n\nSPEAKER s1 1 1.000 0.500 <NA> <NA> p1 <NA> <NA>\n")
    assert read_rttm(path).to_dict("records") == [{"uri": "s1", "start_s": 1.0, "end_s": 1.5, "speaker": "p1"}]
    path.write_text("SPEAKER s1 1 1.000 0.500\n")
    with pytest.raises(ValueError, match="8 fields"):
        read_rttm(path)


class _Store:
    """What ``speakers_rttm`` reads of a store: the speakers table and the participants."""

    def __init__(self, turns: pd.DataFrame, participants: list[dict]):
        self.turns, self.participants = turns, participants

    def read_table(self, session_id, name, columns=None):
        assert name == "derived/speakers.parquet"
        return self.turns, {}

    def manifest(self, session_id):
        return {"participants": self.participants}


def test_export_is_byte_exact():
    turns = pd.DataFrame({"start_s": [4.2, 0.0, 1.5], "end_s": [6.0, 1.75, 4.2], "participant_id": ["p2", "p1", "p3"],
                          "confidence": [0.9, 0.8, 0.7]})
    store = _Store(turns, [{"id": "p1", "name": "Alex Smith"}, {"id": "p2", "name": "Sam"}])
    assert export(store, "20260101-abc", "rttm") == (
        "SPEAKER 20260101-abc 1 0.000 1.750 <NA> <NA> Alex_Smith <NA> <NA>\n"
        "SPEAKER 20260101-abc 1 1.500 2.700 <NA> <NA> p3 <NA> <NA>\n"
        "SPEAKER 20260101-abc 1 4.200 1.800 <NA> <NA> Sam <NA> <NA>\n")


def test_pyannote_backend_file_has_confidence(tmp_path):
    turns = pd.DataFrame({"start_s": [0.5], "end_s": [1.0], "participant_id": ["p1"], "confidence": [1.0]})
    path = pb.write_rttm(turns, tmp_path / "t.rttm", uri="dev00")
    assert path.read_text() == "SPEAKER dev00 1 0.500 0.500 <NA> <NA> p1 1.000 <NA>\n"
