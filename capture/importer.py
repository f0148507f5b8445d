"""Importing a recording into the store as a new session.

The file is probed first (limits before decoding), its audio is decoded into the normalised
16 kHz mono track, and only then does the session appear in the store; any failure leaves no
session behind.
"""
from __future__ import annotations

from pathlib import Path

import hashlib

import numpy as np

from capture.errors import BadMediaError, PlaybackError
from capture.media import AUDIO_RATE_HZ, decode_audio, encode_wav, probe
from capture.store import SCHEMA_VERSION, Store, utc_now


def parse_participants(text: str) -> list[dict]:
    """``"Alex,Sam"`` -> participant records ``{id, name, role, seat}`` in seat order (left to right)."""
    names = [name.strip() for name in (text or "").split(",")]
    names = [name for name in names if name]
    if not names:
        raise PlaybackError('Name the people in the recording, e.g. --participants "Alex,Sam".')
    if len({name.casefold() for name in names}) != len(names):
        raise PlaybackError(f"Participant names must differ from each other: {', '.join(names)}.")
    return [{"id": f"p{i + 1}", "name": name, "role": "client", "seat": i} for i, name in enumerate(names)]


def import_media(store: Store, media: Path | str, participants: str | list[dict]) -> str:
    """Create a session from ``media`` and return its id. Raises :class:`BadMediaError` for
    unusable files, leaving the store unchanged."""
    media = Path(media)
    people = parse_participants(participants) if isinstance(participants, str) else participants
    info = probe(media)
    starts = ([info.audio_start_s] if info.has_audio else []) + ([info.video_start_s] if info.has_video else [])
    origin_s = min(starts)
    if info.has_audio:
        audio = decode_audio(media, sr=AUDIO_RATE_HZ)
        lead = int(round((info.audio_start_s - origin_s) * AUDIO_RATE_HZ))
        audio = np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio
        if audio.size < AUDIO_RATE_HZ // 2:
            raise BadMediaError(f"{media.name}: the audio holds under half a second of sound.")
    suffix = media.suffix.lower() or ".bin"
    with store.new_session(duration_s=info.duration_s) as session_id:
        original = f"media/original{suffix}"
        store.add_file(session_id, original, media)
        digests = {"original": _sha256_file(media)}
        if info.has_audio:
            wav = encode_wav(audio, sr=AUDIO_RATE_HZ)
            store.write_bytes(session_id, "media/audio.wav", wav)
            digests["audio"] = hashlib.sha256(wav).hexdigest()
        if info.has_video:
            digests["video"] = digests["original"]
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "session_id": session_id,
            "created_utc": utc_now(),
            "source_name": media.name,
            "participants": people,
            "duration_s": info.duration_s,
            "time_origin_s": origin_s,
            "media": {
                "original": original,
                "audio": "media/audio.wav" if info.has_audio else None,
                "video": original if info.has_video else None,
                "audio_rate_hz": AUDIO_RATE_HZ,
                "sha256": digests,
                "probe": info.to_dict(),
            },
        }
        store.write_json(session_id, "manifest.json", manifest)
    return session_id


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
