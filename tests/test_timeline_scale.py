"""The review page at the scale of a real session: 50 minutes, 6 people.

A synthetic :class:`analysis.review.Review` (no audio, no models) checks that the detail
timeline holds only its window and a bounded number of bars, that the overview covers the whole
session, that the filters drop lanes, that the heatmap counts are right and that every chart
serialises fast. :func:`synthetic_store_session` writes the same session into a store (a small
generated video and the derived tables ``load_review`` reads) for the page's render time.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import unlocked_app

DURATION_S = 3000.0
NAMES = ["Alexandra Montgomery", "Samira Okonkwo-Bennett", "Jo", "Christopher Wu", "Maria-Luisa Ferreira",
         "Dev Ramaswamy"]
# a known who-interrupts-whom matrix: KNOWN[a][b] = times person a came in while b was talking
KNOWN = [[0 if a == b else (a + 2 * b) % 5 + 1 for b in range(6)] for a in range(6)]


def synthetic_events(names: list[str] = NAMES, duration_s: float = DURATION_S, *, turn_s=(1.0, 8.0),
                     seed: int = 0) -> pd.DataFrame:
    """An events table (:data:`analysis.core.events.EVENT_COLUMNS` + participant_name,
    target_name) for ``names`` (ids p1, p2, ...): back-to-back speech turns of ``turn_s`` seconds
    (some overlapping the previous one), backchannels, the :data:`KNOWN` interruptions, tone
    passages, expressions and silences, over ``duration_s`` seconds."""
    from analysis.core import events as ev

    rng = np.random.default_rng(seed)
    pids = [f"p{i + 1}" for i in range(len(names))]
    rows = []

    def add(start, end, kind, who, target=None, **extra):
        rows.append(dict(start_s=float(start), end_s=float(end), kind=kind, participant_id=who,
                         target_participant_id=target, label=extra.pop("label", kind.replace("_", " ")),
                         confidence=0.8, explanation=f"{kind} at {start:.1f} s", **extra))

    t, cur = 0.0, 0
    while t < duration_s - turn_s[1]:
        length = rng.uniform(*turn_s)
        add(t, t + length, "speech_turn", pids[cur], value=length)
        if rng.random() < 0.3:                                  # someone else says "mm" meanwhile
            other = pids[(cur + 1 + rng.integers(len(pids) - 1)) % len(pids)]
            at = t + rng.uniform(0, length * 0.8)
            add(at, at + 0.6, "backchannel", other, pids[cur], value=0.6)
        nxt = (cur + 1 + int(rng.integers(len(pids) - 1))) % len(pids)
        step = rng.uniform(-0.4, 1.0)
        if step < 0:
            add(t + length + step, t + length, "overlap", pids[nxt], pids[cur], value=-step)
        t, cur = t + length + step, nxt
    for a, row in enumerate(KNOWN[:len(pids)]):
        for b, count in enumerate(row[:len(pids)]):
            for at in rng.uniform(5, duration_s - 5, count):
                add(at, at + 1.2, "interruption", pids[a], pids[b], value=1.2, label="successful, competitive",
                    outcome=str(rng.choice(["successful", "unsuccessful", "contested"])),
                    style=str(rng.choice(["competitive", "cooperative"])))
    for kind, count, length in (("raised_voice", 30, 6.0), ("flat_voice", 12, 8.0), ("speeding_up", 12, 5.0),
                                ("heated_exchange", 5, 25.0), ("silence", 6, 9.0)):
        for at in rng.uniform(0, duration_s - length, count):
            add(at, at + length, kind, str(rng.choice(pids)), value=1.0)
    for at in rng.uniform(0, duration_s - 3, 60):
        expression = str(rng.choice(["smile", "one_sided_smile", "frown"]))
        add(at, at + 2.0, "expression", str(rng.choice(pids)), value=0.5, label=expression, expression=expression)
    events = pd.DataFrame(rows).sort_values("start_s", ignore_index=True)
    events = events.assign(session_id="synthetic", event_id=[f"e{i:05d}" for i in range(len(events))],
                           source=events.kind, source_version="test")
    events = ev.conform(events, ev.EVENT_COLUMNS)
    by_id = dict(zip(pids, names))
    return events.assign(participant_name=events.participant_id.map(by_id),
                         target_name=events.target_participant_id.map(by_id))


def participants_table(events: pd.DataFrame, pids: list[str], names: list[str]) -> pd.DataFrame:
    """Per-person metrics (the columns the page reads) counted from ``events``."""
    turns = events[events.kind == "speech_turn"]
    lengths = turns.end_s - turns.start_s
    talk = lengths.groupby(turns.participant_id).sum().reindex(pids, fill_value=0.0)
    inter = events[events.kind == "interruption"]
    count = lambda frame, col: frame[col].value_counts().reindex(pids, fill_value=0)  # noqa: E731
    return pd.DataFrame({
        "participant_id": pids, "name": names, "talk_s": talk.values, "talk_share": (talk / talk.sum()).values,
        "floor_s": talk.values, "floor_share": (talk / talk.sum()).values,
        "turn_count": turns.participant_id.value_counts().reindex(pids, fill_value=0).values,
        "mean_turn_s": lengths.groupby(turns.participant_id).mean().reindex(pids).values,
        "longest_turn_s": lengths.groupby(turns.participant_id).max().reindex(pids).values,
        "interruptions_made": count(inter, "participant_id").values,
        "interruptions_received": count(inter, "target_participant_id").values,
        "successful_interruptions_made": 0, "unsuccessful_interruptions_made": 0,
        "backchannels_given": count(events[events.kind == "backchannel"], "participant_id").values,
        "overlap_s": 0.0, "mean_latency_s": np.nan})


def matrix_table(events: pd.DataFrame, pids: list[str]) -> pd.DataFrame:
    """Who interrupts whom by id (rows interrupter), every pair present."""
    inter = events[events.kind == "interruption"]
    m = pd.crosstab(inter.participant_id, inter.target_participant_id).reindex(index=pids, columns=pids, fill_value=0)
    m.index.name, m.columns.name = "interrupter", None
    return m


def arousal_table(events: pd.DataFrame) -> pd.DataFrame:
    """A vocal arousal point every second of each person's turns (``participant_id`` + the tone columns)."""
    rng = np.random.default_rng(1)
    rows = [(t.participant_id, float(s)) for t in events[events.kind == "speech_turn"].itertuples()
            for s in np.arange(np.ceil(t.start_s), t.end_s)]
    curve = pd.DataFrame(rows, columns=["participant_id", "t_s"])
    curve["loudness_delta_db"] = rng.normal(0, 3, len(curve))
    curve["pitch_delta_st"] = rng.normal(0, 1, len(curve))
    curve["arousal"] = np.clip(rng.normal(0.3, 0.3, len(curve)), -0.5, 1.6)
    return curve


