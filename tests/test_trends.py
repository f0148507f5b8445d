"""Trends across a case's sessions (known answers on hand-written artifacts), and the Sessions
page: cases, their sessions, analysis started in the background, the trend plots."""
from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from analysis.core import events as ev
from analysis.dashboard.sessions import trend_chart
from analysis.jobs import job_status
from analysis.trends import case_trends, session_measures
from capture.ingest import import_media
from conftest import TEST_PASSPHRASE, unlocked_app
from tests.media_factory import make_media


def write_analysis(store, session_id, events: list[dict], talk: dict, faces_of: list[str]) -> None:
    """Hand-written artifacts of an analysed session: events, per-person talk, faces seen."""
    rows = [{"session_id": session_id, "event_id": f"e{i}", "source": "test", "source_version": "1",
             "label": "", "value": None, "confidence": 0.9, "explanation": "", **e} for i, e in enumerate(events)]
    store.write_table(session_id, ev.EVENTS_TABLE, ev.conform(pd.DataFrame(rows), ev.EVENT_COLUMNS))
    store.write_table(session_id, "derived/participants.parquet", pd.DataFrame(
        [{"participant_id": pid, "talk_share": share, "longest_turn_s": longest} for pid, (share, longest) in talk.items()]))
    store.write_table(session_id, "derived/faces.parquet", pd.DataFrame(
        {"participant_id": faces_of, "t_s": [0.0] * len(faces_of), "detected": [True] * len(faces_of)}))


def interruption(pid, target, style, t):
    return {"kind": "interruption", "participant_id": pid, "target_participant_id": target, "start_s": t,
            "end_s": t, "outcome": "successful", "style": style}


def test_trends_per_person_across_sessions(store, tmp_path):
    case = store.cases.create("Alex & Sam", ["Alex", "Sam"])
    media = make_media(tmp_path / "a.mp4", seconds=6.0)
    first = import_media(store, media, "Alex,Sam", case_id=case.case_id)
    second = import_media(store, media, "Sam,Alex", case_id=case.case_id)    # they swapped seats
    hours = store.manifest(first)["duration_s"] / 3600
    # session 1: Alex (p1) interrupts Sam twice competitively, raises their voice 30 s; Sam smiles 3 times
    write_analysis(store, first, [
        interruption("p1", "p2", "competitive", 1.0), interruption("p1", "p2", "competitive", 2.0),
        {"kind": "raised_voice", "participant_id": "p1", "start_s": 0.0, "end_s": 30.0},
        *[{"kind": "expression", "participant_id": "p2", "expression": "smile", "start_s": t, "end_s": t + 1}
          for t in (1.0, 2.0, 3.0)]], {"p1": (0.7, 40.0), "p2": (0.3, 12.0)}, faces_of=["p2"])
    # session 2: Alex is p2 now; one cooperative interruption by Alex; Sam frowns once
    write_analysis(store, second, [
        interruption("p2", "p1", "cooperative", 1.0),
        {"kind": "expression", "participant_id": "p1", "expression": "frown", "start_s": 1.0, "end_s": 2.0}],
        {"p1": (0.55, 20.0), "p2": (0.45, 25.0)}, faces_of=["p1", "p2"])
    trends = case_trends(store, case.case_id)
    value = trends.set_index(["session_no", "person", "measure"]).value
    assert value[1, "Alex", "talk_share"] == 0.7 and value[2, "Alex", "talk_share"] == 0.45
    assert value[1, "Alex", "interruptions_competitive_per_h"] == pytest.approx(2 / hours)
    assert value[2, "Alex", "interruptions_competitive_per_h"] == 0
    assert value[2, "Alex", "interruptions_cooperative_per_h"] == pytest.approx(1 / hours)
    assert value[1, "Alex", "raised_voice_min"] == pytest.approx(0.5)
    assert value[1, "Sam", "positive_expressions_per_h"] == pytest.approx(3 / hours)
    assert value[2, "Sam", "negative_expressions_per_h"] == pytest.approx(1 / hours)
    assert math.isnan(value[1, "Alex", "positive_expressions_per_h"])      # face not analysed: missing, not 0
    assert value[2, "Sam", "longest_turn_s"] == 20.0
    assert list(trends.session_id.unique()) == [first, second]
    assert session_measures(store, import_media(store, media, "Kim")).empty   # not analysed
    # the page sends charts unchecked (draw_chart); every trend plot must pass Altair's schema check
    for measure in trends.measure.unique():
        chart = trend_chart(trends[trends.measure == measure])
        assert chart is None or chart.to_dict(validate=True)["mark"]["type"] == "line"


@pytest.mark.slow
def test_sessions_page_lists_cases_starts_analysis_and_draws_trends(tmp_path, monkeypatch):
    from capture.store import Store

    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    case = store.cases.create("Alex & Sam", ["Alex", "Sam"])
    monkeypatch.setenv("PLAYBACK_STORE", str(store.root))
    at = unlocked_app("Sessions")
    assert any("Alex & Sam" in s.value for s in at.subheader)
    # a new case from the page
    at.text_input(key="case_name").input("Kim, Lou & Max")
    at.text_input(key="case_people").input("Kim, Lou, Max")
    next(b for b in at.button if b.label == "Make case").click().run()
    assert [c.name for c in store.cases.all()] == ["Alex & Sam", "Kim, Lou & Max"]
    # import a recording into the first case: the case's people are its participants
    media = make_media(tmp_path / "s.mp4", seconds=6.0)
    at.text_input(key="import_path-0").input(str(media))
    at.selectbox(key="import_case-0").set_value(case.case_id)
    at.checkbox(key="import_ok-0").check()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception, at.exception
    (row,) = store.cases.sessions(case.case_id)
    assert [p["name"] for p in store.manifest(row.session_id)["participants"]] == ["Alex", "Sam"]
    # analysis in the background; the page shows it running, then analysed, then the trends
    at.button(key=f"analyse-{row.session_id}").click().run()
    deadline = time.time() + 300
    while (job_status(store.root, row.session_id) or {}).get("state") == "running" and time.time() < deadline:
        time.sleep(0.5)
    assert job_status(store.root, row.session_id)["state"] == "done"
    at.run()
    assert any("analysed" in m.value for m in at.markdown), [m.value for m in at.markdown]
    at.toggle(key=f"trends-{case.case_id}").set_value(True).run()
    assert len(at.get("vega_lite_chart")) >= 5, "no trend plots drawn"     # talk share, interruptions, ...
    assert any(m.value == "**Share of the talking**" for m in at.markdown)
