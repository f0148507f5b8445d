"""Consent, session by session, from every person present (PRIVACY_SECURITY.md C1-C4).

Each participant gives their own consent with six scopes (:data:`SCOPES`); nothing is
pre-ticked: a scope not given is ``False``. A record keeps the consent text's version and
sha256, the UTC time, how it was collected and by whom, and the path of the participant's
spoken consent clip when they agreed to voice analysis (their voice *enrolment* sample).

``consent.json`` (written through :class:`~capture.store.Store`, so encrypted with the session)::

    {"schema_version": 1, "text_version": "...", "text_sha256": "...",
     "records": [{"participant_id": "p1", "scopes": {<six booleans>}, "text_version": "...",
                  "text_sha256": "...", "collected_utc": "...", "method": "spoken+checkbox",
                  "collected_by": "therapist", "enrolment": "enrolment/p1.wav" | null}, ...]}

Analysis stages ask :func:`consented_ids` which participants a scope covers. A session written
before consent records existed (no ``consent.json``) is treated as fully attested, as it was
imported under the old rules; every session made by ``import`` or ``record`` has records.

Withdrawal policy (:func:`capture.withdrawal.withdraw`): one person's withdrawal stops a running capture and
crypto-erases the whole session. Every stream of a couples or group session holds everyone:
room microphones and per-person microphones pick up all voices, the camera shows everyone,
and the analysis is relational (an interruption involves two people). Keeping "the others'
part" would keep the withdrawn person's voice, face and their side of every exchange, so
nothing of the session is kept; the audit log keeps the fact (ids and time, no names).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

from capture.errors import ConsentError, PlaybackError
from capture.media import AUDIO_RATE_HZ, decode_wav, encode_wav
from capture.store import Store, utc_now

log = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = (
    "record_audio", "record_video", "analyse_voice", "analyse_face", "take_home_copy", "supervision_training",
)
SCOPE_LABELS = {
    "record_audio": "Record my voice (audio)",
    "record_video": "Record my image (video)",
    "analyse_voice": "Analyse my voice (who spoke when, tone), and keep my spoken consent as my voice sample",
    "analyse_face": "Analyse my face (expressions, head movement)",
    "take_home_copy": "A client take-home copy of the session may be made",
    "supervision_training": "The recording may be shown in clinical supervision or training",
}
ROLES = ("client", "therapist", "co-therapist", "group member")
# Scopes a therapist attests by default when importing a recording made elsewhere (those of
# them that the file's streams call for: see :func:`attested_scopes`).
IMPORT_ATTESTED = ("record_audio", "record_video", "analyse_voice", "analyse_face")
AUDIO_SCOPES = ("record_audio", "analyse_voice")
VIDEO_SCOPES = ("record_video", "analyse_face")

CONSENT_TEXT_VERSION = "2025-11-v1"
CONSENT_TEXT = """\
This session may be recorded on this computer only, with Playback, if every person present agrees.
Nothing is sent anywhere. The recording is encrypted and destroyed at the end of its retention period.
Each of you chooses, for yourself, what may happen: recording your voice, recording your image,
analysing your voice (who spoke when, tone of voice), analysing your face (expressions),
a take-home copy for clients, and use in clinical supervision or training.
The analysis offers moments to look at together; it is never a verdict about you.
You may withdraw at any time, during or after the session, by telling the therapist.
Withdrawal stops the recording and destroys the whole session recording and its analysis,
because the recording of a shared conversation cannot be separated person by person.
"""
CONSENT_FILE = "consent.json"


def consent_text_sha256(text: str = CONSENT_TEXT) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def spoken_statement(name: str) -> str:
    """What each participant reads on the microphone: their consent and voice sample."""
    return f"I, {name}, agree to record this session."


def enrolment_rel(participant_id: str) -> str:
    return f"enrolment/{participant_id}.wav"


@dataclass(frozen=True)
class ConsentRecord:
    participant_id: str
    scopes: dict[str, bool]
    text_version: str = CONSENT_TEXT_VERSION
    text_sha256: str = field(default_factory=consent_text_sha256)
    collected_utc: str = field(default_factory=utc_now)
    method: str = "cli"
    collected_by: str = "therapist"
    enrolment: str | None = None

    def allows(self, scope: str) -> bool:
        return bool(self.scopes.get(scope, False))

    def is_current(self) -> bool:
        """Given for the consent text in force now (a changed text needs new consent)."""
        return self.text_sha256 == consent_text_sha256() and self.text_version == CONSENT_TEXT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


def parse_scopes(value: str | Iterable[str] | Mapping[str, bool] | None) -> dict[str, bool]:
    """Scopes as the six booleans. Accepts a mapping, names, ``"a,b"``, ``"all"`` or ``"none"``;
    every scope not named is ``False``. Unknown names raise :class:`PlaybackError`."""
    if value is None:
        return {s: False for s in SCOPES}
    if isinstance(value, Mapping):
        unknown = set(value) - set(SCOPES)
        if unknown:
            raise PlaybackError(f"Unknown consent scope(s) {sorted(unknown)}; choose from {', '.join(SCOPES)}.")
        return {s: bool(value.get(s, False)) for s in SCOPES}
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
    names = [n.replace("-", "_").replace("analyze", "analyse") for n in names if n]
    if names == ["all"]:
        names = list(SCOPES)
    elif names == ["none"]:
        names = []
    unknown = [n for n in names if n not in SCOPES]
    if unknown:
        raise PlaybackError(f"Unknown consent scope(s) {unknown}; choose from {', '.join(SCOPES)} (or 'all', 'none').")
    return {s: s in names for s in SCOPES}


def attested_scopes(*, audio: bool, video: bool) -> tuple[str, ...]:
    """What a therapist attests for an imported file: recording and analysis of the streams it
    holds, no more (an audio-only file attests no video or face scope; a silent video no audio
    or voice scope)."""
    wanted = (AUDIO_SCOPES if audio else ()) + (VIDEO_SCOPES if video else ())
    return tuple(s for s in IMPORT_ATTESTED if s in wanted)


def make_record(participant_id: str, scopes, *, method: str, collected_by: str = "therapist",
                enrolment: str | None = None) -> ConsentRecord:
    return ConsentRecord(participant_id=participant_id, scopes=parse_scopes(scopes), method=method,
                         collected_by=collected_by, enrolment=enrolment)


def require_consent(participants: list[dict], records: Mapping[str, ConsentRecord] | Iterable[ConsentRecord], *,
                    audio: bool, video: bool) -> None:
    """Raise :class:`ConsentError` unless every participant consented (to the current text) to
    what is about to be recorded: ``record_audio`` when ``audio``, ``record_video`` when ``video``."""
    by_id = records if isinstance(records, Mapping) else {r.participant_id: r for r in records}
    needed = (["record_audio"] if audio else []) + (["record_video"] if video else [])
    if not needed:
        raise PlaybackError("Choose at least one microphone or camera to record from.")
    missing = []
    for p in participants:
        record = by_id.get(p["id"])
        if record is None:
            missing.append(f"{p['name']} (no consent yet)")
        elif not record.is_current():
            missing.append(f"{p['name']} (consented to an older consent text; ask again)")
        else:
            lacking = [s for s in needed if not record.allows(s)]
            if lacking:
                missing.append(f"{p['name']} (did not agree to {' and '.join(s.replace('_', ' ') for s in lacking)})")
    if missing:
        raise ConsentError("Recording cannot start until everyone present has consented: missing "
                           + "; ".join(missing) + ".")


# ----- consent.json -------------------------------------------------------------------------
def write_consent(store: Store, session_id: str, records: Iterable[ConsentRecord]) -> None:
    records = list(records)
    store.write_json(session_id, CONSENT_FILE, {
        "schema_version": 1, "text_version": CONSENT_TEXT_VERSION, "text_sha256": consent_text_sha256(),
        "records": [r.to_dict() for r in records],
    })
    for r in records:
        _audit(store, "consent", session_id, scope_code(r))


def read_consent(store: Store, session_id: str) -> dict[str, ConsentRecord] | None:
    """Records by participant id; None for a session made before consent records existed."""
    if not store.exists(session_id, CONSENT_FILE):
        return None
    data = store.read_json(session_id, CONSENT_FILE)
    return {r["participant_id"]: ConsentRecord(**r) for r in data.get("records", [])}


def consented_ids(store: Store, session_id: str, scope: str, participant_ids: list[str]) -> list[str]:
    """The participants (in the given order) whose consent covers ``scope``."""
    if scope not in SCOPES:
        raise PlaybackError(f"Unknown consent scope '{scope}'.")
    records = read_consent(store, session_id)
    if records is None:
        return list(participant_ids)
    return [pid for pid in participant_ids if pid in records and records[pid].allows(scope)]


def store_enrolment(store: Store, session_id: str, record: ConsentRecord, wav: bytes | None) -> ConsentRecord:
    """Keep the spoken consent clip as the participant's voice enrolment sample, only where
    they agreed to voice analysis; returns the record with its ``enrolment`` path set."""
    if wav is None or not record.allows("analyse_voice"):
        return ConsentRecord(**{**record.to_dict(), "enrolment": None})
    y, sr = decode_wav(wav)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if sr != AUDIO_RATE_HZ:
        import librosa

        y = librosa.resample(y, orig_sr=sr, target_sr=AUDIO_RATE_HZ)
    rel = enrolment_rel(record.participant_id)
    store.write_bytes(session_id, rel, encode_wav(y, sr=AUDIO_RATE_HZ))
    return ConsentRecord(**{**record.to_dict(), "enrolment": rel})


# ----- a later change of mind ---------------------------------------------------------------
RECORDING_SCOPES = ("record_audio", "record_video")
ANALYSIS_SCOPES = ("analyse_voice", "analyse_face")
SHARING_SCOPES = ("take_home_copy", "supervision_training")
ANALYSIS_FOLDER = "derived"       # where the analysis of a session keeps its tables


@dataclass(frozen=True)
class ScopeChange:
    """A checked change of one person's consent: their manifest entry, the scopes they now give
    and those they revoke."""

    person: dict
    give: tuple[str, ...]
    revoke: tuple[str, ...]


def check_change(store: Store, session_id: str, participant: str, *, give=(), revoke=()) -> ScopeChange:
    """The change as :func:`change_scopes` will make it, or a :class:`PlaybackError` in one
    sentence (no such person, a scope given and revoked at once, a recording scope); writes
    nothing."""
    manifest = store.manifest(session_id)
    person = next((p for p in manifest["participants"] if participant in (p["id"], p["name"])), None)
    if person is None:
        raise PlaybackError(f"No one called {participant!r} is in session {session_id}: "
                            f"{', '.join(p['name'] for p in manifest['participants'])}.")
    added = tuple(s for s, on in parse_scopes(give).items() if on)
    removed = tuple(s for s, on in parse_scopes(revoke).items() if on)
    if set(added) & set(removed):
        raise PlaybackError(f"A scope cannot be given and revoked at once: {', '.join(sorted(set(added) & set(removed)))}.")
    fixed = [s for s in added + removed if s in RECORDING_SCOPES]
    if fixed:
        raise PlaybackError(f"{' and '.join(s.replace('_', ' ') for s in fixed)} cannot change after the recording: "
                            f"to take {person['name']} out of it, use 'playback withdraw {session_id} "
                            f"--participant {person['name']}' (it erases the session).")
    if read_consent(store, session_id) is None:
        raise PlaybackError(f"Session {session_id} predates consent records; import it again to record consent.")
    return ScopeChange(person, added, removed)


def change_scopes(store: Store, session_id: str, participant: str, *, give=(), revoke=(),
                  collected_by: str = "therapist") -> tuple[ConsentRecord, bool]:
    """Record that ``participant`` (name or id) now agrees to the scopes ``give`` and no longer to
    ``revoke`` (names as :func:`parse_scopes` takes them), e.g. a take-home copy agreed at the
    next session; returns the new record and whether the session's analysis was removed.

    The new record is given under the consent text in force now and replaces the old one
    (audited by ids and scope codes). From the old record it keeps the recording and analysis
    scopes; the sharing scopes (take-home copy, supervision) it keeps only if the old record was
    given under the current text too, since they would now be affirmed under a text the person
    never saw. Recording scopes cannot change here (a recording cannot be un-made: that is
    withdrawal, which erases it). Revoking an analysis scope removes the session's analysis
    (every table under ``derived/``; the voice sample too for voice analysis), so nothing made
    from it stays in view: the session is analysed again without it."""
    change = check_change(store, session_id, participant, give=give, revoke=revoke)
    pid = change.person["id"]
    records = read_consent(store, session_id) or {}
    old = records.get(pid)
    kept = [s for s in SCOPES if s not in SHARING_SCOPES or (old is not None and old.is_current())]
    scopes = {s: bool(old and s in kept and old.allows(s)) for s in SCOPES}
    scopes.update({s: True for s in change.give})
    scopes.update({s: False for s in change.revoke})
    enrolment = old.enrolment if old and scopes["analyse_voice"] else None
    if old and old.enrolment and not enrolment:
        store.delete_file(session_id, old.enrolment)
    record = make_record(pid, scopes, method="changed later", collected_by=collected_by, enrolment=enrolment)
    write_consent(store, session_id, [*(r for other, r in records.items() if other != pid), record])
    dropped = bool(set(change.revoke) & set(ANALYSIS_SCOPES)) and bool(store.list_files(session_id, ANALYSIS_FOLDER))
    if dropped:
        for rel in store.list_files(session_id, ANALYSIS_FOLDER):
            store.delete_file(session_id, rel)
        store.set_status(session_id, "recorded" if store.exists(session_id, "capture.json") else "imported")
    return record, dropped


# ----- withdrawal ---------------------------------------------------------------------------
def _audit(store: Store, action: str, session_id: str, detail: str) -> None:
    """Write to the store's audit log (ids and short codes only, never names)."""
    audit = getattr(store, "audit", None)
    if callable(audit):
        audit(action, session_id, detail=detail)


def scope_code(record: ConsentRecord) -> str:
    """``p1:110100``: the participant id and one digit per scope in :data:`SCOPES` order."""
    return f"{record.participant_id}:" + "".join("1" if record.allows(s) else "0" for s in SCOPES)
