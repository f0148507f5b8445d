"""Importing a recording into the store as a new session.

The file is probed first (limits before decoding), its audio is decoded into the normalised
16 kHz mono track, and only then does the session appear in the store; any failure leaves no
session behind.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np

from capture.consent import (
    ROLES,
    ConsentRecord,
    attested_scopes,
    make_record,
    require_consent,
    write_consent,
)
from capture.errors import BadMediaError, PlaybackError
from capture.media import (
    AUDIO_RATE_HZ,
    MAX_STREAMS,
    MIN_DURATION_S,
    decode_audio,
    encode_wav,
    probe,
    sha256_file,
)
from capture.store import SCHEMA_VERSION, Store, utc_now

# The bundled synthetic sample: what `playback demo` imports and the simulated devices loop.
SAMPLE_VIDEO = Path(__file__).resolve().parent.parent / "sample_data" / "session.mp4"


def parse_participants(text: str) -> list[dict]:
    """``"Alex,Sam"`` -> participant records ``{id, name, role, seat}`` in seat order (left to
    right). A role may follow a colon: ``"Alex,Sam,Dr Lee:therapist"`` (default ``client``)."""
    items = [item.strip() for item in (text or "").split(",")]
    items = [item for item in items if item]
    if not items:
        raise PlaybackError('Name the people in the recording, e.g. --participants "Alex,Sam".')
    people = []
    for i, item in enumerate(items):
        name, _, role = item.partition(":")
        name, role = name.strip(), (role.strip().lower() or "client")
        if role not in ROLES:
            raise PlaybackError(f"'{role}' is not a role; use one of {', '.join(ROLES)} (e.g. \"Dr Lee:therapist\").")
        people.append({"id": f"p{i + 1}", "name": name, "role": role, "seat": i})
    names = [p["name"] for p in people]
    if not all(names):
        raise PlaybackError(f"Every participant needs a name: {text!r}.")
    if len({name.casefold() for name in names}) != len(names):
        raise PlaybackError(f"Participant names must differ from each other: {', '.join(names)}.")
    return people


def participant_by_name(people: list[dict], name: str) -> dict:
    for p in people:
        if name.strip().casefold() in (p["name"].casefold(), p["id"]):
            return p
    raise PlaybackError(f"'{name}' is not one of the participants ({', '.join(p['name'] for p in people)}).")


def consent_records(people: list[dict], consent=None, *, method: str = "attested-by-therapist",
                    audio: bool = True, video: bool = True):
    """Consent records for an import. ``consent`` maps names or ids to scopes (see
    :func:`capture.consent.parse_scopes`); None means the therapist attests that the people in
    a recording made elsewhere agreed to it being recorded and analysed, for the streams it
    holds (``audio``, ``video``; :func:`capture.consent.attested_scopes`: no take-home copy,
    no supervision use)."""
    if consent is None:
        scopes = attested_scopes(audio=audio, video=video)
        return [make_record(p["id"], scopes, method=method) for p in people]
    given = {}
    for key, scopes in consent.items():
        pid = participant_by_name(people, key)["id"]
        given[pid] = scopes if isinstance(scopes, ConsentRecord) else make_record(pid, scopes, method=method)
    return [given.get(p["id"]) or make_record(p["id"], None, method=method) for p in people]


def parse_track(spec: str | tuple) -> tuple[str | None, Path]:
    """``"Alex=alex.wav"`` -> ("Alex", path); ``"call-2.wav"`` -> (None, path)."""
    if isinstance(spec, tuple):
        return spec[0], Path(spec[1])
    name, sep, path = str(spec).partition("=")
    if sep and not Path(spec).exists():
        return name.strip() or None, Path(path.strip())
    return None, Path(spec)


LAYOUTS = ("auto", "seats", "tiles")   # how people appear on screen: found from faces, in a room, a call's gallery


def import_media(store: Store, media: Path | str | None, participants: str | list[dict], *,
                 tracks: list | None = None, consent: dict | None = None, case_id: str | None = None,
                 layout: str = "auto") -> str:
    """Create a session from ``media`` (a video or audio file) and/or ``tracks`` (one audio file
    per microphone or per call participant, ``"Name=path"`` or ``(name, path)`` or a bare path)
    and return its id. Every file is probed (limits checked) before anything is decoded; a
    failure raises :class:`BadMediaError` and leaves the store unchanged.

    With tracks, each becomes ``media/track<N>.wav`` (16 kHz mono, placed on session time by
    its stream start time, padded or cut to the session's duration) and ``media/audio.wav`` is
    their mix. ``consent``: see :func:`consent_records`. ``case_id``: the couple or group the
    session belongs to (:mod:`capture.store.cases`). ``layout``: how the people appear on screen
    (:data:`LAYOUTS`: seated left to right in a room, tiles of a video call's gallery row by
    row, or "auto", found from the faces), kept in the manifest for the faces stage."""
    if layout not in LAYOUTS:
        raise PlaybackError(f"Choose the screen layout from {', '.join(LAYOUTS)} (got {layout!r}).")
    people = parse_participants(participants) if isinstance(participants, str) else participants
    parsed = [parse_track(t) for t in (tracks or [])]
    if media is None and not parsed:
        raise PlaybackError("Give a recording to import, or its audio tracks with --track NAME=FILE.")
    if len(parsed) > MAX_STREAMS:
        raise BadMediaError(f"{len(parsed)} tracks is over the limit of {MAX_STREAMS}.")
    owners = [participant_by_name(people, name)["id"] if name else None for name, _ in parsed]
    if len({o for o in owners if o}) != len([o for o in owners if o]):
        raise PlaybackError("Each participant can own at most one --track.")
    records = consent_records(people, consent)
    # probe everything first (B1, B2): nothing is decoded until every file passed
    info = probe(media) if media is not None else None
    track_infos = [probe(path) for _, path in parsed]
    for (_, path), tinfo in zip(parsed, track_infos):
        if not tinfo.has_audio:
            raise BadMediaError(f"{path.name}: no audio stream; a --track must be an audio recording.")
    # what was recorded must have been agreed to by everyone in it (C1 for imports); an
    # attested import attests only the streams the files hold
    has_audio, has_video = bool(track_infos) or bool(info and info.has_audio), bool(info and info.has_video)
    if consent is None:
        records = consent_records(people, None, audio=has_audio, video=has_video)
    require_consent(people, records, audio=has_audio, video=has_video)
    if info is not None:
        starts = ([info.audio_start_s] if info.has_audio else []) + ([info.video_start_s] if info.has_video else [])
        origin_s = min(starts)
        duration_s = info.duration_s
    else:
        origin_s = 0.0
        duration_s = max(t.duration_s for t in track_infos)
    audio = None
    if info is not None and info.has_audio and not parsed:
        # a truncated file (e.g. a faststart mp4 cut short) keeps the audio that decodes
        audio = decode_audio(media, sr=AUDIO_RATE_HZ, keep_readable=True)
        lead = int(round((info.audio_start_s - origin_s) * AUDIO_RATE_HZ))
        audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio
        if audio.size < AUDIO_RATE_HZ // 2:
            raise BadMediaError(f"{Path(media).name}: the audio holds under half a second of sound.")
    if info is not None:
        # a truncated file can claim more than it holds: trust what the streams really contain
        ends = [len(audio) / AUDIO_RATE_HZ] if audio is not None else []
        if info.has_video:
            ends.append(_video_end_s(Path(media)) - origin_s)
        if ends and max(ends) < duration_s - 0.25:
            duration_s = round(max(ends), 3)
            if duration_s < MIN_DURATION_S:
                raise BadMediaError(f"{Path(media).name}: only {duration_s:.2f} s of it can be read; "
                                    "the file is truncated.")
    if audio is not None and not parsed:
        audio = audio[: int(round(duration_s * AUDIO_RATE_HZ))]
    n = int(round(duration_s * AUDIO_RATE_HZ))
    track_audio = []
    for (_, path), tinfo in zip(parsed, track_infos):
        y = decode_audio(path, sr=AUDIO_RATE_HZ)
        lead = int(round((tinfo.audio_start_s - origin_s) * AUDIO_RATE_HZ))
        y = np.concatenate([np.zeros(max(lead, 0), np.float32), y[max(-lead, 0):]])
        track_audio.append(np.pad(y[:n], (0, max(0, n - len(y)))).astype(np.float32))
    if track_audio:
        audio = np.sum(track_audio, axis=0)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 0.99:
            audio *= 0.99 / peak
    with store.new_session(duration_s=duration_s, case_id=case_id) as session_id:
        digests = {}
        original = None
        if media is not None:
            media = Path(media)
            original = f"media/original{media.suffix.lower() or '.bin'}"
            store.add_file(session_id, original, media)
            digests["original"] = sha256_file(media)
        track_rows = []
        for i, ((_, path), owner, y) in enumerate(zip(parsed, owners, track_audio)):
            rel = f"media/track{i + 1}.wav"
            wav = encode_wav(y, sr=AUDIO_RATE_HZ)
            store.write_bytes(session_id, rel, wav)
            digests[f"track{i + 1}"] = hashlib.sha256(wav).hexdigest()
            track_rows.append({"rel": rel, "participant_id": owner, "source_name": path.name})
        if audio is not None:
            wav = encode_wav(audio, sr=AUDIO_RATE_HZ)
            store.write_bytes(session_id, "media/audio.wav", wav)
            digests["audio"] = hashlib.sha256(wav).hexdigest()
        if original is None:
            original = "media/audio.wav"
            digests["original"] = digests["audio"]
        has_video = bool(info and info.has_video)
        if has_video:
            digests["video"] = digests["original"]
        write_consent(store, session_id, records)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "session_id": session_id,
            "created_utc": utc_now(),
            "source_name": Path(media).name if media is not None else ", ".join(p.name for _, p in parsed),
            "participants": people,
            "duration_s": duration_s,
            "time_origin_s": origin_s,
            "layout": layout,
            "media": {
                "original": original,
                "audio": "media/audio.wav" if audio is not None else None,
                "video": original if has_video else None,
                "tracks": track_rows,
                "audio_rate_hz": AUDIO_RATE_HZ,
                "sha256": digests,
                "probe": info.to_dict() if info is not None else {**track_infos[0].to_dict(), "duration_s": duration_s},
                "track_probes": [t.to_dict() for t in track_infos],
            },
        }
        store.write_json(session_id, "manifest.json", manifest)
    return session_id


def _video_end_s(path: Path) -> float:
    """End time of the first video stream's last packet (demuxed, not decoded), in seconds."""
    end = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.pts is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
    except (av.error.FFmpegError, IndexError):
        pass
    return end
