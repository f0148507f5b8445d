"""Expression lanes of the analysed sample: per person and signal, at most the asked number of
points, the smile lane high in the scripted smiles, and a chart the review page can draw."""
from __future__ import annotations

import pytest

from analysis.dashboard.expressions_lane import expression_lane_chart
from analysis.review import expression_lanes
from analysis.stages.expressions import SIGNALS
from conftest import SAMPLE

pytestmark = pytest.mark.slow


def test_lanes_follow_the_scripted_smiles(sample_session):
    import pandas as pd

    store, session_id, _ = sample_session
    names = {"p1": "Alex", "p2": "Sam"}
    lanes = expression_lanes(store, session_id, names)
    assert set(lanes.name) == {"Alex", "Sam"} and set(lanes.signal) == set(SIGNALS)
    assert lanes.intensity.between(0, 1).all()
    truth = pd.read_csv(SAMPLE / "truth" / "events.csv")
    for smile in truth[(truth.kind == "expression") & (truth.label == "smile")].itertuples():
        mine = lanes[(lanes.name == smile.participant) & (lanes.signal == "smile")]
        inside = mine[mine.t_s.between(smile.start_s + 0.3, smile.end_s - 0.3)].intensity
        assert inside.median() > 0.6 and mine[~mine.t_s.between(smile.start_s - 1, smile.end_s + 1)].intensity.median() < 0.1
    few = expression_lanes(store, session_id, names, max_points=100)
    assert few.groupby(["name", "signal"]).size().max() <= 100
    # a bin keeps its strongest value: the smile peak survives the downsampling
    assert few[few.signal == "smile"].intensity.max() == pytest.approx(lanes[lanes.signal == "smile"].intensity.max())
    chart = expression_lane_chart(lanes, 10.0, (0.0, 60.0), ["Alex", "Sam"])
    assert chart is not None and chart.to_dict()["layer"]
    assert expression_lane_chart(lanes, 0.0, (0.0, 60.0), []) is None
