"""The analysis pipeline: stages that each read what they declare and write their artifacts.

The stage contract (:class:`Stage`):

* a stage **declares its inputs**: media streams (``media:<key>``), consent scopes
  (``consent:<scope>``), the enrolment clips (``enrolment``) and earlier stages by name;
* it is a function ``run(session, params, hook) -> StageResult`` that returns its tables
  (``derived/<name>.parquet``) and facts for its run record; it **applies its own consent rule**
  (``Stage.consent``) to what it produced;
* every constant that shapes its output is a field of its parameter classes (``Stage.params``
  names the fields of :class:`Params`), so the *fingerprint* covers it;
* it reports progress through one hook, ``hook(step, *, completed, total)``;
* the part of its work that needs no earlier stage (the audio work of the speakers and tone
  stages) may be declared as ``Stage.early``: where the faces stage leaves a core free,
  :func:`analyze` starts it in a background thread before the first stage runs, so it overlaps
  the faces stage, and ``run`` takes its result with :meth:`Session.early`. Early work writes
  nothing; only ``run``'s tables are stored. Work computed beforehand (the live analysis of a
  recording, :mod:`analysis.live`) can stand in for a stage's early work and for the faces
  stage's detections (``analyze(prepared=...)``): it must give what that work would.

A stage's fingerprint hashes its code version, parameters and the fingerprints of its
declared inputs; ``derived/<stage>.run.json`` records it with the model versions, timings and
status, and a re-run skips a stage whose fingerprint is unchanged and whose files are intact.
Heavy models follow one lifetime policy (``analysis.core.models.shared_model``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple, Protocol, TypeVar

import numpy as np
import pandas as pd

from analysis.core import events as ev
from analysis.core.workers import background_thread, process_pool, release_free_memory, return_large_blocks_when_freed
from analysis.stages import dynamics, expressions, faces, tone
from analysis.stages.speakers import (
    backends,
    diarization,
    enrolment,
    multitrack,
    pyannote_backend,
)
from analysis.stages.speakers.audiovisual import AudioVisualParams, name_speakers
from capture.consent import consented_ids, read_consent
from capture.errors import IntegrityError
from capture.media import AUDIO_RATE_HZ, Pcm16Signal, decode_wav, decode_wav_signal
from capture.store import Store, utc_now

CODE_VERSION = "0.1.0"
SPEAKER_COLUMNS = ["start_s", "end_s", "participant_id", "confidence"]
Early = TypeVar("Early")
Prepared = Mapping[str, Callable[["Session", "Params"], object]]


class ProgressHook(Protocol):
    def __call__(self, step: str, *, completed: int, total: int) -> None: ...


def no_progress(step: str, *, completed: int, total: int) -> None:
    return None


@dataclass
class Params:
    """All analysis parameters, recorded with every artifact (each stage names its fields)."""

    diarization: diarization.DiarizationParams = field(default_factory=diarization.DiarizationParams)
    multitrack: multitrack.MultitrackParams = field(default_factory=multitrack.MultitrackParams)
    audiovisual: AudioVisualParams = field(default_factory=AudioVisualParams)
    faces: faces.FaceParams = field(default_factory=faces.FaceParams)
    tone: tone.ToneParams = field(default_factory=tone.ToneParams)
    dynamics: dynamics.DynamicsParams = field(default_factory=dynamics.DynamicsParams)
    expressions: expressions.ExpressionParams = field(default_factory=expressions.ExpressionParams)

    @classmethod
    def from_environment(cls) -> "Params":
        """Defaults, with the user's configuration from the environment: a pyannote pipeline
        in ``PLAYBACK_PYANNOTE_PIPELINE`` (the only setting read from outside)."""
        params = cls()
        params.diarization = dataclasses.replace(params.diarization,
                                                 pyannote_pipeline=pyannote_backend.configured_pipeline())
        return params


class StageResult(NamedTuple):
    """What a stage returns: ``tables`` (file name under ``derived/`` -> table) and ``info``,
    facts for its run record (models, backend, ``skipped`` with the reason)."""

    tables: dict[str, pd.DataFrame]
    info: dict


class Session:
    """A session's manifest and lazily decoded inputs for the stages of one run."""

    def __init__(self, store: Store, session_id: str, *, prepared: Prepared | None = None):
        self.store = store
        self.id = session_id
        self.manifest = store.manifest(session_id)
        self.prepared = dict(prepared or {})     # stage -> work replacing its early work (see analyze)
        self._audio: tuple[np.ndarray, int] | None = None
        self._tracks: list[tuple[str, np.ndarray, int]] | None = None
        self._early: dict[str, Future] = {}
        self.early_seconds: dict[str, float] = {}   # stage -> wall time (s) of its background early work

    def start_early(self, stage: str, future: Future) -> None:
        """Hand over the background run of ``stage``'s early work (see :func:`analyze`)."""
        self._early[stage] = future

    def early(self, stage: str, work: Callable[["Session", "Params"], Early], params: "Params") -> Early:
        """What ``work(self, params)``, the early part of ``stage`` (``Stage.early``), returns:
        from its background run when :func:`analyze` started one, else computed now (by the
        work ``prepared`` for that stage, when given)."""
        future = self._early.pop(stage, None)
        return future.result() if future is not None else self.prepared.get(stage, work)(self, params)

    @property
    def participant_ids(self) -> list[str]:
        return [p["id"] for p in self.manifest["participants"]]

    @property
    def names(self) -> dict[str, str]:
        return {p["id"]: p["name"] for p in self.manifest["participants"]}

    def consented(self, scope: str) -> list[str]:
        """Participants whose consent covers ``scope`` (see capture/consent.py), seat order."""
        return consented_ids(self.store, self.id, scope, self.participant_ids)

    def audio(self) -> tuple[np.ndarray, int] | None:
        """Normalised mono audio ``(y, sr)``; None for a session without sound, or when nobody
        consented to voice analysis (the voice models then never run). ``y`` is a
        :class:`capture.media.Pcm16Signal` (float32 values held as the stored 16-bit samples) for
        the 16-bit WAV the import writes: the audio stages read it a slice at a time."""
        rel = self.manifest["media"].get("audio")
        if rel is None or not self.consented("analyse_voice"):
            return None
        if self._audio is None:
            self._audio = self._decoded(rel, pcm16=True)
        return self._audio

    def _decoded(self, rel: str, *, pcm16: bool = False) -> tuple[np.ndarray | Pcm16Signal, int]:
        """The WAV file ``rel`` decoded as it is decrypted (``Store.open_media``), with no copy
        of the file's bytes held beside it; with ``pcm16``, a mono 16-bit file as a
        :class:`Pcm16Signal` (the stages' signal at half the memory: 96 MB at 50 minutes)."""
        with self.store.open_media(self.id, rel) as wav:
            return decode_wav_signal(wav) if pcm16 else decode_wav(wav)

    def release_audio(self) -> None:
        """Forget the decoded audio and tracks (the next :meth:`audio` decodes again): once no
        stage left to run reads them, a 50-minute session's 96 MB do not stay under the rest."""
        self._audio = self._tracks = None

    def voice_tracks(self) -> list[tuple[str, np.ndarray, int]]:
        """``(participant id, mono samples, sample rate Hz)`` of each per-person microphone track
        whose owner agreed to voice analysis (empty for a one-microphone session). A track
        without an owner belongs to the next participant not named by another track."""
        if self._tracks is not None:
            return self._tracks
        tracks = self.manifest["media"].get("tracks") or []
        unassigned = iter(pid for pid in self.participant_ids if pid not in {t.get("participant_id") for t in tracks})
        owners = [t.get("participant_id") or next(unassigned, None) for t in tracks]
        allowed = set(self.consented("analyse_voice"))
        chosen = []
        for track, pid in zip(tracks, owners):
            if pid in allowed:
                y, sr = self._decoded(track["rel"])
                chosen.append((pid, y if y.ndim == 1 else y.mean(0), sr))
        self._tracks = chosen         # decoded once per run: the speakers and tone stages both read them
        return chosen

    def table(self, rel: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self.store.read_table(self.id, rel, columns)[0]

    def enrolment_clips(self) -> dict[str, str]:
        """``participant id -> enrolment clip path`` of those whose consent clip was kept as
        their voice sample and who agreed to voice analysis."""
        return {pid: record.enrolment for pid, record in (read_consent(self.store, self.id) or {}).items()
                if record.enrolment and record.allows("analyse_voice") and self.store.exists(self.id, record.enrolment)}

    def input_fingerprint(self, name: str) -> object:
        """The fingerprint of a declared input that is not a stage: a media stream's sha256
        recorded at import ("none" when absent), the participants a consent scope covers, or
        the sha256 of each enrolment clip."""
        kind, _, key = name.partition(":")
        if kind == "media":
            return self.manifest["media"].get("sha256", {}).get(key, "none")
        if kind == "consent":
            return self.consented(key)
        if kind == "enrolment":
            return {pid: hashlib.sha256(self.store.read_bytes(self.id, rel)).hexdigest()
                    for pid, rel in sorted(self.enrolment_clips().items())}
        raise ValueError(f"unknown stage input {name!r}")


Outputs = dict[str, pd.DataFrame]


def run_faces(s: Session, p: Params, hook: ProgressHook) -> StageResult:
    """Face features per participant over sampled frames (``faces.parquet``)."""
    video = s.manifest["media"].get("video")
    if video is None:
        return StageResult({"faces.parquet": pd.DataFrame(columns=faces.COLUMNS)}, {"skipped": "no video"})
    total = int(s.manifest["duration_s"] * p.faces.sample_fps) + 1
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        hook("faces", completed=min(done, total), total=total)

    # consent (C3): only participants who agreed to face analysis are analysed; the places of
    # the others (equal seats left to right, or gallery tiles) are blanked before the model sees a frame
    ids = s.consented("analyse_face")
    if not ids:
        return StageResult({"faces.parquet": pd.DataFrame(columns=faces.COLUMNS)}, {"skipped": "no face-analysis consent"})
    detections = s.early("faces", lambda s, p: face_detections(s, p, progress=advance), p)
    frame, who = faces.assign_participants(detections, ids, p.faces)    # tracks linked across the stretches
    return StageResult({"faces.parquet": frame}, {"models": faces.model_versions(), "sample_fps": p.faces.sample_fps,
                                                  "face_consent": ids, "face_tracks": who})


def face_consent(s: Session, p: Params) -> tuple[list[str], faces.Regions | None]:
    """Consent (C3) for faces: the participants who agreed to face analysis, and their places on
    screen (:func:`faces.visible_places`; None when everyone agreed)."""
    ids = s.consented("analyse_face")
    return ids, faces.visible_places(s.participant_ids, ids, p.faces)


def face_detections(s: Session, p: Params, *, progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Raw face detections of the session's video (:func:`faces.detect_faces`), its stretches
    (:func:`faces.chunks`) on every core; ``progress(n)`` after ``n`` more samples."""
    ids, visible = face_consent(s, p)
    video = s.manifest["media"]["video"]
    origin = s.manifest.get("time_origin_s", 0.0)
    stretches = faces.chunks(float(s.manifest["duration_s"] or 0.0), p.faces)
    key = s.store.keys.data_key(s.id) if len(stretches) > 1 and not s.store.keys.plaintext else None
    jobs = [(str(s.store.root), s.id, key, video, start, end, len(ids), p.faces, origin, visible) for start, end in stretches]
    if len(jobs) == 1:
        return _detect_stretch(*jobs[0], progress=progress, store=s.store)
    workers = min(len(jobs), os.cpu_count() or 1)       # MediaPipe holds one core per process
    # one stretch per process: a process that has run the Face Landmarker keeps about 15 MB more
    # resident per minute of video it analysed (5 one-minute stretches in one process: 315 ->
    # 375 MB), so workers reused over a long session's stretches grew with its length
    with process_pool(workers, tasks_per_process=1) as pool:
        parts = []
        for part in pool.map(_detect_stretch, *zip(*jobs)):
            parts.append(part)
            if progress:
                progress(int(len(part.t_s.unique())) if len(part) else 0)
    return pd.concat([part for part in parts if len(part)], ignore_index=True) if any(
        len(part) for part in parts) else pd.DataFrame()


def _detect_stretch(root: str, session_id: str, key: bytes | None, rel: str, start_s: float, end_s: float | None,
                    n_participants: int, params: faces.FaceParams, origin_s: float,
                    visible: faces.Regions | None, *, progress=None, store: Store | None = None
                    ) -> pd.DataFrame:
    """Raw face detections of one stretch of a session's video (:func:`faces.detect_faces`),
    read through ``store`` or, in a worker process, a store holding that session's key only."""
    store = store or Store.for_one_session(root, session_id, key)
    with store.open_media(session_id, rel) as recording:        # decrypted chunk by chunk as decoded
        return faces.detect_faces(recording, n_participants=n_participants, origin_s=origin_s, params=params,
                                  progress=progress, visible=visible, start_s=start_s, end_s=end_s)


class VoiceClusters(NamedTuple):
    """The single-microphone backends' audio-only result: frame-level voice clusters (ordered
    by participant where enrolment clips named them) and the run record's note on enrolment."""

    frames: diarization.FrameDiarization
    enrolled: str


def speakers_from_audio(s: Session, p: Params, *, frames_of=backends.diarize_backend_frames
                        ) -> StageResult | VoiceClusters:
    """The speakers stage's work that needs no earlier stage (``Stage.early``): the finished
    result for multi-track, a pyannote pipeline or no audio; for the embedded backends the voice
    clusters (``frames_of(y, sr, n_speakers=, params=)``, by default
    :func:`backends.diarize_backend_frames`), which :func:`run_speakers` then names with the faces."""
    if len(s.manifest["media"].get("tracks") or []) >= 2:
        return _speakers_multitrack(s, p)
    audio = s.audio()
    if audio is None:
        return StageResult({"speakers.parquet": pd.DataFrame(columns=SPEAKER_COLUMNS)}, {"skipped": "no audio"})
    y, sr = audio
    ids = s.participant_ids
    if p.diarization.pyannote_pipeline:
        pipeline = pyannote_backend.load_pipeline(pyannote_backend.locate_pipeline(p.diarization.pyannote_pipeline))
        segments = pyannote_backend.diarize_with_pyannote(pipeline, np.asarray(y), sr, n_speakers=len(ids))
        segments = pyannote_backend.map_labels(segments, pyannote_backend.first_speech_mapping(segments, ids))
        return StageResult({"speakers.parquet": segments[SPEAKER_COLUMNS]}, pyannote_backend.backend_record(pipeline))
    frames = frames_of(y, sr, n_speakers=len(ids), params=p.diarization)
    prints = _enrolment_prints(s, p)
    enrolled = ""
    if prints:
        named = enrolment.name_clusters(y, sr, frames, prints, params=p.diarization)
        frames = _order_clusters_by_participant(frames, {c: ids.index(pid) for c, (pid, _) in named.items()})
        enrolled = f"; {len(named)} of {len(prints)} enrolled voices recognised"
    return VoiceClusters(frames, enrolled)


def run_speakers(s: Session, p: Params, hook: ProgressHook) -> StageResult:
    """Who spoke when, with the backend chosen from what the session has: one track per person
    -> multi-track; a configured pyannote pipeline -> pyannote; otherwise the embedded
    single-microphone backend, with clusters named by enrolment clips and by faces (the voice
    work is :func:`speakers_from_audio`, only the naming by faces waits for the faces stage)."""
    hook("speakers", completed=0, total=2)
    heard = s.early("speakers", speakers_from_audio, p)
    if isinstance(heard, StageResult):
        hook("speakers", completed=2, total=2)
        return heard
    hook("speakers", completed=1, total=2)
    mouths = s.table("derived/faces.parquet", faces.MOUTH_COLUMNS)
    segments, how = name_speakers(heard.frames, s.participant_ids, mouths, params=p.audiovisual)
    hook("speakers", completed=2, total=2)
    return StageResult({"speakers.parquet": segments},
                       {"models": backends.model_versions(p.diarization), "backend": how + heard.enrolled})


def _enrolment_prints(s: Session, p: Params) -> dict[str, np.ndarray]:
    """Voice prints of participants whose consent clip was kept as their enrolment sample."""
    prints = {}
    for pid, rel in s.enrolment_clips().items():
        clip, sr = decode_wav(s.store.read_bytes(s.id, rel))
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


def _speakers_multitrack(s: Session, p: Params) -> StageResult:
    """One track per person: per-track voice activity with bleed rejection. Tracks of people
    who did not consent to voice analysis are not analysed."""
    chosen = s.voice_tracks()
    signals, sr = [y for _, y, _ in chosen], (chosen[0][2] if chosen else AUDIO_RATE_HZ)
    segments = (multitrack.diarize_tracks(signals, sr, [pid for pid, _, _ in chosen], params=p.multitrack) if signals
                else pd.DataFrame(columns=SPEAKER_COLUMNS))
    return StageResult({"speakers.parquet": segments}, {
        "models": diarization.model_versions(),
        "backend": f"multi-track: one microphone per person ({len(signals)} tracks), Silero VAD per track with "
                   "bleed rejection"})


def prosody_from_audio(s: Session, p: Params) -> pd.DataFrame | None:
    """The tone stage's work that needs no earlier stage (``Stage.early``): prosody frames
    (:data:`analysis.stages.tone.FRAME_COLUMNS`, plus ``participant_id`` when each person has
    their own microphone track); None without audio to measure."""
    tracks = s.voice_tracks()
    audio = None if tracks else s.audio()       # the mix is not needed when each person has a track
    if audio is None and not tracks:
        return None
    if tracks:          # each person's voice from their own microphone
        return pd.concat([tone.prosody_frames(y, sr, params=p.tone).assign(participant_id=pid)
                          for pid, y, sr in tracks], ignore_index=True)
    return tone.prosody_frames(*audio, params=p.tone)


def run_tone(s: Session, p: Params, hook: ProgressHook) -> StageResult:
    """Prosody frames (``tone_frames.parquet``, :func:`prosody_from_audio`), each speech segment
    against the speaker's own baseline (``tone.parquet``) and each person's arousal curve
    (``arousal.parquet``)."""
    hook("tone", completed=0, total=1)
    frames = s.early("tone", prosody_from_audio, p)
    if frames is None:
        return StageResult({"tone.parquet": tone.segment_tone(pd.DataFrame(), pd.DataFrame()),
                            "tone_frames.parquet": pd.DataFrame(columns=tone.FRAME_COLUMNS),
                            "arousal.parquet": pd.DataFrame(columns=tone.AROUSAL_COLUMNS)},
                           {"skipped": "no audio"})
    speech = s.table("derived/speakers.parquet")
    hook("tone", completed=1, total=1)
    return StageResult({"tone.parquet": tone.segment_tone(frames, speech, params=p.tone), "tone_frames.parquet": frames,
                        "arousal.parquet": tone.arousal_curve(frames, speech, params=p.tone)},
                       {"voice": "each person's own track" if "participant_id" in frames else
                        "one shared recording: solo speech only"})


def run_dynamics(s: Session, p: Params, hook: ProgressHook) -> StageResult:
    """Turns, overlaps, backchannels, interruptions and silences (``dynamics.parquet``, events
    contract) with per-person metrics, who-interrupts-whom and turn changes."""
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
    return StageResult({
        "dynamics.parquet": ev.conform(result.events),
        "participants.parquet": result.participants,
        "matrix.parquet": result.matrix.reset_index(names="interrupter"),
        "turn_changes.parquet": result.turn_changes,
    }, {})


def run_expressions(s: Session, p: Params, hook: ProgressHook) -> StageResult:
    """Each person's expression signals over time (``expression_signals.parquet``), their events
    and the candidate moments that combine them with who spoke when (``expressions.parquet``)."""
    face_frames = s.table("derived/faces.parquet")
    speech = s.table("derived/speakers.parquet")
    known = speech.participant_id.isin(s.participant_ids)         # unattributed speech is nobody's turn,
    by_person = expressions.signals_by_person(face_frames, p.expressions)   # computed once for both tables
    events = expressions.expression_events(face_frames, params=p.expressions, speech=speech[known],
                                           unattributed=speech[~known],  # but no one is silent during it
                                           by_person=by_person)
    hook("expressions", completed=1, total=1)
    signals = expressions.expression_signals(face_frames, p.expressions, by_person=by_person)
    return StageResult({"expressions.parquet": events, "expression_signals.parquet": signals}, {})


def _tone_events(s: Session, p: Params) -> pd.DataFrame:
    """The tone stage's passages and heated exchanges (with the dynamics stage's
    interruptions), as contract events."""
    dynamics_events = s.table("derived/dynamics.parquet")
    return tone.tone_events(s.table("derived/tone.parquet"), s.table("derived/arousal.parquet"),
                            s.table("derived/speakers.parquet"),
                            dynamics_events.start_s[dynamics_events.kind == "interruption"].to_numpy(float),
                            s.names, params=p.tone)


def _expression_events(s: Session) -> pd.DataFrame:
    """Expression runs and candidate face moments from the expressions stage, as contract events."""
    expr = s.table("derived/expressions.parquet")
    name = s.names

    def explanation(r) -> str:
        target = name.get(r.target_participant_id, r.target_participant_id) if isinstance(r.target_participant_id, str) else ""
        return ev.explain(r.kind, r.label, name=name.get(r.participant_id, r.participant_id), target=target,
                          start=r.start_s, end=r.end_s, length=ev.fmt_s(r.end_s - r.start_s),
                          when=(f"{ev.fmt_s(r.gap_s)} after" if r.gap_s > 0 else "during")
                          if r.gap_s == r.gap_s else "after",
                          while_target=f", while {target} was speaking" if target else "")

    return pd.DataFrame({
        "start_s": expr.start_s, "end_s": expr.end_s, "kind": expr.kind, "participant_id": expr.participant_id,
        "target_participant_id": expr.target_participant_id, "label": expr.label,
        "expression": expr.label.where(expr.kind == "expression", None), "value": expr.value,
        "confidence": expr.confidence, "explanation": [explanation(r) for r in expr.itertuples()],
    })


def run_events(s: Session, p: Params, hook: ProgressHook) -> StageResult:
    """Every stage's events in one table (``events.parquet``, :data:`analysis.core.events.EVENT_COLUMNS`),
    in time order, with ids ``e00000``..."""
    parts = {"dynamics": s.table("derived/dynamics.parquet"), "tone": _tone_events(s, p),
             "faces": _expression_events(s)}
    parts = [ev.conform(frame).assign(source=source) for source, frame in parts.items() if len(frame)]
    events = pd.concat(parts, ignore_index=True) if parts else ev.empty(ev.STAGE_COLUMNS + ["source"])
    events = events.sort_values(["start_s", "kind"], ignore_index=True)
    events["session_id"] = s.id
    events["event_id"] = [f"e{i:05d}" for i in range(len(events))]
    events["source_version"] = CODE_VERSION
    hook("events", completed=1, total=1)
    return StageResult({"events.parquet": ev.conform(events, ev.EVENT_COLUMNS)}, {})


# ---- consent rules, one per stage that needs one ----------------------------------------------
UNATTRIBUTED = "unattributed"


def _voice_rule(s: Session, result: StageResult) -> tuple[set[str], StageResult | None]:
    """Who agreed to voice analysis, and the result to keep as it is (None: apply the rule)."""
    allowed = set(s.consented("analyse_voice"))
    if s.manifest["media"].get("audio") and not allowed:
        return allowed, StageResult(result.tables, {**result.info, "skipped": "no voice-analysis consent"})
    return allowed, result if allowed == set(s.participant_ids) else None


def unattribute_speech(s: Session, result: StageResult) -> StageResult:
    """Consent (C3) for voice, speakers stage: separating voices in a mixed recording passes
    everyone's audio through voice activity and clustering, but speech of a person who did not
    agree to voice analysis is never attributed to them: it is labelled ``unattributed``."""
    allowed, kept = _voice_rule(s, result)
    if kept is not None:
        return kept
    table = result.tables["speakers.parquet"].copy()
    table.loc[~table.participant_id.isin(allowed), "participant_id"] = UNATTRIBUTED
    return StageResult({**result.tables, "speakers.parquet": table}, {**result.info, "voice_consent": sorted(allowed)})


def hide_unconsented_tone(s: Session, result: StageResult) -> StageResult:
    """Consent (C3) for voice, tone stage: unattributed speech gets no tone summary and no
    arousal curve, and the prosody frames during it are blanked (NaN, no syllable nuclei)."""
    allowed, kept = _voice_rule(s, result)
    if kept is not None:
        return kept
    tone_table = result.tables["tone.parquet"]
    frames = result.tables["tone_frames.parquet"].copy()
    hidden = s.table("derived/speakers.parquet").query(f"participant_id == '{UNATTRIBUTED}'")
    t = frames.t_s.to_numpy() if len(frames) else np.zeros(0)
    mask = np.zeros(len(t), bool)
    for row in hidden.itertuples():
        mask |= (t >= row.start_s) & (t < row.end_s)
    frames.loc[mask, ["loudness_db", "f0_hz"]] = np.nan
    if "nucleus" in frames:
        frames.loc[mask, "nucleus"] = False
    arousal = result.tables["arousal.parquet"]
    return StageResult({"tone.parquet": tone_table[tone_table.participant_id.isin(allowed)].reset_index(drop=True),
                        "tone_frames.parquet": frames,
                        "arousal.parquet": arousal[arousal.participant_id.isin(allowed)].reset_index(drop=True)},
                       result.info)


def consent_applied_in_run(s: Session, result: StageResult) -> StageResult:
    """The stage's run applies consent itself (faces blanks unconsented seats before the model
    sees a frame); stages working only on earlier stages' output inherit their consent."""
    return result


@dataclass(frozen=True)
class Stage:
    """One stage: ``inputs`` are ``media:<key>``, ``consent:<scope>``, ``enrolment`` or an
    earlier stage's name; ``params`` names the :class:`Params` fields that shape its output."""

    name: str
    version: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    run: Callable[[Session, Params, ProgressHook], StageResult]
    consent: Callable[[Session, StageResult], StageResult] = consent_applied_in_run
    early: Callable[[Session, Params], object] | None = None    # work that needs no earlier stage
                                                               # (see the module docstring)


STAGES: tuple[Stage, ...] = (
    Stage("faces", "2", ("media:video", "consent:analyse_face"), ("faces",), run_faces),
    Stage("speakers", "2", ("media:audio", "consent:analyse_voice", "enrolment", "faces"),
          ("diarization", "multitrack", "audiovisual"), run_speakers, unattribute_speech, speakers_from_audio),
    Stage("tone", "2", ("media:audio", "consent:analyse_voice", "speakers"), ("tone",), run_tone, hide_unconsented_tone,
          prosody_from_audio),
    Stage("dynamics", "2", ("speakers", "tone", "consent:analyse_voice"), ("dynamics",), run_dynamics),
    Stage("expressions", "2", ("faces", "speakers"), ("expressions",), run_expressions),
    Stage("events", "3", ("speakers", "tone", "dynamics", "expressions"), ("tone",), run_events),
)
STAGE_BY_NAME = {stage.name: stage for stage in STAGES}


def honour_voice_consent(stage: str, s: Session, outputs: Outputs, info: dict) -> StageResult:
    """Apply stage ``stage``'s own consent rule to its ``outputs`` and ``info``."""
    return STAGE_BY_NAME[stage].consent(s, StageResult(outputs, info))


def stage_params(stage: Stage, params: Params) -> dict[str, dict]:
    """The stage's parameters as recorded: ``{name: value}`` for a stage with one parameter
    class, ``{Params field: {name: value}}`` for a stage with several."""
    groups = {name: dataclasses.asdict(getattr(params, name)) for name in stage.params}
    return next(iter(groups.values())) if len(groups) == 1 else groups


def recorded_groups(stage: Stage, recorded: dict) -> dict[str, dict]:
    """``{Params field: {name: value}}`` from a run record's ``params`` (see :func:`stage_params`)."""
    return {stage.params[0]: recorded} if len(stage.params) == 1 else recorded


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


class Planned(NamedTuple):
    """One stage's place in a run: its ``fingerprint`` and declared ``inputs``' fingerprints,
    its last run record (``previous``) and the files of that run found damaged; ``runs`` says
    whether it runs this time."""

    stage: Stage
    fingerprint: str
    inputs: dict
    recorded: dict
    previous: dict | None
    damaged: list[str]
    runs: bool


def plan(session: Session, params: Params, *, force: bool = False) -> list[Planned]:
    """Every stage's fingerprint and whether it must run: a stage is skipped when its
    fingerprint (code version, parameters, declared inputs' fingerprints; it never depends on
    what an earlier stage wrote) matches its last good run and everything that run wrote is
    intact."""
    fingerprints: dict[str, object] = {}
    planned = []
    for stage in STAGES:
        inputs = {}
        for name in stage.inputs:
            if name not in fingerprints:
                fingerprints[name] = session.input_fingerprint(name)
            inputs[name] = fingerprints[name]
        recorded = stage_params(stage, params)
        fingerprint = hashlib.sha256(json.dumps(
            {"stage": stage.name, "version": stage.version, "code": CODE_VERSION, "params": recorded,
             "participants": session.participant_ids, "inputs": inputs},
            sort_keys=True).encode()).hexdigest()
        previous, damaged = _previous_run(session.store, session.id, stage.name)
        unchanged = (not force and not damaged and previous and previous.get("fingerprint") == fingerprint
                     and previous.get("status") == "ok")
        fingerprints[stage.name] = fingerprint
        planned.append(Planned(stage, fingerprint, inputs, recorded, previous, damaged, not unchanged))
    return planned


def _timed_early(session: Session, stage: Stage, params: Params):
    """``stage.early(session, params)`` (or the work prepared for it), its wall time (s) kept in
    ``session.early_seconds``."""
    started = time.perf_counter()
    result = session.prepared.get(stage.name, stage.early)(session, params)
    session.early_seconds[stage.name] = round(time.perf_counter() - started, 3)
    return result


def cores_for_faces(session: Session, params: Params, planned: list[Planned]) -> int:
    """How many cores the faces stage keeps busy in this run: one per stretch
    (:func:`analysis.stages.faces.chunks`), at most every core (:func:`run_faces`); none when
    it is skipped or the session has no video."""
    faces_step = next(step for step in planned if step.stage.name == "faces")
    if not faces_step.runs or session.manifest["media"].get("video") is None or "faces" in session.prepared:
        return 0
    stretches = faces.chunks(float(session.manifest["duration_s"] or 0.0), params.faces)
    return min(len(stretches), os.cpu_count() or 1)


def session_params(session: Session, params: Params) -> Params:
    """``params`` with what was said of this session at import: its screen layout (a room, a
    video call's gallery), unless the parameters name one themselves."""
    layout = session.manifest.get("layout", "auto")
    if layout != "auto" and params.faces.layout == "auto":
        params = dataclasses.replace(params, faces=dataclasses.replace(params.faces, layout=layout))
    return params


def analyze(store: Store, session_id: str, *, params: Params | None = None, hook: ProgressHook = no_progress,
            force: bool = False, prepared: Prepared | None = None) -> list[dict]:
    """Run every stage of ``session_id``; returns the run records (``status`` is ``ran`` or
    ``skipped`` for stages whose inputs and parameters did not change).

    ``prepared`` maps a stage to work ``(session, params) -> result`` that gives what its own
    early work would (``"faces"``: the raw detections of :func:`face_detections`) from results
    computed beforehand: the live analysis (:mod:`analysis.live`) while a session was recorded.

    Stages run in order. Where the faces stage leaves a core free (:func:`cores_for_faces`: a
    session of one stretch, up to ``FaceParams.chunk_s``, on a computer of two cores or more),
    the early work (``Stage.early``) of the stages that run starts first, one after another in
    a background thread, so the audio work overlaps the faces stage. Where the faces stretches
    keep every core busy, each stage does that work in its own run instead: overlapping it
    would gain little time and hold the voice models (torch: about 1 GB resident) beside every
    faces worker (10 minutes on 2 cores: 2.55 GB summed instead of 1.50 GB). A stage's record
    gives ``seconds`` of its ``run`` and ``early_seconds`` of background early work."""
    params = params or Params.from_environment()
    session = Session(store, session_id, prepared=prepared)
    params = session_params(session, params)
    planned = plan(session, params, force=force)
    in_background = cores_for_faces(session, params, planned) < (os.cpu_count() or 1)
    records = []
    return_large_blocks_when_freed()
    release_free_memory()       # what this process freed before (an import of the session) is not held under the stages
    with background_thread("playback-early") as background:
        for step in planned:
            if in_background and step.runs and step.stage.early is not None:
                session.start_early(step.stage.name, background.submit(_timed_early, session, step.stage, params))
        for index, step in enumerate(planned):
            stage = step.stage
            if not any("media:audio" in later.stage.inputs for later in planned[index:] if later.runs):
                session.release_audio()
            if not step.runs:
                records.append({**step.previous, "this_run": "skipped"})
                hook(stage.name, completed=1, total=1)
                continue
            started = time.perf_counter()
            tables, info = stage.consent(session, stage.run(session, params, hook))
            elapsed = time.perf_counter() - started
            meta = {"stage": stage.name, "stage_version": stage.version, "params": step.recorded, **info}
            for rel, frame in tables.items():
                store.write_table(session_id, f"derived/{rel}", frame, meta)
            outputs = sorted(tables)
            del tables
            release_free_memory()               # what the stage freed does not stay under the next one's peak
            early = {"early_seconds": session.early_seconds[stage.name]} if stage.name in session.early_seconds else {}
            record = {
                "stage": stage.name, "stage_version": stage.version, "code_version": CODE_VERSION,
                "fingerprint": step.fingerprint, "inputs": step.inputs, "params": step.recorded,
                "outputs": outputs, "status": "ok", "finished_utc": utc_now(), "seconds": round(elapsed, 3),
                **early, "python": platform.python_version(), **info,
            }
            store.write_json(session_id, run_json_path(stage.name), record)
            records.append({**record, "this_run": "ran", "repaired": step.damaged})
    store.set_status(session_id, "analysed")
    return records
