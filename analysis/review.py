"""What the review dashboard shows, as plain values (no Streamlit here).

:func:`load_review` reads a session's artifacts through the store; the app only lays them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.core import events as ev
from analysis.core.params import UNITS, ParamDoc, describe_recorded
from analysis.pipeline import STAGES, Params, recorded_groups, run_json_path
from analysis.stages import expressions, tone
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


BOX_COLUMNS = ["participant_id", "t_s", "x", "y", "w"]
BOX_RATE_HZ = 5.0        # face boxes kept per second and person for the player's overlay


def face_boxes(faces: pd.DataFrame, *, rate_hz: float = BOX_RATE_HZ) -> pd.DataFrame:
    """Where each person's face was found (the faces table): ``participant_id, t_s`` (s) and the
    face's centre ``x, y`` and width ``w`` as shares of the frame, at most ``rate_hz`` samples a
    second and person (the first of each slot); frames without their face are left out."""
    if faces.empty or "face_x" not in faces:
        return pd.DataFrame(columns=BOX_COLUMNS)
    seen = faces[faces.detected.astype(bool)]
    seen = seen.assign(slot=np.floor(seen.t_s.to_numpy(float) * rate_hz).astype(np.int64))
    kept = seen.sort_values(["participant_id", "t_s"]).drop_duplicates(["participant_id", "slot"])
    return kept.rename(columns={"face_x": "x", "face_y": "y", "face_w": "w"})[BOX_COLUMNS].reset_index(drop=True)


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

    def moments(self, added: list[dict] | None = None) -> pd.DataFrame:
        """Events worth walking through, in time order, with the moments the therapist
        ``added`` (:func:`load_added`; column ``added`` True, explanation naming the people)."""
        tool = self.events[self.events.kind.isin(MOMENT_KINDS)].assign(added=False)
        rows = [{"event_id": a["id"], "start_s": a["start_s"], "end_s": a["end_s"], "kind": a["kind"],
                 "participant_id": (a["participant_ids"] or [None])[0], "added": True, "confidence": np.nan,
                 "explanation": "You marked this moment" + (
                     f" ({ev.names_list([self.names.get(p, p) for p in a['participant_ids']])})"
                     if a["participant_ids"] else "") + "."} for a in (added or [])]
        if not rows:
            return tool.reset_index(drop=True)
        return pd.concat([tool, pd.DataFrame(rows)], ignore_index=True).sort_values("start_s", ignore_index=True)


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
    faces, _ = store.read_table(session_id, "derived/faces.parquet", columns=["participant_id", "detected"])
    coverage = ({names.get(pid, pid): float(detected.mean()) for pid, detected in faces.groupby("participant_id").detected}
                if len(faces) else {})
    return Review(session_id, manifest, True, events, participants, matrix, recorded_thresholds(store, session_id),
                  speakers_run.get("backend", ""), coverage, vocal_arousal(store, session_id, names))


def load_face_boxes(store: Store, session_id: str) -> pd.DataFrame:
    """Where each person's face was found in the session's video (:func:`face_boxes`, BOX_COLUMNS);
    read only when the player's overlay is switched on (a 50-minute faces table is a few tenths
    of a second to decode)."""
    if not store.exists(session_id, "derived/faces.parquet"):
        return pd.DataFrame(columns=BOX_COLUMNS)
    faces, _ = store.read_table(session_id, "derived/faces.parquet",
                                columns=["participant_id", "t_s", "detected", "face_x", "face_y", "face_w"])
    return face_boxes(faces)


def vocal_arousal(store: Store, session_id: str, names: dict[str, str]) -> pd.DataFrame:
    """Each named person's arousal curve (``derived/arousal.parquet``,
    :func:`analysis.stages.tone.arousal_curve`) with their display ``name``; only people in
    ``names`` (unattributed speech has no curve)."""
    if not store.exists(session_id, "derived/arousal.parquet"):
        return pd.DataFrame(columns=tone.AROUSAL_COLUMNS + ["name"])
    curve, _ = store.read_table(session_id, "derived/arousal.parquet")
    curve = curve[curve.participant_id.isin(names)]
    return curve.assign(name=curve.participant_id.map(names).astype(object))


LANE_MAX_POINTS = 2000      # at most this many points per person and signal in an expression lane
LANE_COLUMNS = ["name", "signal", "t_s", "intensity"]


def expression_lanes(store: Store, session_id: str, names: dict[str, str], *,
                     max_points: int = LANE_MAX_POINTS) -> pd.DataFrame:
    """Each named person's expression signals over time, for a chart: ``name, signal, t_s,
    intensity`` (0-1 above their own neutral face, :data:`analysis.stages.expressions.SIGNALS`),
    at most ``max_points`` points per person and signal: beyond that, equal time bins keep their
    strongest value (at the bin's first time, s); bins without a face are left out (missing, not
    neutral). Empty before analysis or without face analysis."""
    rel = "derived/expression_signals.parquet"
    if not store.exists(session_id, rel):
        return pd.DataFrame(columns=LANE_COLUMNS)
    signals, _ = store.read_table(session_id, rel)
    signals = signals[signals.participant_id.isin(names)]
    if signals.empty:
        return pd.DataFrame(columns=LANE_COLUMNS)
    long = signals.melt(id_vars=["participant_id", "t_s"], value_vars=list(expressions.SIGNALS),
                        var_name="signal", value_name="intensity").dropna(subset=["intensity"])
    span = float(signals.t_s.max() - signals.t_s.min()) or 1.0
    bin_s = span / max_points
    long["bin"] = ((long.t_s - signals.t_s.min()) / bin_s).astype(int).clip(upper=max_points - 1)
    lanes = long.groupby(["participant_id", "signal", "bin"], sort=False).agg(
        t_s=("t_s", "first"), intensity=("intensity", "max")).reset_index()
    lanes["name"] = lanes.participant_id.map(names).astype(object)
    return lanes[LANE_COLUMNS].sort_values(["name", "signal", "t_s"], ignore_index=True)


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


def parse_clock(text: str) -> float:
    """``m:ss``, ``h:mm:ss`` or plain seconds (decimals allowed: ``1:02.5``) -> seconds; a
    ValueError in words for anything else."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"write a time as minutes:seconds, e.g. 12:05 (got {text.strip()!r})") from None
    if not all(np.isfinite(values)) or any(v < 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise ValueError(f"write a time as minutes:seconds, e.g. 12:05 (got {text.strip()!r})")
    seconds = 0.0
    for value in values:
        seconds = seconds * 60 + value
    return seconds


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


# ----- moments the tool missed, and how often the tool is right for this therapist ---------
def add_moment(store: Store, session_id: str, *, start_s: float, end_s: float, kind: str,
               participant_ids: list[str], note: str = "") -> str:
    """Record a moment the tool missed, marked by the therapist (in the session's encrypted
    ``notes.json``, list ``added``): ``start_s``/``end_s`` (s), a moment ``kind`` and the people
    it shows. Returns its id (``added-001``...)."""
    if kind not in MOMENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(MOMENT_KINDS)}, not {kind!r}")
    if not end_s > start_s >= 0:
        raise ValueError("a moment needs an end after its start")
    duration = float(store.manifest(session_id).get("duration_s") or 0.0)
    if duration and end_s > duration + 0.5:
        raise ValueError(f"the session is only {format_clock(duration)} long")
    data = store.read_json(session_id, NOTES_FILE) if store.exists(session_id, NOTES_FILE) else {}
    added = data.setdefault("added", [])
    moment_id = f"added-{len(added) + 1:03d}"
    added.append({"id": moment_id, "start_s": float(start_s), "end_s": float(end_s), "kind": kind,
                  "participant_ids": list(participant_ids), "note": note, "created_utc": utc_now()})
    store.write_json(session_id, NOTES_FILE, data)
    return moment_id


