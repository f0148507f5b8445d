"""Live capture: consent first, then short sealed segments, then one session like an import.

:class:`Recorder` checks every participant's consent *before* it opens a device or writes a
byte (C1). It then creates the session (status ``recording``), holds an OS lock on it for as
long as the process lives, and runs one thread per device. Each thread cuts its stream into
segments of ``segment_s`` seconds; a segment is one self-contained file (a small JSON header
plus a WAV or an MP4 payload) written with :meth:`Store.write_bytes`, i.e. sealed by an atomic
rename. :func:`assemble` turns the sealed segments into the session's media (one 16 kHz mono
track per microphone, their mix as ``media/audio.wav``, one MP4 per camera whose timestamps are
session times) and a manifest like an imported session's. It runs on a clean stop, and on the
next start of Playback for a capture whose process died (:mod:`capture.live.recovery`).

All streams are stamped from one :class:`~capture.live.devices.Clock`; time 0 of the session is the
moment the clock started, so tracks and video line up without any offset.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Mapping

import av
import numpy as np

from capture.consent import (
    ConsentRecord,
    _audit,
    require_consent,
    store_enrolment,
    write_consent,
)
from capture.errors import PlaybackError
from capture.live.devices import Chunk, Clock, Device
from capture.media import AUDIO_RATE_HZ, decode_wav, encode_wav
from capture.store import SCHEMA_VERSION, Store, utc_now

log = logging.getLogger(__name__)

SEGMENT_S = 3.0
SEG_MAGIC = b"PBSEG\x01"
CAPTURE_FILE = "capture.json"
STOP_FILE = "spool/stop.json"
VIDEO_CODEC = "libx264"


class CaptureError(PlaybackError):
    """Capture could not start or went wrong."""


# ----- segments -------------------------------------------------------------------------------
def pack_segment(header: dict, payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return SEG_MAGIC + struct.pack(">I", len(head)) + head + payload


def unpack_segment(data: bytes) -> tuple[dict, bytes]:
    if not data.startswith(SEG_MAGIC) or len(data) < len(SEG_MAGIC) + 4:
        raise CaptureError("not a capture segment")
    (n,) = struct.unpack(">I", data[len(SEG_MAGIC):len(SEG_MAGIC) + 4])
    start = len(SEG_MAGIC) + 4
    return json.loads(data[start:start + n]), data[start + n:]


def encode_video_segment(frames: list[np.ndarray], times: list[float]) -> bytes:
    """An MP4 (H.264, yuv420p) of ``frames`` whose timestamps are the session times ``times``."""
    h, w = frames[0].shape[:2]
    h, w = h - h % 2, w - w % 2
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(VIDEO_CODEC, rate=None)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "26"}
        last = -1
        for rgb, t in zip(frames, times):
            pts = max(int(round(t * 1000)), last + 1)
            last = pts
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def read_segment(data: bytes) -> tuple[dict, np.ndarray | int]:
    """Decode a sealed segment: ``(header, samples)`` for audio, ``(header, frame count)`` for video.
    Raises :class:`CaptureError` if it is not whole."""
    header, payload = unpack_segment(data)
    if header["kind"] == "audio":
        y, sr = decode_wav(payload)
        if sr != header["rate"]:
            raise CaptureError("segment rate does not match its header")
        return header, y
    try:
        with av.open(io.BytesIO(payload)) as container:
            n = sum(1 for _ in container.decode(container.streams.video[0]))
    except (av.error.FFmpegError, IndexError) as exc:
        raise CaptureError(f"video segment unreadable: {exc}") from None
    return header, n


class _Segmenter:
    """Collects one device's chunks and seals a segment every ``segment_s`` seconds."""

    def __init__(self, store: Store, session_id: str, key: str, device: Device, segment_s: float,
                 on_seal: Callable[[dict], None]):
        self.store, self.session_id, self.key, self.device = store, session_id, key, device
        self.segment_s = segment_s
        self.on_seal = on_seal
        self.index = 0
        self.chunks: list[Chunk] = []

    def add(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)
        if self._span() >= self.segment_s:
            self.seal()

    def _span(self) -> float:
        if not self.chunks:
            return 0.0
        if self.device.kind == "audio":
            return self.chunks[-1].t_s + len(self.chunks[-1].data) / self.device.rate - self.chunks[0].t_s
        return self.chunks[-1].t_s - self.chunks[0].t_s + 1.0 / self.device.rate

    def seal(self) -> None:
        if not self.chunks:
            return
        chunks, self.chunks = self.chunks, []
        t0 = chunks[0].t_s
        header = {"device": self.key, "name": self.device.name, "kind": self.device.kind, "index": self.index,
                  "t0_s": round(t0, 6), "rate": self.device.rate}
        if self.device.kind == "audio":
            y = np.concatenate([c.data for c in chunks])
            header.update(t1_s=round(t0 + len(y) / self.device.rate, 6), samples=int(len(y)))
            payload = encode_wav(y, sr=int(self.device.rate))
        else:
            times = [c.t_s for c in chunks]
            header.update(t1_s=round(times[-1] + 1.0 / self.device.rate, 6), frames=len(times),
                          frame_times=[round(t, 4) for t in times])
            payload = encode_video_segment([c.data for c in chunks], times)
        self.store.write_bytes(self.session_id, f"spool/{self.key}/{self.index:06d}.seg", pack_segment(header, payload))
        self.index += 1
        self.on_seal(header)


