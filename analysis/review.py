"""What the review dashboard shows, as plain values (no Streamlit here).

:func:`load_review` reads a session's artifacts through the store; the app only lays them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.core import events as ev
from analysis.core.params import UNITS, ParamDoc, describe_recorded
from analysis.pipeline import STAGES, Params, recorded_groups, run_json_path
from analysis.stages import tone
from capture.store import Store, utc_now

MOMENT_KINDS = ev.MOMENT_KINDS
KIND_TITLES = {kind: spec.title for kind, spec in ev.KINDS.items()}
# What each stage's parameters are called on the page.
STAGE_TITLES = {"faces": "Faces", "speakers": "Who spoke when", "tone": "Tone of voice",
                "dynamics": "Turns and interruptions", "expressions": "Expressions", "events": "Moments"}


@dataclass(frozen=True)
class Threshold:
    """A parameter that shaped this session's results, as the run recorded it: the stage it
    belongs to, its documented meaning and its unit."""

    stage: str
    doc: ParamDoc


@dataclass
class Review:
    session_id: str
    manifest: dict
    analysed: bool
    events: pd.DataFrame          # analysis.core.events.EVENT_COLUMNS + participant_name, target_name
    participants: pd.DataFrame    # per-person metrics with names
    matrix: pd.DataFrame          # who interrupts whom, by name (rows interrupter)
    thresholds: list[Threshold]   # every stage's recorded parameters, with meaning and unit
    speaker_backend: str
    face_coverage: dict           # name -> share of sampled frames with that face found
    # tone.AROUSAL_COLUMNS + name: each person's vocal arousal over time
    arousal: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=tone.AROUSAL_COLUMNS + ["name"]))

    @property
    def names(self) -> dict[str, str]:
        return {p["id"]: p["name"] for p in self.manifest["participants"]}

    @property
    def has_video(self) -> bool:
        return self.manifest["media"].get("video") is not None

    def moments(self) -> pd.DataFrame:
        """Events worth walking through, in time order."""
        return self.events[self.events.kind.isin(MOMENT_KINDS)].reset_index(drop=True)


def recorded_thresholds(store: Store, session_id: str) -> list[Threshold]:
    """Every parameter of every stage as its last run recorded it (``derived/<stage>.run.json``),
    each once (a parameter set two stages share is listed with the first), with the meaning and
    unit its class documents; the speaker backend the run did not use is left out."""
    classes = {name: type(value) for name, value in vars(Params()).items()}
    shown: set[str] = set()
    out = []
    for stage in STAGES:
        if not store.exists(session_id, run_json_path(stage.name)):
            continue
        run = store.read_json(session_id, run_json_path(stage.name))
        recorded = run.get("params", {})
        groups = recorded_groups(stage, recorded) if isinstance(recorded, dict) else {}
        for group, values in groups.items():
            if group in shown or group not in classes or not isinstance(values, dict) \
                    or group == _unused_speaker_backend(run):
                continue
            shown.add(group)
            out.extend(Threshold(stage.name, doc) for doc in describe_recorded(classes[group], values, f"{group}."))
    return out


def _unused_speaker_backend(run: dict) -> str | None:
    """The speaker parameters a speakers run recorded but did not use: the single-microphone
    ones (``diarization``) for a multi-track session, the multi-track ones otherwise."""
    backend = run.get("backend")
    if not isinstance(backend, str):
        return None
    return "diarization" if backend.startswith("multi-track") else "multitrack"


def load_review(store: Store, session_id: str) -> Review:
    manifest = store.manifest(session_id)
    names = {p["id"]: p["name"] for p in manifest["participants"]}
    if not store.exists(session_id, ev.EVENTS_TABLE):
        empty = ev.empty(ev.EVENT_COLUMNS + ["participant_name", "target_name"])
        return Review(session_id, manifest, False, empty, pd.DataFrame(), pd.DataFrame(), [], "", {})
    events = ev.read(store, session_id)
    events = events.assign(participant_name=events.participant_id.map(names),
                           target_name=events.target_participant_id.map(names))
    participants, _ = store.read_table(session_id, "derived/participants.parquet")
    participants["name"] = participants.participant_id.map(names)
    matrix, _ = store.read_table(session_id, "derived/matrix.parquet")
    matrix = matrix.set_index("interrupter")
    matrix.index = matrix.index.map(lambda pid: names.get(pid, pid))
    matrix.columns = [names.get(c, c) for c in matrix.columns]
    speakers_run = store.read_json(session_id, run_json_path("speakers"))
    faces, _ = store.read_table(session_id, "derived/faces.parquet")
    coverage = ({names.get(pid, pid): float(f.detected.mean()) for pid, f in faces.groupby("participant_id")}
                if len(faces) else {})
    return Review(session_id, manifest, True, events, participants, matrix, recorded_thresholds(store, session_id),
                  speakers_run.get("backend", ""), coverage, vocal_arousal(store, session_id, names))


def vocal_arousal(store: Store, session_id: str, names: dict[str, str]) -> pd.DataFrame:
    """Each named person's arousal curve (``derived/arousal.parquet``,
    :func:`analysis.stages.tone.arousal_curve`) with their display ``name``; only people in
    ``names`` (unattributed speech has no curve)."""
    if not store.exists(session_id, "derived/arousal.parquet"):
        return pd.DataFrame(columns=tone.AROUSAL_COLUMNS + ["name"])
    curve, _ = store.read_table(session_id, "derived/arousal.parquet")
    curve = curve[curve.participant_id.isin(names)]
    return curve.assign(name=curve.participant_id.map(names).astype(object))


def thresholds_table(review: Review) -> pd.DataFrame:
    """The thresholds as the page lists them: ``stage, setting, value, meaning, recorded as``
    (the setting in words without its unit, the value with it, and the name the run recorded)."""
    rows = []
    for t in review.thresholds:
        field_name = t.doc.name.rsplit(".", 1)[-1]
        suffix = next((s for s, unit in UNITS if unit == t.doc.unit and field_name.endswith(s)), "")
        words = field_name[: len(field_name) - len(suffix)] if suffix else field_name
        value = f"{t.doc.value} {t.doc.unit}" if t.doc.unit in ("s", "dB", "Hz", "semitones", "frames") else \
            f"{t.doc.value}" + (f" ({t.doc.unit})" if t.doc.unit else "")
        rows.append({"stage": STAGE_TITLES.get(t.stage, t.stage), "setting": words.replace("_", " "),
                     "value": value, "meaning": t.doc.meaning, "recorded as": t.doc.name})
    return pd.DataFrame(rows, columns=["stage", "setting", "value", "meaning", "recorded as"])


def timeline_rows(review: Review) -> pd.DataFrame:
    """One row per bar on the timeline: ``lane`` (a person), ``layer`` (speech, overlap,
    interruption, ...), ``start_s``, ``end_s``, ``label``."""
    ev_rows = review.events[review.events.kind.isin(ev.TIMELINE_KINDS)]
    rows = pd.DataFrame({
        "lane": ev_rows.participant_name.fillna("everyone"),
        "layer": ev_rows.kind.map(KIND_TITLES),
        "start_s": ev_rows.start_s.astype(float),
        "end_s": ev_rows.end_s.astype(float),
        "label": ev_rows.label.fillna("").astype(str),
        "explanation": ev_rows.explanation.fillna("").astype(str),
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
