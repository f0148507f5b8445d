"""Trends for a case: the same few measures per person, session after session, so that a couple
or a group can see change over weeks. Plain values (no Streamlit here).

People are matched across sessions by their name in each session's participant list. A measure
a session could not make for a person (no consent to analyse their voice or face, not present,
not analysed) is missing, never zero.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core import events as ev
from capture.store import Store

# What each measure is called on the page, and its unit (per person and session).
MEASURES = {
    "talk_share": ("Share of the talking", "share"),
    "interruptions_per_h": ("Began speaking while someone was talking (per hour, all interruptions)", "per hour"),
    "interruptions_competitive_per_h": ("Interruptions that took the floor from someone (per hour)", "per hour"),
    "interruptions_cooperative_per_h": ("Interruptions that joined in with someone (per hour)", "per hour"),
    "raised_voice_min": ("Time with a raised voice (minutes)", "minutes"),
    "positive_expressions_per_h": ("Smiles (per hour)", "per hour"),
    "negative_expressions_per_h": ("Brows down, one-sided smiles, eyes rolled up, nose or lip raised (per hour)",
                                   "per hour"),
    "longest_turn_s": ("Longest time speaking without a break (seconds)", "s"),
}
# Expressions counted as positive or negative moments (others are not counted either way).
POSITIVE_EXPRESSIONS = ("smile",)
NEGATIVE_EXPRESSIONS = ("frown", "one_sided_smile", "eye_roll", "disgust_like")   # sadness is not counted against anyone
TREND_COLUMNS = ["session_id", "session_no", "date", "person", "measure", "value"]


def session_measures(store: Store, session_id: str) -> pd.DataFrame:
    """One row per person and measure of :data:`MEASURES` for an analysed session
    (``person, measure, value``); empty before analysis."""
    if not store.exists(session_id, ev.EVENTS_TABLE):
        return pd.DataFrame(columns=["person", "measure", "value"])
    manifest = store.manifest(session_id)
    names = {p["id"]: p["name"] for p in manifest["participants"]}
    hours = max(float(manifest.get("duration_s") or 0.0), 1.0) / 3600.0
    events = ev.read(store, session_id)
    participants, _ = store.read_table(session_id, "derived/participants.parquet")
    measured = participants.set_index("participant_id")
    faces_seen = _faces_analysed(store, session_id)
    rows = []
    for pid, name in names.items():
        mine = events[events.participant_id == pid]
        interruptions = mine[mine.kind == "interruption"]
        expressions = mine[mine.kind == "expression"]
        raised = mine[mine.kind == "raised_voice"]
        voice = pid in measured.index
        face = pid in faces_seen
        values = {
            "talk_share": measured.talk_share.get(pid, np.nan) if voice else np.nan,
            "interruptions_per_h": len(interruptions) / hours if voice else np.nan,
            "interruptions_competitive_per_h": (interruptions["style"] == "competitive").sum() / hours if voice else np.nan,
            "interruptions_cooperative_per_h": (interruptions["style"] == "cooperative").sum() / hours if voice else np.nan,
            "raised_voice_min": float((raised.end_s - raised.start_s).sum()) / 60.0 if voice else np.nan,
            "positive_expressions_per_h": expressions["expression"].isin(POSITIVE_EXPRESSIONS).sum() / hours
            if face else np.nan,
            "negative_expressions_per_h": expressions["expression"].isin(NEGATIVE_EXPRESSIONS).sum() / hours
            if face else np.nan,
            "longest_turn_s": measured.longest_turn_s.get(pid, np.nan) if voice else np.nan,
        }
        rows.extend({"person": name, "measure": m, "value": float(v)} for m, v in values.items())
    return pd.DataFrame(rows, columns=["person", "measure", "value"])


def _faces_analysed(store: Store, session_id: str) -> set[str]:
    """Participants whose face was analysed (consented and seen in at least one sampled frame)."""
    if not store.exists(session_id, "derived/faces.parquet"):
        return set()
    faces, _ = store.read_table(session_id, "derived/faces.parquet", columns=["participant_id", "detected"])
    return set(faces.participant_id[faces.detected.astype(bool)])


def case_trends(store: Store, case_id: str, measures_of=None) -> pd.DataFrame:
    """:data:`TREND_COLUMNS` over the case's analysed sessions, oldest first: ``session_no``
    counts from 1, ``date`` is the session's creation date (ISO). ``measures_of(session_id)``
    gives one session's measures (default :func:`session_measures`; a page passes one that
    keeps them between reruns)."""
    measures_of = measures_of or (lambda session_id: session_measures(store, session_id))
    frames = []
    analysed = [r for r in store.cases.sessions(case_id) if store.exists(r.session_id, ev.EVENTS_TABLE)]
    for number, row in enumerate(analysed, start=1):
        measures = measures_of(row.session_id)
        frames.append(measures.assign(session_id=row.session_id, session_no=number, date=row.created_utc[:10]))
    if not frames:
        return pd.DataFrame(columns=TREND_COLUMNS)
    return pd.concat(frames, ignore_index=True)[TREND_COLUMNS]