def synthetic_review(names: list[str] = NAMES, duration_s: float = DURATION_S, **kw):
    """A :class:`analysis.review.Review` of a synthetic session (see :func:`synthetic_events`)."""
    from analysis.review import Review

    pids = [f"p{i + 1}" for i in range(len(names))]
    events = synthetic_events(names, duration_s, **kw)
    manifest = {"session_id": "synthetic", "duration_s": duration_s, "source_name": "synthetic.mp4",
                "participants": [{"id": p, "name": n} for p, n in zip(pids, names)],
                "media": {"video": "media/original.mp4", "original": "media/original.mp4"}}
    matrix = matrix_table(events, pids).rename(index=dict(zip(pids, names)), columns=dict(zip(pids, names)))
    curve = arousal_table(events)
    return Review("synthetic", manifest, True, events, participants_table(events, pids, names), matrix, [],
                  "synthetic", {}, curve.assign(name=curve.participant_id.map(dict(zip(pids, names)))))


def small_video(path: Path, duration_s: float, *, fps: int = 1, size=(320, 180)) -> Path:
    """A tiny H.264 video of ``duration_s`` seconds showing its own clock (no audio)."""
    import av
    from PIL import Image, ImageDraw

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"g": "5", "preset": "ultrafast"}
        for i in range(int(duration_s * fps)):
            image = Image.new("RGB", size, (40, 60, 90))
            ImageDraw.Draw(image).text((20, 70), f"{i // 60}:{i % 60:02d}", fill="white", font_size=40)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def synthetic_store_session(store, folder: Path, names: list[str] = NAMES, duration_s: float = DURATION_S) -> str:
    """A session in ``store`` as the review page reads it: a generated video imported for
    ``names``, then the synthetic events and the derived tables ``load_review`` reads."""
    from analysis.core import events as ev
    from capture.ingest import import_media

    session_id = import_media(store, small_video(folder / "synthetic.mp4", duration_s), ",".join(names))
    manifest = store.manifest(session_id)
    pids, names = [p["id"] for p in manifest["participants"]], [p["name"] for p in manifest["participants"]]
    review = synthetic_review(names, float(manifest["duration_s"]))
    assert [p["id"] for p in review.manifest["participants"]] == pids
    events = review.events.drop(columns=["participant_name", "target_name"]).assign(session_id=session_id)
    store.write_table(session_id, ev.EVENTS_TABLE, ev.conform(events, ev.EVENT_COLUMNS))
    store.write_table(session_id, "derived/participants.parquet", review.participants.drop(columns="name"))
    store.write_table(session_id, "derived/matrix.parquet", matrix_table(review.events, pids).reset_index())
    store.write_json(session_id, "derived/speakers.run.json", {"backend": "synthetic (test)", "params": {}})
    store.write_table(session_id, "derived/faces.parquet",
                      pd.DataFrame({"participant_id": pids, "t_s": 0.0, "detected": True}))
    store.write_table(session_id, "derived/arousal.parquet", review.arousal.drop(columns="name"))
    store.set_status(session_id, "analysed")
    return session_id


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
    assert len([b for b in at.button if b.key and b.key.startswith("jump-")]) == 25      # a page of moments
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
