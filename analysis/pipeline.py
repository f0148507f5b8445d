"""The analysis pipeline: stages that each read what they need and write one artifact.

Stages run in order. Each stage's *fingerprint* hashes its code version, parameters and the
fingerprints of its inputs (media file hashes or earlier stages); ``derived/<stage>.run.json``
records it with the model versions, timings and status, and a re-run skips a stage whose
fingerprint is unchanged. Every stage reports progress through one hook,
``hook(step, *, completed, total)``.
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import pandas as pd

from analysis.stages.speakers import diarization
from analysis.stages import dynamics
from analysis.stages.speakers import enrolment
from analysis.stages import expressions
from analysis.stages import faces
from analysis.stages.speakers import multitrack
from analysis.stages import tone
from analysis.stages.speakers.audiovisual import name_speakers
from capture.media import AUDIO_RATE_HZ, decode_wav
from capture.errors import IntegrityError
from capture.store import Store, utc_now

CODE_VERSION = "0.1.0"


class ProgressHook(Protocol):
    def __call__(self, step: str, *, completed: int, total: int) -> None: ...


def no_progress(step: str, *, completed: int, total: int) -> None:
    return None


@dataclass
class Params:
    """All analysis parameters, recorded with every artifact."""

    diarization: diarization.DiarizationParams = field(default_factory=diarization.DiarizationParams)
    multitrack: multitrack.MultitrackParams = field(default_factory=multitrack.MultitrackParams)
    faces: faces.FaceParams = field(default_factory=faces.FaceParams)
    tone: tone.ToneParams = field(default_factory=tone.ToneParams)
    dynamics: dynamics.DynamicsParams = field(default_factory=dynamics.DynamicsParams)
    expressions: expressions.ExpressionParams = field(default_factory=expressions.ExpressionParams)


class Session:
    """A session's manifest and lazily decoded inputs for the stages of one run."""

    def __init__(self, store: Store, session_id: str):
        self.store = store
        self.id = session_id
        self.manifest = store.manifest(session_id)
        self._audio: tuple[np.ndarray, int] | None = None

    @property
    def participant_ids(self) -> list[str]:
        return [p["id"] for p in self.manifest["participants"]]

    @property
    def names(self) -> dict[str, str]:
        return {p["id"]: p["name"] for p in self.manifest["participants"]}

    def consented(self, scope: str) -> list[str]:
        """Participants whose consent covers ``scope`` (see capture/consent.py), seat order."""
        from capture.consent import consented_ids

        return consented_ids(self.store, self.id, scope, self.participant_ids)

    def consent_fingerprint(self) -> dict:
        from capture.consent import SCOPES

        return {scope: self.consented(scope) for scope in SCOPES if scope.startswith("analyse")}

    def audio(self) -> tuple[np.ndarray, int] | None:
        """Normalised mono audio ``(y, sr)``; None for a session without sound, or when nobody
        consented to voice analysis (the voice models then never run)."""
        rel = self.manifest["media"].get("audio")
        if rel is None or not self.consented("analyse_voice"):
            return None
        if self._audio is None:
            self._audio = decode_wav(self.store.read_bytes(self.id, rel))
        return self._audio

    def table(self, rel: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self.store.read_table(self.id, rel, columns)[0]

    def media_fingerprint(self, key: str) -> str:
        """sha256 of a media stream's file, recorded at import ("none" when absent)."""
        return self.manifest["media"].get("sha256", {}).get(key, "none")


Outputs = dict[str, pd.DataFrame]


def run_faces(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    video = s.manifest["media"].get("video")
    if video is None:
        return {"faces.parquet": pd.DataFrame(columns=faces.COLUMNS)}, {"skipped": "no video"}
    total = int(s.manifest["duration_s"] * p.faces.sample_fps) + 1
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        hook("faces", completed=min(done, total), total=total)

    # consent (C3): only participants who agreed to face analysis are analysed; the seats of
    # the others (equal columns, left to right) are blanked before the model sees a frame
    ids = s.consented("analyse_face")
    if not ids:
        return {"faces.parquet": pd.DataFrame(columns=faces.COLUMNS)}, {"skipped": "no face-analysis consent"}
    n = len(s.participant_ids)
    visible = None if len(ids) == n else [(i / n, (i + 1) / n) for i, pid in enumerate(s.participant_ids) if pid in ids]
    with s.store.media_path(s.id, video) as path:
        frame = faces.face_frames(path, ids, origin_s=s.manifest.get("time_origin_s", 0.0),
                                  params=p.faces, progress=advance, visible=visible)
    return {"faces.parquet": frame}, {"models": faces.model_versions(), "sample_fps": p.faces.sample_fps,
                                      "face_consent": ids}


def run_speakers(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    """Who spoke when, with the backend chosen from what the session has: one track per person
    -> multi-track; a configured pyannote pipeline -> pyannote; otherwise the embedded
    single-microphone backend, with clusters named by enrolment clips and by faces."""
    columns = ["start_s", "end_s", "participant_id", "confidence"]
    if len(s.manifest["media"].get("tracks") or []) >= 2:
        return _speakers_multitrack(s, p, hook)
    audio = s.audio()
    if audio is None:
        return {"speakers.parquet": pd.DataFrame(columns=columns)}, {"skipped": "no audio"}
    y, sr = audio
    ids = s.participant_ids
    hook("speakers", completed=0, total=2)
    if p.diarization.pyannote_pipeline:
        from analysis.stages.speakers import pyannote_backend

        pipeline = pyannote_backend.load_pipeline(pyannote_backend.locate_pipeline())
        segments = pyannote_backend.diarize_with_pyannote(pipeline, y, sr, n_speakers=len(ids))
        segments = pyannote_backend.map_labels(segments, pyannote_backend.first_speech_mapping(segments, ids))
        hook("speakers", completed=2, total=2)
        return {"speakers.parquet": segments[columns]}, pyannote_backend.backend_record(pipeline)
    frames = diarization.diarize_frames(y, sr, n_speakers=len(ids), params=p.diarization)
    prints = _enrolment_prints(s, p)
    enrolled = ""
    if prints:
        named = enrolment.name_clusters(y, sr, frames, prints, params=p.diarization)
        frames = _order_clusters_by_participant(frames, {c: ids.index(pid) for c, (pid, _) in named.items()})
        enrolled = f"; {len(named)} of {len(prints)} enrolled voices recognised"
    hook("speakers", completed=1, total=2)
    segments, how = name_speakers(frames, ids, s.table("derived/faces.parquet"))
    hook("speakers", completed=2, total=2)
    return {"speakers.parquet": segments}, {"models": diarization.model_versions(), "backend": how + enrolled}


def _enrolment_prints(s: Session, p: Params) -> dict[str, np.ndarray]:
    """Voice prints of participants whose consent clip was kept as their enrolment sample."""
    from capture.consent import read_consent

    prints = {}
    for pid, record in (read_consent(s.store, s.id) or {}).items():
        if record.enrolment and record.allows("analyse_voice") and s.store.exists(s.id, record.enrolment):
            clip, sr = decode_wav(s.store.read_bytes(s.id, record.enrolment))
            voice = enrolment.voice_print(clip if clip.ndim == 1 else clip.mean(0), sr, params=p.diarization)
            if voice is not None:
                prints[pid] = voice
    return prints


def _order_clusters_by_participant(frames: diarization.FrameDiarization, seat_of: dict[int, int]) -> diarization.FrameDiarization:
    """Renumber clusters so that cluster ``j`` is participant ``j`` where enrolment named it;
    unnamed clusters take the remaining numbers in order of first speech."""
    k = frames.scores.shape[1]
    free = [j for j in range(k) if j not in seat_of.values()]
    seat = {c: seat_of[c] if c in seat_of else free.pop(0) for c in range(k)}
    return frames.relabelled([old for old, _ in sorted(seat.items(), key=lambda item: item[1])])


def _speakers_multitrack(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    """One track per person: per-track voice activity with bleed rejection. Tracks of people
    who did not consent to voice analysis are not analysed."""
    tracks = s.manifest["media"]["tracks"]
    unassigned = iter(pid for pid in s.participant_ids if pid not in {t.get("participant_id") for t in tracks})
    owners = [t.get("participant_id") or next(unassigned, None) for t in tracks]
    allowed = set(s.consented("analyse_voice"))
    chosen = [(t, pid) for t, pid in zip(tracks, owners) if pid in allowed]
    hook("speakers", completed=0, total=1)
    signals, sr = [], AUDIO_RATE_HZ
    for track, _ in chosen:
        y, sr = decode_wav(s.store.read_bytes(s.id, track["rel"]))
        signals.append(y if y.ndim == 1 else y.mean(0))
    segments = (multitrack.diarize_tracks(signals, sr, [pid for _, pid in chosen], params=p.multitrack) if signals
                else pd.DataFrame(columns=["start_s", "end_s", "participant_id", "confidence"]))
    hook("speakers", completed=1, total=1)
    return {"speakers.parquet": segments}, {
        "models": diarization.model_versions(),
        "backend": f"multi-track: one microphone per person ({len(signals)} tracks), Silero VAD per track with "
                   "bleed rejection"}


def run_tone(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    audio = s.audio()
    if audio is None:
        return {"tone.parquet": tone.segment_tone(pd.DataFrame(), pd.DataFrame()),
                "tone_frames.parquet": pd.DataFrame(columns=["t_s", "loudness_db", "f0_hz"])}, {"skipped": "no audio"}
    hook("tone", completed=0, total=1)
    frames = tone.prosody_frames(*audio, params=p.tone)
    speech = s.table("derived/speakers.parquet")
    hook("tone", completed=1, total=1)
    return {"tone.parquet": tone.segment_tone(frames, speech, params=p.tone), "tone_frames.parquet": frames}, {}


def run_dynamics(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    speech = s.table("derived/speakers.parquet")
    frames = s.table("derived/tone_frames.parquet")
    media = s.manifest["media"]
    result = dynamics.analyse_dynamics(
        speech[["start_s", "end_s", "participant_id"]], params=p.dynamics, names=s.names,
        tone_frames=frames if len(frames) else None, session_end_s=s.manifest["duration_s"],
        audio=bool(media.get("audio") or media.get("tracks")),     # a video without sound: say so, not "silence"
        voice_analysed=bool(s.consented("analyse_voice")),
    )
    hook("dynamics", completed=1, total=1)
    return {
        "dynamics.parquet": result.events,
        "participants.parquet": result.participants,
        "matrix.parquet": result.matrix.reset_index(names="interrupter"),
        "turn_changes.parquet": result.turn_changes,
    }, {}


def run_expressions(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    events = expressions.expression_events(s.table("derived/faces.parquet"), params=p.expressions)
    hook("expressions", completed=1, total=1)
    return {"expressions.parquet": events}, {}


EVENT_COLUMNS = ["session_id", "event_id", "start_s", "end_s", "kind", "participant_id", "target_participant_id",
                 "label", "value", "confidence", "source", "source_version", "explanation"]

EXPRESSION_TEXT = {
    "smile": "{name} smiles ({start:.1f}-{end:.1f} s).",
    "one_sided_smile": "{name} shows a one-sided smile ({start:.1f}-{end:.1f} s): a possible contempt signal "
                       "to look at together, not a verdict.",
    "frown": "{name}'s brows are lowered ({start:.1f}-{end:.1f} s).",
}


def run_events(s: Session, p: Params, hook: ProgressHook) -> tuple[Outputs, dict]:
    names = s.names
    parts = [s.table("derived/dynamics.parquet").assign(source="dynamics")]
    tone_segments = s.table("derived/tone.parquet")
    raised = tone.raised_passages(tone_segments, params=p.tone)
    parts.append(pd.DataFrame({
        "start_s": raised.start_s, "end_s": raised.end_s, "kind": "raised_voice", "participant_id": raised.participant_id,
        "target_participant_id": None, "label": "raised voice", "value": raised.loudness_delta_db, "confidence": 1.0,
        "source": "tone",
        "explanation": [f"{names.get(r.participant_id, r.participant_id)}'s voice is {r.loudness_delta_db:.0f} dB louder and "
                        f"{r.pitch_delta_st:.0f} semitones higher than their own usual level ({r.start_s:.1f}-{r.end_s:.1f} s)."
                        for r in raised.itertuples()],
    }))
    expr = s.table("derived/expressions.parquet")
    parts.append(pd.DataFrame({
        "start_s": expr.start_s, "end_s": expr.end_s, "kind": "expression", "participant_id": expr.participant_id,
        "target_participant_id": None, "label": expr.label, "value": expr.value, "confidence": expr.confidence,
        "source": "faces",
        "explanation": [EXPRESSION_TEXT[r.label].format(name=names.get(r.participant_id, r.participant_id),
                                                        start=r.start_s, end=r.end_s) for r in expr.itertuples()],
    }))
    events = pd.concat([part for part in parts if len(part)], ignore_index=True) if any(len(x) for x in parts) \
        else pd.DataFrame(columns=EVENT_COLUMNS)
    events = events.sort_values(["start_s", "kind"], ignore_index=True)
    events["session_id"] = s.id
    events["event_id"] = [f"e{i:05d}" for i in range(len(events))]
    events["source_version"] = CODE_VERSION
    for column in EVENT_COLUMNS:
        if column not in events:
            events[column] = None
    events = events[EVENT_COLUMNS]
    events["target_participant_id"] = events["target_participant_id"].astype(object)
    hook("events", completed=1, total=1)
    return {"events.parquet": events}, {}


UNATTRIBUTED = "unattributed"


def honour_voice_consent(stage: str, s: Session, outputs: Outputs, info: dict) -> tuple[Outputs, dict]:
    """Consent (C3) for voice: separating voices in a mixed recording passes everyone's audio
    through voice activity and clustering, but speech of a person who did not agree to voice
    analysis is never attributed to them: it is labelled ``unattributed``, gets no tone
    summary, and the prosody frames during it are blanked (NaN)."""
    allowed = set(s.consented("analyse_voice"))
    if stage not in ("speakers", "tone"):
        return outputs, info
    if s.manifest["media"].get("audio") and not allowed:
        return outputs, {**info, "skipped": "no voice-analysis consent"}
    if allowed == set(s.participant_ids):
        return outputs, info
    out = dict(outputs)
    if stage == "speakers":
        table = out["speakers.parquet"].copy()
        table.loc[~table.participant_id.isin(allowed), "participant_id"] = UNATTRIBUTED
        out["speakers.parquet"] = table
        info = {**info, "voice_consent": sorted(allowed)}
    else:
        tone_table = out["tone.parquet"]
        out["tone.parquet"] = tone_table[tone_table.participant_id.isin(allowed)].reset_index(drop=True)
        frames = out["tone_frames.parquet"].copy()
        speech = s.table("derived/speakers.parquet")
        hidden = speech[speech.participant_id == UNATTRIBUTED]
        t = frames.t_s.to_numpy() if len(frames) else np.zeros(0)
        mask = np.zeros(len(t), bool)
        for row in hidden.itertuples():
            mask |= (t >= row.start_s) & (t < row.end_s)
        frames.loc[mask, ["loudness_db", "f0_hz"]] = np.nan
        out["tone_frames.parquet"] = frames
    return out, info


@dataclass(frozen=True)
class Stage:
    name: str
    version: str
    inputs: tuple[str, ...]          # "media:<key>" or an earlier stage's name
    params: Callable[[Params], object]
    run: Callable[[Session, Params, ProgressHook], tuple[Outputs, dict]]


STAGES: tuple[Stage, ...] = (
    Stage("faces", "1", ("media:video",), lambda p: p.faces, run_faces),
    Stage("speakers", "2", ("media:audio", "faces"), lambda p: (p.diarization, p.multitrack), run_speakers),
    Stage("tone", "1", ("media:audio", "speakers"), lambda p: p.tone, run_tone),
    Stage("dynamics", "2", ("speakers", "tone"), lambda p: p.dynamics, run_dynamics),
    Stage("expressions", "1", ("faces",), lambda p: p.expressions, run_expressions),
    Stage("events", "1", ("speakers", "tone", "dynamics", "expressions"), lambda p: (p.tone, p.dynamics), run_events),
)


def _params_json(value) -> object:
    if isinstance(value, tuple):
        return [_params_json(v) for v in value]
    return value.to_dict()


def run_json_path(stage: str) -> str:
    return f"derived/{stage}.run.json"


def _previous_run(store: Store, session_id: str, stage: str) -> tuple[dict | None, list[str]]:
    """The stage's last run record and the stored files of that run that are missing or fail
    authentication (a damaged record counts as damaged itself): a stage is skipped only when
    everything it wrote is intact, not merely present."""
    rel = run_json_path(stage)
    if not store.exists(session_id, rel):
        return None, []
    try:
        previous = store.read_json(session_id, rel)
    except (IntegrityError, ValueError):
        return None, [rel]
    outputs = [f"derived/{out}" for out in previous.get("outputs", [])]
    return previous, [out for out in outputs if not store.is_intact(session_id, out)]


def analyze(store: Store, session_id: str, *, params: Params | None = None, hook: ProgressHook = no_progress,
            force: bool = False) -> list[dict]:
    """Run every stage of ``session_id``; returns the run records (``status`` is ``ran`` or
    ``skipped`` for stages whose inputs and parameters did not change)."""
    params = params or Params()
    session = Session(store, session_id)
    fingerprints: dict[str, str] = {}
    records = []
    consent = session.consent_fingerprint()
    for stage in STAGES:
        inputs = {}
        for name in stage.inputs:
            if name.startswith("media:"):
                key = name.split(":", 1)[1]
                if name not in fingerprints:
                    fingerprints[name] = session.media_fingerprint(key)
            inputs[name] = fingerprints[name]
        stage_params = _params_json(stage.params(params))
        fingerprint = hashlib.sha256(json.dumps(
            {"stage": stage.name, "version": stage.version, "code": CODE_VERSION, "params": stage_params,
             "participants": session.participant_ids, "consent": consent, "inputs": inputs},
            sort_keys=True).encode()).hexdigest()
        previous, damaged = _previous_run(store, session_id, stage.name)
        if (not force and not damaged and previous and previous.get("fingerprint") == fingerprint
                and previous.get("status") == "ok"):
            fingerprints[stage.name] = fingerprint
            records.append({**previous, "this_run": "skipped"})
            hook(stage.name, completed=1, total=1)
            continue
        started = time.perf_counter()
        outputs, info = stage.run(session, params, hook)
        outputs, info = honour_voice_consent(stage.name, session, outputs, info)
        elapsed = time.perf_counter() - started
        meta = {"stage": stage.name, "stage_version": stage.version, "params": stage_params, **info}
        for rel, frame in outputs.items():
            store.write_table(session_id, f"derived/{rel}", frame, meta)
        record = {
            "stage": stage.name, "stage_version": stage.version, "code_version": CODE_VERSION,
            "fingerprint": fingerprint, "inputs": inputs, "params": stage_params, "outputs": sorted(outputs),
            "status": "ok", "finished_utc": utc_now(), "seconds": round(elapsed, 3),
            "python": platform.python_version(), **info,
        }
        store.write_json(session_id, run_json_path(stage.name), record)
        fingerprints[stage.name] = fingerprint
        records.append({**record, "this_run": "ran", "repaired": damaged})
    store.set_status(session_id, "analysed")
    return records
