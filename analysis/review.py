"""What the review dashboard shows, as plain values (no Streamlit here).

:func:`load_review` reads a session's artifacts through the store; the app only lays them out.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.pipeline import EVENT_COLUMNS, run_json_path
from capture.store import Store

MOMENT_KINDS = ("interruption", "raised_voice", "expression", "silence", "no_audio")
KIND_TITLES = {
    "speech_turn": "Speech",
    "overlap": "Overlap",
    "backchannel": "Backchannel",
    "interruption": "Interruption",
    "raised_voice": "Raised voice",
    "expression": "Expression",
    "silence": "Long silence",
    "no_audio": "Speech not analysed",
}


@dataclass
class Review:
    session_id: str
    manifest: dict
    analysed: bool
    events: pd.DataFrame          # EVENT_COLUMNS + participant_name, target_name
    participants: pd.DataFrame    # per-person metrics with names
    matrix: pd.DataFrame          # who interrupts whom, by name (rows interrupter)
    thresholds: dict              # dynamics parameters
    speaker_backend: str
    face_coverage: dict           # name -> share of sampled frames with that face found

    @property
    def names(self) -> dict[str, str]:
        return {p["id"]: p["name"] for p in self.manifest["participants"]}

    @property
    def has_video(self) -> bool:
        return self.manifest["media"].get("video") is not None

    def moments(self) -> pd.DataFrame:
        """Events worth walking through, in time order."""
        return self.events[self.events.kind.isin(MOMENT_KINDS)].reset_index(drop=True)


def load_review(store: Store, session_id: str) -> Review:
    manifest = store.manifest(session_id)
    names = {p["id"]: p["name"] for p in manifest["participants"]}
    if not store.exists(session_id, "derived/events.parquet"):
        empty = pd.DataFrame(columns=EVENT_COLUMNS + ["participant_name", "target_name"])
        return Review(session_id, manifest, False, empty, pd.DataFrame(), pd.DataFrame(), {}, "", {})
    events, _ = store.read_table(session_id, "derived/events.parquet", EVENT_COLUMNS)
    events = events.assign(participant_name=events.participant_id.map(names),
                           target_name=events.target_participant_id.map(names))
    participants, meta = store.read_table(session_id, "derived/participants.parquet")
    participants["name"] = participants.participant_id.map(names)
    matrix, _ = store.read_table(session_id, "derived/matrix.parquet")
    matrix = matrix.set_index("interrupter")
    matrix.index = matrix.index.map(lambda pid: names.get(pid, pid))
    matrix.columns = [names.get(c, c) for c in matrix.columns]
    speakers_run = store.read_json(session_id, run_json_path("speakers"))
    faces, _ = store.read_table(session_id, "derived/faces.parquet")
    coverage = ({names.get(pid, pid): float(f.detected.mean()) for pid, f in faces.groupby("participant_id")}
                if len(faces) else {})
    return Review(session_id, manifest, True, events, participants, matrix, meta.get("params", {}),
                  speakers_run.get("backend", ""), coverage)


def timeline_rows(review: Review) -> pd.DataFrame:
    """One row per bar on the timeline: ``lane`` (a person), ``layer`` (speech, overlap,
    interruption, ...), ``start_s``, ``end_s``, ``label``."""
    ev = review.events[review.events.kind.isin(["speech_turn", "overlap", "interruption", "raised_voice",
                                                 "expression", "backchannel"])]
    rows = pd.DataFrame({
        "lane": ev.participant_name.fillna("everyone"),
        "layer": ev.kind.map(KIND_TITLES),
        "start_s": ev.start_s.astype(float),
        "end_s": ev.end_s.astype(float),
        "label": ev.label.fillna("").astype(str),
        "explanation": ev.explanation.fillna("").astype(str),
    })
    # an instant event (interruption onset) still needs a visible width
    rows["end_s"] = rows[["start_s", "end_s"]].max(axis=1).where(rows.end_s > rows.start_s + 0.2, rows.start_s + 0.2)
    return rows.reset_index(drop=True)


def format_clock(t_s: float) -> str:
    """Seconds -> ``m:ss`` for display only (data stays in float seconds)."""
    minutes, seconds = divmod(int(round(t_s)), 60)
    return f"{minutes}:{seconds:02d}"


# ----- the therapist's decisions about moments (confirm / dismiss, a note) -----------------
NOTES_FILE = "notes.json"
DECISIONS = ("confirmed", "dismissed")


def load_decisions(store: Store, session_id: str) -> dict[str, dict]:
    """``event_id -> {"decision": "confirmed" | "dismissed" | None, "note": str, "updated_utc"}``
    (kept in the session's encrypted ``notes.json``)."""
    if not store.exists(session_id, NOTES_FILE):
        return {}
    return store.read_json(session_id, NOTES_FILE).get("decisions", {})


def save_decision(store: Store, session_id: str, event_id: str, *, decision: str | None = None,
                  note: str | None = None) -> dict:
    """Record the therapist's decision and/or note about one moment; returns the updated entry.
    ``decision`` None leaves it as it was; ``note`` None leaves the note as it was."""
    from capture.store import utc_now

    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    data = store.read_json(session_id, NOTES_FILE) if store.exists(session_id, NOTES_FILE) else {}
    decisions = data.setdefault("decisions", {})
    entry = decisions.setdefault(event_id, {"decision": None, "note": ""})
    if decision is not None:
        entry["decision"] = decision
    if note is not None:
        entry["note"] = note
    entry["updated_utc"] = utc_now()
    store.write_json(session_id, NOTES_FILE, data)
    return entry
