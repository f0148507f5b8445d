"""The cross-session naming score's ceiling: the best one-to-one naming of a diarization."""
from __future__ import annotations

import pandas as pd
import pytest

from analysis.evaluation.diarization import best_naming, named_accuracy


def test_best_naming_is_the_best_one_to_one_naming():
    ref = pd.DataFrame({"start_s": [0.0, 5.0, 8.0], "end_s": [4.0, 8.0, 10.0], "speaker": ["A", "B", "A"]})
    hyp = pd.DataFrame({"start_s": [0.0, 4.5], "end_s": [4.5, 10.0], "participant_id": ["x", "y"]})
    # x -> A (4 s of A), y -> B (3 s of B); A's last 2 s fall in y: 7 of 9 s
    assert best_naming(ref, hyp) == pytest.approx(7 / 9)
    assert named_accuracy(ref, hyp.assign(participant_id=["A", "B"])) == pytest.approx(7 / 9)
    assert named_accuracy(ref, hyp.assign(participant_id=["B", "A"])) < best_naming(ref, hyp)