# ----- the recorder ---------------------------------------------------------------------------
@dataclass
class RecorderState:
    session_id: str | None = None
    sealed: int = 0
    sealed_until_s: float = 0.0
    error: str | None = None
    stopped_reason: str | None = None
    opened: list[str] = field(default_factory=list)


class Recorder:
    """Record ``mics`` and ``cameras`` for ``participants`` once each has consented.

    ``track_owner`` maps a microphone's position to the participant id it belongs to (a
    per-person microphone); ``enrolment`` maps participant ids to their spoken consent clip
    (WAV bytes), kept only where they agreed to voice analysis."""

    def __init__(self, store: Store, participants: list[dict], consents: Mapping[str, ConsentRecord], *,
                 mics: list[Device] = (), cameras: list[Device] = (), segment_s: float = SEGMENT_S,
                 track_owner: Mapping[int, str | None] | None = None, enrolment: Mapping[str, bytes] | None = None,
                 source_name: str = "live recording"):
        self.store = store
        self.participants = list(participants)
        self.consents = dict(consents)
        self.mics, self.cameras = list(mics), list(cameras)
        self.segment_s = segment_s
        self.track_owner = dict(track_owner or {})
        self.enrolment = dict(enrolment or {})
        self.source_name = source_name
        self.state = RecorderState()
        self.clock: Clock | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock_fh = None
        self._segmenters: list[_Segmenter] = []
        self._mutex = threading.Lock()
        self._discard = False

    # -- lifecycle --
    @property
    def session_id(self) -> str | None:
        return self.state.session_id

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def elapsed_s(self) -> float:
        return self.clock.now() if self.clock and self.session_id else 0.0

    def start(self) -> str:
        """Check consent, create the session, open the devices and start capturing; returns the
        session id. With any consent missing, raises :class:`ConsentError` having opened no
        device and written nothing."""
        require_consent(self.participants, self.consents, audio=bool(self.mics), video=bool(self.cameras))
        devices = [(f"mic{i + 1}", d) for i, d in enumerate(self.mics)] + \
                  [(f"cam{i + 1}", d) for i, d in enumerate(self.cameras)]
        capture = {
            "started_utc": utc_now(), "segment_s": self.segment_s,
            "devices": [{"key": k, "kind": d.kind, "name": d.name, "rate": d.rate,
                         "participant_id": self.track_owner.get(i) if d.kind == "audio" else None}
                        for i, (k, d) in enumerate(devices)],
        }
        with self.store.new_session(duration_s=None, status="recording") as session_id:
            records = [store_enrolment(self.store, session_id, self.consents[p["id"]], self.enrolment.get(p["id"]))
                       for p in self.participants]
            write_consent(self.store, session_id, records)
            self.store.write_json(session_id, "manifest.json",
                                  _manifest(session_id, self.participants, self.source_name, capture, state="recording"))
            self.store.write_json(session_id, CAPTURE_FILE, {**capture, "participants": self.participants})
        self.state.session_id = session_id
        self._lock_fh = self.store.capture_lock(session_id)
        self.clock = Clock()
        try:
            for _, device in devices:
                device.open(self.clock)
                self.state.opened.append(device.name)
        except BaseException:
            self._close_devices(devices)
            self._release()
            self.store.delete_session(session_id)   # nothing was recorded
            self.state.session_id = None
            raise
        self._devices = devices
        for key, device in devices:
            seg = _Segmenter(self.store, session_id, key, device, self.segment_s, self._on_seal)
            self._segmenters.append(seg)
            thread = threading.Thread(target=self._run_device, args=(seg,), name=f"capture-{key}", daemon=True)
            self._threads.append(thread)
        watcher = threading.Thread(target=self._watch_stop_requests, name="capture-watch", daemon=True)
        for thread in self._threads:
            thread.start()
        watcher.start()
        log.info("recording session %s from %s", session_id, ", ".join(self.state.opened))
        return session_id

    def _on_seal(self, header: dict) -> None:
        with self._mutex:
            self.state.sealed += 1
            self.state.sealed_until_s = max(self.state.sealed_until_s, header["t1_s"])

    def _run_device(self, seg: _Segmenter) -> None:
        try:
            for chunk in seg.device.chunks(self._stop):
                seg.add(chunk)
            if not self._discard:
                seg.seal()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, capture stops
            self.state.error = f"{seg.device.name}: {exc}"
            log.error("capture from %s failed: %s", seg.device.name, exc)
            self._stop.set()

    def _watch_stop_requests(self) -> None:
        while not self._stop.wait(0.25):
            try:
                if self.store.exists(self.session_id, STOP_FILE):
                    request = self.store.read_json(self.session_id, STOP_FILE)
                    self.state.stopped_reason = request.get("reason", "requested")
                    if self.state.stopped_reason == "withdrawn":
                        self._discard = True
                    self._stop.set()
            except PlaybackError:
                continue

    def wait(self, duration_s: float | None = None, *, tick: Callable[[float], None] | None = None) -> None:
        """Block until ``duration_s`` of recording, a stop request, or every device ended."""
        while not self._stop.is_set() and self.running:
            if duration_s is not None and self.elapsed_s() >= duration_s:
                break
            if tick:
                tick(self.elapsed_s())
            self._stop.wait(0.2)

    def stop(self, *, sealed: Callable[[bool], None] | None = None) -> dict | None:
        """Stop capturing, seal the last segments and assemble the session. Returns the
        manifest, or None when a withdrawal discarded the recording. ``sealed(kept)`` is called
        once the last segments are sealed, before they are assembled (``kept``) or discarded,
        while the session's lock is still held (a live analysis finishes its part there)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._close_devices(self._devices)
        try:
            if sealed is not None:
                sealed(not self._discard)
            if self._discard:
                return None
            return assemble(self.store, self.session_id, interrupted=False)
        finally:
            self._release()

    def withdraw(self, participant_id: str) -> None:
        """A participant withdrew during capture: stop at once and erase the session."""
        self._discard = True
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._close_devices(getattr(self, "_devices", []))
        self._release()
        if self.session_id:
            _audit(self.store, "consent", self.session_id, f"{participant_id}:withdrawn")
            self.store.delete_session(self.session_id, reason="withdraw")
        self.state.stopped_reason = "withdrawn"

    def _close_devices(self, devices) -> None:
        for _, device in devices:
            try:
                device.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing %s: %s", device.name, exc)

    def _release(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None


def request_stop(store: Store, session_id: str, *, reason: str, timeout_s: float = 30.0) -> None:
    """Ask the process recording ``session_id`` to stop, and wait until it has let go."""
    store.write_json(session_id, STOP_FILE, {"reason": reason, "requested_utc": utc_now()})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fh = store.capture_lock(session_id)
        if fh is not None:
            fh.close()
            return
        time.sleep(0.1)
    raise CaptureError(f"The recording of session {session_id} did not stop within {timeout_s:.0f} s.")


def capture_participants(store: Store, session_id: str) -> list[dict]:
    if store.exists(session_id, CAPTURE_FILE):
        return store.read_json(session_id, CAPTURE_FILE).get("participants", [])
    return []


# ----- assembling sealed segments into session media -------------------------------------------
def _manifest(session_id: str, participants: list[dict], source_name: str, capture: dict, *, state: str,
              duration_s: float = 0.0, media: dict | None = None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION, "session_id": session_id, "created_utc": capture.get("started_utc", utc_now()),
        "source_name": source_name, "participants": participants, "duration_s": duration_s, "time_origin_s": 0.0,
        "media": media or {"original": None, "audio": None, "video": None, "tracks": [], "audio_rate_hz": AUDIO_RATE_HZ,
                           "sha256": {}, "probe": {}},
        "capture": {**{k: v for k, v in capture.items() if k != "participants"}, "state": state},
    }


def assemble(store: Store, session_id: str, *, interrupted: bool) -> dict:
    """Build the session's media and manifest from its sealed segments, then drop the spool.
    Unreadable segments (there should be none: each is sealed whole) are counted and skipped."""
    capture = store.read_json(session_id, CAPTURE_FILE)
    participants = capture.get("participants", [])
    store.remove_temporary(session_id)
    by_device: dict[str, list[str]] = {}
    for rel in store.list_files(session_id, "spool"):
        if rel.endswith(".seg"):
            by_device.setdefault(rel.split("/")[1], []).append(rel)
    unreadable = 0
    audio_parts: dict[str, list[tuple[float, np.ndarray]]] = {}
    video_parts: dict[str, _VideoConcat] = {}
    end_s = 0.0
    n_segments = 0
    for key, rels in sorted(by_device.items()):
        for rel in rels:
            try:
                header, payload = unpack_segment(store.read_bytes(session_id, rel))
                if header["kind"] == "audio":
                    y, sr = decode_wav(payload)
                    if sr != AUDIO_RATE_HZ:
                        import librosa

                        y = librosa.resample(y, orig_sr=sr, target_sr=AUDIO_RATE_HZ)
                    audio_parts.setdefault(key, []).append((header["t0_s"], y))
                else:
                    video_parts.setdefault(key, _VideoConcat()).add(payload)
            except (PlaybackError, ValueError, KeyError, RuntimeError) as exc:
                unreadable += 1
                log.warning("segment %s of session %s unreadable: %s", rel, session_id, exc)
                continue
            n_segments += 1
            end_s = max(end_s, header["t1_s"])
    end_s = round(end_s, 3)
    n = int(round(end_s * AUDIO_RATE_HZ))
    devices = {d["key"]: d for d in capture.get("devices", [])}
    tracks, mix, digests = [], None, {}
    for i, key in enumerate(sorted(audio_parts, key=lambda k: int(k[3:]))):
        track = np.zeros(n, np.float32)
        for t0, y in audio_parts[key]:
            start = int(round(t0 * AUDIO_RATE_HZ))
            y = y[: max(0, n - start)]
            track[start:start + len(y)] = y
        rel = f"media/track{i + 1}.wav"
        wav = encode_wav(track, sr=AUDIO_RATE_HZ)
        store.write_bytes(session_id, rel, wav)
        digests[f"track{i + 1}"] = hashlib.sha256(wav).hexdigest()
        tracks.append({"rel": rel, "participant_id": devices.get(key, {}).get("participant_id"),
                       "source_name": devices.get(key, {}).get("name", key)})
        mix = track.copy() if mix is None else mix + track
    audio_rel = None
    if mix is not None:
        peak = float(np.abs(mix).max()) if mix.size else 0.0
        if peak > 0.99:
            mix *= 0.99 / peak
        audio_rel = "media/audio.wav"
        wav = encode_wav(mix, sr=AUDIO_RATE_HZ)
        store.write_bytes(session_id, audio_rel, wav)
        digests["audio"] = hashlib.sha256(wav).hexdigest()
    videos = []
    for i, key in enumerate(sorted(video_parts, key=lambda k: int(k[3:]))):
        rel = f"media/camera{i + 1}.mp4"
        data = video_parts.pop(key).finish()
        store.write_bytes(session_id, rel, data)
        digests[f"camera{i + 1}"] = hashlib.sha256(data).hexdigest()
        del data
        videos.append(rel)
    if videos:
        digests["video"] = digests["camera1"]
    media = {
        "original": videos[0] if videos else audio_rel, "audio": audio_rel, "video": videos[0] if videos else None,
        "videos": videos, "tracks": tracks if len(tracks) > 1 else [], "audio_rate_hz": AUDIO_RATE_HZ,
        "sha256": {**digests, "original": digests.get("video", digests.get("audio"))},
        "probe": {"has_audio": audio_rel is not None, "has_video": bool(videos), "duration_s": round(end_s, 3),
                  "audio_start_s": 0.0, "video_start_s": 0.0},
    }
    state = "interrupted" if interrupted else "complete"
    capture_info = {**capture, "segments": n_segments, "segments_unreadable": unreadable,
                    "recovered_utc" if interrupted else "finished_utc": utc_now()}
    manifest = _manifest(session_id, participants, "live recording", capture_info, state=state,
                         duration_s=round(end_s, 3), media=media)
    store.write_json(session_id, "manifest.json", manifest)
    for rels in by_device.values():
        for rel in rels:
            store.delete_file(session_id, rel)
    store.delete_file(session_id, STOP_FILE)
    store.set_status(session_id, "interrupted" if interrupted else "recorded")
    if hasattr(store, "set_duration"):
        store.set_duration(session_id, round(end_s, 3))
    return manifest


class _VideoConcat:
    """One camera's MP4 segments (each starting with a key frame, timestamps already session
    times) remuxed into one MP4 as they are read, without re-encoding or decoding: only the
    output is kept in memory, never every segment."""

    def __init__(self):
        self.out = io.BytesIO()
        self.container = av.open(self.out, "w", format="mp4")
        self.stream = None
        self.last_dts: int | None = None

    def add(self, payload: bytes) -> None:
        """Append one segment's packets; a segment whose container cannot be read raises
        :class:`CaptureError` and adds nothing."""
        try:
            with av.open(io.BytesIO(payload)) as source:
                src = source.streams.video[0]
                packets = [p for p in source.demux(src) if p.dts is not None]
                if self.stream is None:
                    self.stream = self.container.add_stream_from_template(src)
        except (av.error.FFmpegError, IndexError) as exc:
            raise CaptureError(f"video segment unreadable: {exc}") from None
        if not packets:
            raise CaptureError("video segment has no frames")
        for packet in packets:
            if self.last_dts is not None and packet.dts <= self.last_dts:
                continue
            self.last_dts = packet.dts
            packet.stream = self.stream
            self.container.mux(packet)

    def finish(self) -> bytes:
        """The whole MP4."""
        self.container.close()
        return self.out.getvalue()


def record_clip(device: Device, seconds: float) -> bytes:
    """Record ``seconds`` from an audio ``device`` (a spoken consent statement) as WAV bytes."""
    clock, stop = Clock(), threading.Event()
    device.open(clock)
    parts: list[np.ndarray] = []
    try:
        for chunk in device.chunks(stop):
            parts.append(chunk.data)
            if sum(len(p) for p in parts) >= seconds * device.rate:
                break
    finally:
        device.close()
    if not parts:
        raise CaptureError(f"No sound came from {device.name}.")
    return encode_wav(np.concatenate(parts)[: int(seconds * device.rate)], sr=int(device.rate))
