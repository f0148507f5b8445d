"""The review page at the scale of a real session: 50 minutes, 6 people.

A synthetic :class:`analysis.review.Review` (no audio, no models) checks that the detail
timeline holds only its window and a bounded number of bars, that the overview covers the whole
session, that the filters drop lanes, that the heatmap counts are right and that every chart
serialises fast. :func:`synthetic_store_session` writes the same session into a store (a small
generated video and the derived tables ``load_review`` reads) for the page's render time.
"""
from __future__ import annotations

import time

import pandas as pd
import pytest

from analysis.dashboard.review import MOMENTS_PER_PAGE
from analysis.evaluation.synthetic_review import DURATION_S, KNOWN, NAMES, synthetic_review, synthetic_store_session
from conftest import unlocked_app


@pytest.fixture(scope="module")
def review():
    return synthetic_review()


def bars_layer(chart):
    """The detail timeline's bars (bands under them, the video position over them)."""
    return chart.layer[1]


def chart_rows(spec: dict) -> int:
    """Data rows a serialised chart carries (every dataset and inline value)."""
    return sum(len(values) for values in spec.get("datasets", {}).values())


def test_detail_holds_only_its_window_and_a_bounded_number_of_bars(review):
    from analysis.dashboard.review import LAYER_COLOURS, detail_rows, timeline_chart
    from analysis.review import DETAIL_MAX_ROWS, default_window_s, timeline_window, timeline_rows

    rows = timeline_rows(review)
    assert len(rows) > 500
    window = timeline_window(DURATION_S, default_window_s(DURATION_S), 1200.0)
    assert window == (1200.0, 1500.0)
    chart = timeline_chart(review, 1250.0, window)
    data = bars_layer(chart).data
    assert len(data) and ((data.end_s > window[0]) & (data.start_s < window[1])).all()
    inside = rows[(rows.end_s > window[0]) & (rows.start_s < window[1])]
    assert len(data) == len(inside) and data.n.eq(1).all()                  # 5 minutes: every bar, unmerged
    spec = chart.to_dict()
    assert chart_rows(spec) < len(rows) / 5
    # the whole session of a dense session (about 5000 short turns) is merged down to the bound
    dense = synthetic_review(turn_s=(0.1, 0.5))
    assert (dense.events.kind == "speech_turn").sum() > 4500
    whole = detail_rows(dense, (0.0, DURATION_S), list(dense.names.values()), list(LAYER_COLOURS))
    assert len(whole) <= DETAIL_MAX_ROWS
    assert whole.n.sum() == len(timeline_rows(dense))                      # every bar is in one drawn


def test_overview_covers_the_whole_session(review):
    from analysis.dashboard.review import LAYER_COLOURS, overview_chart
    from analysis.review import overview_density, overview_marks, timeline_rows

    rows = timeline_rows(review)
    density = overview_density(rows, DURATION_S)
    assert density.start_s.min() < 30 and density.end_s.max() > DURATION_S - 30
    assert set(density.lane) == set(NAMES) and density.speech.between(0, 1).all()
    assert len(density) == 300 * len(NAMES)                             # every bin can be clicked
    marks = overview_marks(rows)
    assert set(marks.layer) >= {"Interruption", "Raised voice", "Expression"}
    assert len(marks[marks.layer == "Interruption"]) == sum(map(sum, KNOWN))
    chart = overview_chart(review, rows, 1250.0, (1200.0, 1500.0), NAMES, list(LAYER_COLOURS))
    spec = chart.to_dict()
    domains = [layer["encoding"]["x"]["scale"]["domain"] for layer in spec["layer"] if "scale" in layer["encoding"]["x"]]
    assert domains and all(d == [0.0, DURATION_S] for d in domains)
    assert [p["name"] for p in spec["params"]] == ["overview", "overview_mark"]   # clicking it picks a time


def test_filters_drop_lanes_and_layers(review):
    from analysis.dashboard.review import LAYER_COLOURS, detail_rows, timeline_chart, timeline_lanes
    from analysis.review import timeline_rows

    rows = timeline_rows(review)
    every = timeline_lanes(review, rows, NAMES, list(LAYER_COLOURS))
    assert len(every) == 6 * 3                                             # a speech, events and face row each
    two = NAMES[:2]
    lanes = timeline_lanes(review, rows, two, ["Speech", "Interruption"])
    assert lanes == [f"{n} · {g}" for n in two for g in ("speech", "events")]   # no face rows, no one else
    window = (600.0, 900.0)
    data = detail_rows(review, window, two, ["Speech", "Interruption"], rows)
    assert set(data.lane) <= set(two) and set(data.layer) == {"Speech", "Interruption"}
    spec = timeline_chart(review, 0.0, window, two, ["Speech", "Interruption"]).to_dict()
    assert spec["layer"][1]["encoding"]["y"]["scale"]["domain"] == lanes
    # nobody or nothing chosen: empty charts, not errors
    from analysis.dashboard.review import overview_chart
    assert timeline_chart(review, 0.0, window, [], []).to_dict() and timeline_chart(review, 0.0, window, NAMES, [])
    assert overview_chart(review, rows, 0.0, window, [], list(LAYER_COLOURS)).to_dict()