def load_added(store: Store, session_id: str) -> list[dict]:
    """The moments the therapist added to ``session_id`` (see :func:`add_moment`)."""
    if not store.exists(session_id, NOTES_FILE):
        return []
    return store.read_json(session_id, NOTES_FILE).get("added", [])


AGREEMENT_COLUMNS = ["kind", "moments", "confirmed", "dismissed", "not_reviewed", "added", "share_confirmed",
                     "kappa", "slots"]


def _covered_slots(intervals: list[tuple[float, float]], n: int, slot_s: float) -> np.ndarray:
    """Which of ``n`` slots of ``slot_s`` seconds any ``(start_s, end_s)`` interval touches."""
    out = np.zeros(n, bool)
    for start, end in intervals:
        out[int(start // slot_s): max(int(np.ceil(end / slot_s)), int(start // slot_s) + 1)] = True
    return out


def agreement(sessions: list[tuple[pd.DataFrame, dict, list[dict], float]], *, slot_s: float = 1.0) -> pd.DataFrame:
    """How far the therapist and the tool agree, per moment kind, over ``sessions`` given as
    ``(events, decisions, added, duration_s)``: the tool's moments and how many were confirmed,
    dismissed or not yet reviewed, the moments the therapist added (the tool missed them), the
    share confirmed of those reviewed, and Cohen's kappa (scikit-learn) between tool and
    therapist over ``slot_s`` time slots (the tool says a slot holds that kind when one of its
    moments touches it; the therapist when a confirmed or added moment does; slots touched by a
    moment not yet reviewed are left out). Kappa is NaN while one side never varies."""
    from sklearn.metrics import cohen_kappa_score

    rows = []
    for kind in MOMENT_KINDS:
        counts = dict(moments=0, confirmed=0, dismissed=0, not_reviewed=0, added=0)
        tool_slots, therapist_slots = [], []
        for events, decisions, added, duration_s in sessions:
            mine = events[events.kind == kind]
            state = [decisions.get(e, {}).get("decision") for e in mine.event_id]
            spans = list(zip(mine.start_s.astype(float), mine.end_s.astype(float)))
            extra = [(a["start_s"], a["end_s"]) for a in added if a["kind"] == kind]
            counts["moments"] += len(mine)
            counts["confirmed"] += state.count("confirmed")
            counts["dismissed"] += state.count("dismissed")
            counts["not_reviewed"] += state.count(None)
            counts["added"] += len(extra)
            n = int(np.ceil(duration_s / slot_s))
            tool = _covered_slots(spans, n, slot_s)
            therapist = _covered_slots([s for s, d in zip(spans, state) if d == "confirmed"] + extra, n, slot_s)
            unknown = _covered_slots([s for s, d in zip(spans, state) if d is None], n, slot_s)
            tool_slots.append(tool[~unknown])
            therapist_slots.append(therapist[~unknown])
        tool, therapist = np.concatenate(tool_slots or [[]]), np.concatenate(therapist_slots or [[]])
        varies = len(tool) and len(set(tool)) + len(set(therapist)) > 2
        reviewed = counts["confirmed"] + counts["dismissed"]
        rows.append(dict(kind=kind, **counts,
                         share_confirmed=counts["confirmed"] / reviewed if reviewed else np.nan,
                         kappa=float(cohen_kappa_score(tool, therapist)) if varies else np.nan, slots=len(tool)))
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def session_agreement_inputs(store: Store, session_id: str) -> tuple[pd.DataFrame, dict, list[dict], float] | None:
    """``(events, decisions, added, duration_s)`` of an analysed session, for :func:`agreement`;
    None before analysis."""
    if not store.exists(session_id, ev.EVENTS_TABLE):
        return None
    return (ev.read(store, session_id), load_decisions(store, session_id), load_added(store, session_id),
            float(store.manifest(session_id).get("duration_s") or 0.0))


# ----- the walkthrough with clients: picked moments, each person's veto ---------------------
# What the clients hear before a moment: plain, non-judging words (no scores, no jargon).
INTROS = {
    "interruption": "{name} began speaking while {target} was still talking.",
    "raised_voice": "{name}'s voice grew louder and higher here.",
    "heated_exchange": "{people} were speaking with more energy than usual here, taking turns quickly.",
    "flat_voice": "{name}'s voice became quieter and flatter here.",
    "speeding_up": "{name} began speaking faster than usual here.",
    "silence": "A pause in the conversation.",
    "smile": "{name} smiled here.",
    "one_sided_smile": "One corner of {name}'s mouth rose here.",
    "frown": "{name}'s brows lowered here.",
    "sadness_like": "The inner ends of {name}'s brows rose and the corners of the mouth went down here.",
    "surprise": "{name}'s brows rose and eyes opened wide here.",
    "disgust_like": "{name}'s nose wrinkled or upper lip rose here.",
    "eye_roll": "{name} looked upward here.",
    "looking_away": "{name} looked away here.",
    "nodding": "{name} nodded here.",
    # face_moment, by its label: the face and who was speaking, still without a reading of it
    "one_sided_smile_while_partner_speaks": "One corner of {name}'s mouth rose while {target} was speaking.",
    "eye_roll_after_turn": "{name} looked upward just after {target} spoke.",
    "withdrawn_silence": "{name} was quiet for a while here, looking away.",
    "added": "A moment chosen to look at together.",
}


def load_walkthrough(store: Store, session_id: str) -> dict:
    """``{"picked": [moment ids], "vetoed": [moment ids]}`` of the session (encrypted notes)."""
    data = store.read_json(session_id, NOTES_FILE) if store.exists(session_id, NOTES_FILE) else {}
    walk = data.get("walkthrough", {})
    return {"picked": list(walk.get("picked", [])), "vetoed": list(walk.get("vetoed", []))}


def _save_walkthrough(store: Store, session_id: str, change) -> dict:
    data = store.read_json(session_id, NOTES_FILE) if store.exists(session_id, NOTES_FILE) else {}
    walk = data.setdefault("walkthrough", {"picked": [], "vetoed": []})
    change(walk)
    store.write_json(session_id, NOTES_FILE, data)
    return walk


def pick_moment(store: Store, session_id: str, moment_id: str, picked: bool = True) -> None:
    """Put a moment in (or take it out of) the walkthrough's playlist."""
    def change(walk):
        walk["picked"] = [m for m in walk.get("picked", []) if m != moment_id] + ([moment_id] if picked else [])
    _save_walkthrough(store, session_id, change)


def veto_moment(store: Store, session_id: str, moment_id: str, participant_id: str) -> None:
    """A client shown in the moment says no: it is never played in the walkthrough nor put in a
    take-home copy. Audited by ids only."""
    _save_walkthrough(store, session_id, lambda walk: walk.setdefault("vetoed", []).append(moment_id)
                      if moment_id not in walk.get("vetoed", []) else None)
    store.audit("veto", session_id, detail=f"{moment_id}:{participant_id}")


def walkthrough_playlist(review: Review, decisions: dict, walkthrough: dict, added: list[dict]) -> pd.DataFrame:
    """The moments the clients will see, in time order: picked, not dismissed, not vetoed;
    columns ``moment_id, start_s, end_s, people`` (ids of the people shown) and ``intro``
    (:data:`INTROS`, with names). No notes and no confidence travel with it."""
    moments = review.moments(added)
    rows = []
    names = review.names
    for m in moments.itertuples():
        if (m.event_id not in walkthrough["picked"] or m.event_id in walkthrough["vetoed"]
                or decisions.get(m.event_id, {}).get("decision") == "dismissed"):
            continue
        if m.added:
            people = next(a["participant_ids"] for a in added if a["id"] == m.event_id)
            key = "added"
        else:
            people = [p for p in (m.participant_id, m.target_participant_id) if isinstance(p, str) and p in names]
            key = {"expression": m.expression, "face_moment": m.label}.get(m.kind, m.kind)
        intro = INTROS.get(key, INTROS["added"]).format(
            name=names.get(people[0], "") if people else "", target=names.get(people[1], "") if len(people) > 1 else "",
            people=ev.names_list([names[p] for p in people]) if people else "You")
        rows.append((m.event_id, float(m.start_s), float(m.end_s), people, intro))
    return pd.DataFrame(rows, columns=["moment_id", "start_s", "end_s", "people", "intro"])


# ----- the timeline at session scale: a detail window, an overview, the metrics as plots ----
WINDOW_STEP_S = 15.0          # the window's start moves in steps of this many seconds
DETAIL_MAX_ROWS = 1500        # at most this many bars in the detail timeline (merged beyond)
SPEECH_LAYERS = (KIND_TITLES["speech_turn"], KIND_TITLES["backchannel"])


def default_window_s(duration_s: float) -> float:
    """The detail window's default width (s): 5 minutes for a session over 10 minutes, else all of it."""
    return 300.0 if duration_s > 600.0 else float(duration_s)


def timeline_window(duration_s: float, width_s: float, start_s: float) -> tuple[float, float]:
    """The detail window ``(start_s, end_s)`` (s): ``width_s`` wide from ``start_s``, kept inside
    ``[0, duration_s]``."""
    width_s = min(max(float(width_s), 1.0), float(duration_s))
    start_s = min(max(float(start_s), 0.0), float(duration_s) - width_s)
    return start_s, start_s + width_s


def window_start_for(position_s: float, width_s: float, duration_s: float, *, step_s: float = WINDOW_STEP_S) -> float:
    """A window start (s, a multiple of ``step_s``) that puts ``position_s`` about a fifth of the
    way into a ``width_s`` window, inside the session."""
    start = max(0.0, min(float(position_s) - width_s / 5, float(duration_s) - width_s))
    return float(np.floor(start / step_s) * step_s)


def window_rows(rows: pd.DataFrame, start_s: float, end_s: float, *, max_rows: int = DETAIL_MAX_ROWS) -> pd.DataFrame:
    """The :func:`timeline_rows` overlapping ``[start_s, end_s]`` (s), with a column ``n`` (bars
    drawn as this one). Beyond ``max_rows``, bars of one lane and layer closer than a gap are
    merged into one (``label`` "N bars"; the gap, window/1000 s at first, doubles until they fit)."""
    out = rows[(rows.end_s > start_s) & (rows.start_s < end_s)].sort_values(["lane", "layer", "start_s"])
    out = out.assign(n=1).reset_index(drop=True)
    gap = (end_s - start_s) / 1000
    while len(out) > max_rows:
        out = _merge_close(out, gap)
        gap *= 2
    return out


def _merge_close(rows: pd.DataFrame, gap_s: float) -> pd.DataFrame:
    """Rows sorted by lane, layer, start_s with neighbours of one lane and layer less than
    ``gap_s`` (s) apart merged."""
    key = rows.lane + "\x00" + rows.layer
    reach = rows.groupby(key, sort=False).end_s.cummax()
    new = (key != key.shift()) | (rows.start_s > reach.shift() + gap_s)
    block = new.cumsum()
    merged = rows.groupby(block, sort=False).agg(
        lane=("lane", "first"), layer=("layer", "first"), start_s=("start_s", "first"), end_s=("end_s", "max"),
        label=("label", "first"), explanation=("explanation", "first"), n=("n", "sum"))
    many = merged.n > 1
    merged.loc[many, "label"] = merged.n[many].astype(str) + " bars"
    merged.loc[many, "explanation"] = "Several close together: narrow the window to see each."
    return merged.reset_index(drop=True)


def overview_density(rows: pd.DataFrame, duration_s: float, *, bins: int = 300, grid_s: float = 0.1) -> pd.DataFrame:
    """How much of each time bin each lane was speaking (speech turns and backchannels, each
    moment counted once): ``lane, start_s, end_s`` (the bin, s) and ``speech`` (share of the
    bin, 0-1), every bin of every lane that spoke. ``bins`` bins over ``[0, duration_s]``."""
    columns = ["lane", "start_s", "end_s", "speech"]
    speech = rows[rows.layer.isin(SPEECH_LAYERS)]
    if speech.empty or duration_s <= 0:
        return pd.DataFrame(columns=columns)
    bin_s = float(duration_s) / bins
    per_bin = max(1, int(round(bin_s / grid_s)))
    cells = bins * per_bin
    cell_s = float(duration_s) / cells
    out = []
    for lane, own in speech.groupby("lane", sort=False):
        covered = np.zeros(cells + 1, np.int32)         # +1 at each start, -1 after each end
        first = np.clip((own.start_s.to_numpy() / cell_s).astype(int), 0, cells)
        last = np.clip(np.ceil(own.end_s.to_numpy() / cell_s).astype(int), 0, cells)
        np.add.at(covered, first, 1)
        np.add.at(covered, last, -1)
        share = (np.cumsum(covered)[:cells] > 0).reshape(bins, per_bin).mean(axis=1)
        edges = np.arange(bins) * bin_s
        out.append(pd.DataFrame({"lane": lane, "start_s": edges, "end_s": edges + bin_s, "speech": share}))
    return pd.concat(out, ignore_index=True)[columns]


def overview_marks(rows: pd.DataFrame) -> pd.DataFrame:
    """The :func:`timeline_rows` that are not speech (interruptions, raised voices,
    expressions, ...), one mark each at its ``start_s`` (s): ``lane, layer, start_s, end_s, label``."""
    marks = rows[~rows.layer.isin(SPEECH_LAYERS + (KIND_TITLES["overlap"],))]
    return marks[["lane", "layer", "start_s", "end_s", "label"]].reset_index(drop=True)


def interruption_cells(matrix: pd.DataFrame) -> pd.DataFrame:
    """Who interrupts whom as heatmap cells, one per ordered pair of different people:
    ``interrupter, interrupted, count`` (n people give n*(n-1) rows)."""
    cells = [(a, b, int(matrix.loc[a, b])) for a in matrix.index for b in matrix.columns if a != b]
    return pd.DataFrame(cells, columns=["interrupter", "interrupted", "count"])


def turn_length_summary(review: Review) -> pd.DataFrame:
    """Each person's speech-turn lengths as a box: ``name, turns, q1_s, median_s, q3_s, low_s,
    high_s`` (whiskers: the furthest turn within 1.5 box lengths) and ``longest_s``, in seconds;
    people who never took a turn are left out."""
    columns = ["name", "turns", "q1_s", "median_s", "q3_s", "low_s", "high_s", "longest_s"]
    turns = review.events[review.events.kind == "speech_turn"]
    lengths = (turns.end_s.astype(float) - turns.start_s.astype(float)).to_numpy()
    who = turns.participant_name.to_numpy()
    rows = []
    for name in review.names.values():
        x = lengths[who == name]
        if not len(x):
            continue
        q1, med, q3 = np.percentile(x, [25, 50, 75])
        reach = 1.5 * (q3 - q1)
        rows.append((name, len(x), q1, med, q3, x[x >= q1 - reach].min(), x[x <= q3 + reach].max(), x.max()))
    return pd.DataFrame(rows, columns=columns)