def test_moments_list_filters_by_person():
    from analysis.dashboard.review import moments_shown

    moments = pd.DataFrame({"kind": ["interruption", "interruption", "silence", "smile"],
                            "participant_id": ["p1", "p2", None, "p3"],
                            "target_participant_id": ["p2", "p3", None, None]})
    assert list(moments_shown(moments, ["interruption", "silence", "smile"], ["p3"]).index) == [1, 2, 3]
    assert list(moments_shown(moments, ["interruption"], ["p1"]).index) == [0]


def test_heatmap_counts_who_interrupts_whom(review):
    from analysis.dashboard.review import interruption_heatmap
    from analysis.review import interruption_cells

    cells = interruption_cells(review.matrix)
    assert len(cells) == 6 * 5
    for a, b in ((0, 1), (3, 2), (5, 4)):
        row = cells[(cells.interrupter == NAMES[a]) & (cells.interrupted == NAMES[b])]
        assert row["count"].tolist() == [KNOWN[a][b]]
    assert cells["count"].sum() == sum(map(sum, KNOWN))
    spec = interruption_heatmap(review).to_dict()
    assert [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
            for layer in spec["layer"]] == ["rect", "rect", "text"]


def test_every_chart_serialises_fast(review):
    from analysis.dashboard.review import (LAYER_COLOURS, arousal_chart, interruption_heatmap, overview_chart,
                                           talk_share_chart, timeline_chart, turn_length_chart)
    from analysis.review import timeline_rows, turn_length_summary

    summary = turn_length_summary(review)
    assert list(summary.name) == NAMES and (summary.q1_s <= summary.median_s).all()
    assert (summary.median_s <= summary.q3_s).all() and (summary.high_s <= summary.longest_s).all()
    started = time.perf_counter()
    rows = timeline_rows(review)
    window = (1200.0, 1500.0)
    specs = [timeline_chart(review, 1250.0, window, rows=rows).to_dict(),
             overview_chart(review, rows, 1250.0, window, NAMES, list(LAYER_COLOURS)).to_dict(),
             arousal_chart(review, 1250.0, window).to_dict(), talk_share_chart(review).to_dict(),
             turn_length_chart(review).to_dict(), interruption_heatmap(review).to_dict()]
    elapsed = time.perf_counter() - started
    print(f"\nsix charts built and serialised in {elapsed * 1000:.0f} ms, "
          f"{sum(map(chart_rows, specs))} data rows in all (timeline rows in the session: {len(rows)})")
    assert elapsed < 2.0
    assert sum(map(chart_rows, specs)) < 5000


@pytest.fixture(scope="module")
def synthetic_app(tmp_path_factory):
    """The dashboard (AppTest) unlocked on a store holding the 50-minute, 6-person session."""
    import os


    from capture.store import Store

    folder = tmp_path_factory.mktemp("scale")
    store = Store(folder / "store").unlock()
    session_id = synthetic_store_session(store, folder)
    old = os.environ.get("PLAYBACK_STORE")
    os.environ["PLAYBACK_STORE"] = str(store.root)
    try:
        yield unlocked_app(), session_id
    finally:
        if old is None:
            os.environ.pop("PLAYBACK_STORE", None)
        else:
            os.environ["PLAYBACK_STORE"] = old


@pytest.mark.slow
def test_the_page_at_50_minutes_and_6_people(synthetic_app):
    at, session_id = synthetic_app
    assert not at.exception, at.exception
    assert at.title[0].value == f"Session {session_id}"
    assert {m.label for m in at.metric} == set(NAMES)
    started = time.perf_counter()
    at.run()
    print(f"\nreview page rerun (AppTest, 50 min, 6 people): {time.perf_counter() - started:.2f} s")
    assert len([b for b in at.button if b.key and b.key.startswith("jump-")]) == MOMENTS_PER_PAGE      # a page of moments
    # a moment on a later page, far from the window: playing it moves the window there
    pages = next(s for s in at.selectbox if s.key and s.key.startswith(f"moment_page-{session_id}"))
    pages.set_value(100).run()
    jump = [b for b in at.button if b.key and b.key.startswith("jump-")][0]
    jump.click().run()
    assert not at.exception, at.exception
    position = at.session_state.position_s
    start = at.session_state[f"timeline_start-{session_id}"]
    assert position > 600 and start <= position < start + 300
    assert pages.key and at.selectbox(key=pages.key).value == 100        # the list stays on the video's page
    # fewer people: their lanes go
    at.multiselect(key=f"timeline_people-{session_id}").set_value(NAMES[:2]).run()
    assert not at.exception, at.exception
