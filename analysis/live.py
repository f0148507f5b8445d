"""Live analysis: while a session is recorded, the work each stretch allows; at Stop, the rest.

:class:`LiveAnalyser` runs a worker process beside a :class:`~capture.live.recorder.Recorder`.
It polls the session's sealed segments (``spool/``; capture knows nothing of it) and, segment by
segment, does the costly work that needs only that stretch of the session:

* **faces**: raw detections (:class:`faces.FaceDetector`) on camera 1's frames sampled at
  ``FaceParams.sample_fps``, one detector per ``FaceParams.chunk_s`` stretch fed in time order:
  the detections :func:`pipeline.face_detections` makes on the assembled video;
* **voices** (one microphone, the embedded backend): Silero's speech probabilities (its state
  carried from segment to segment), the GE2E embeddings of every sliding window and of speech
  chunks that can no longer change, and the overlap model's windows.

Only what consent allows is analysed (face: the consenting people's places; voice: nothing
without anyone's voice consent). Every ``flush_s`` seconds of media the new results go to the
store under ``derived/live/`` (encrypted like every file). :func:`finish`, after
:func:`~capture.live.recorder.assemble`, runs :func:`pipeline.analyze` with those results as
prepared work: face tracks linked, voices clustered and named, tone, dynamics, expressions,
events. What the results lack (a crash, a lost file, audio that differs from the assembled
mix) is computed from the assembled media.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import sys
import time
from multiprocessing import get_context

import numpy as np
import pandas as pd

from analysis.core.frames import FRAME_S, frame_level_db
from analysis.core.workers import clean_main
from analysis.pipeline import (
    Params,
    ProgressHook,
    Session,
    _detect_stretch,
    analyze,
    face_consent,
    face_detections,
    no_progress,
    session_params,
    speakers_from_audio,
)
from analysis.stages import faces
from analysis.stages.speakers import backends, diarization, overlap
from capture.errors import ModelUnavailableError, PlaybackError, one_line
from capture.live.recorder import CAPTURE_FILE, STOP_FILE, Recorder, unpack_segment
from capture.media import AUDIO_RATE_HZ, decode_wav, encode_wav, iter_video_frames, next_sample_s
from capture.store import Store

log = logging.getLogger(__name__)

LIVE = "derived/live"
FLUSH_S = 30.0          # seconds of media per partial-results file
SETTLE_S = 3.0          # a speech chunk is embedded live once its island ended this long before the newest audio
HOP = 160               # samples per 10 ms frame at 16 kHz


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts],
                                     sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sha(y: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(y, np.float32).tobytes()).hexdigest()


# ----- while recording: the worker ----------------------------------------------------------------
class _LiveFaces:
    """Raw face detections of camera 1's sealed segments, in time order."""

    def __init__(self, params: faces.FaceParams, ids: list[str], visible: faces.Regions | None):
        self.params, self.ids, self.visible = params, ids, visible
        self.fingerprint = _fingerprint(params, ids, visible)
        self.next_s = 0.0                 # where the sampling grid takes its next frame (s)
        self.batch_from_s = 0.0
        self.rows: list[dict] = []
        self.detector: faces.FaceDetector | None = None
        self.stretch = -1

    def add(self, payload: bytes) -> None:
        step = self.params.chunk_s if self.params.chunk_s > 0 else float("inf")
        for t_s, rgb in iter_video_frames(io.BytesIO(payload), fps=self.params.sample_fps, start_s=self.next_s):
            stretch = int(t_s // step) if np.isfinite(step) else 0
            if stretch != self.stretch:          # a new detector where analyze starts a new stretch
                self.close()
                self.detector = faces.FaceDetector(n_participants=len(self.ids), params=self.params, visible=self.visible)
                self.stretch = stretch
            self.rows += self.detector.detect(t_s, rgb)
            self.next_s = next_sample_s(t_s, self.params.sample_fps)

    def flush(self, store: Store, session_id: str, n: int) -> None:
        if self.rows:
            store.write_table(session_id, f"{LIVE}/faces-{n:05d}.parquet", pd.DataFrame(self.rows),
                              {"from_s": self.batch_from_s, "to_s": self.next_s, "fingerprint": self.fingerprint})
        self.rows, self.batch_from_s = [], self.next_s

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()
            self.detector = None


class _LiveVoices:
    """The embedded diarization backend's per-stretch work on one 16 kHz microphone, the samples
    as :func:`~capture.live.recorder.assemble` writes them into ``media/audio.wav``."""

    KEEP_S = 60.0           # seconds of audio kept in memory behind the newest sample

    def __init__(self, params: diarization.DiarizationParams):
        from silero_vad import load_silero_vad

        self.params = params
        self.fingerprint = _fingerprint(params)
        self.vad = load_silero_vad()            # its own instance: its state runs across segments
        self.vad.reset_states()
        self.y = np.zeros(0, np.float32)        # samples from self.offset on
        self.offset = 0
        self.n = 0                              # samples received
        self.peak = 0.0
        self.vad_at = 0                         # samples given to Silero
        self.window_at = 0                      # next sliding window's start frame
        self.overlap_at = 0                     # next overlap window's start sample
        self.all_probs: list[np.ndarray] = []
        self.levels = np.zeros(0)
        self.embedded: set[tuple[int, int]] = set()
        self.last_piece = 0                     # first sample of the newest piece received
        self.cut: list | None = None            # [first, end, sha256] of that piece cut at the session's end
        self._new()

    def _new(self) -> None:
        self.out = {"probs": [], "window_starts": [], "window_emb": [], "chunks": [], "chunk_emb": [],
                    "overlap_starts": [], "overlap_activity": []}
        self.pieces: list[tuple[int, int, str]] = []       # (first, end sample, sha256) of each piece received

    def add(self, t0_s: float, y: np.ndarray, sr: int) -> None:
        if sr != AUDIO_RATE_HZ:
            raise PlaybackError(f"live analysis needs {AUDIO_RATE_HZ} Hz audio, not {sr} Hz")
        y = decode_wav(encode_wav(y, sr=sr))[0]         # as the track is stored
        start = int(round(t0_s * AUDIO_RATE_HZ))
        if start > self.n:
            y = np.r_[np.zeros(start - self.n, np.float32), y]
        elif start < self.n:                     # assemble lets the later segment win; the check at finish sees it
            y = y[self.n - start:]
        self.y = np.r_[self.y, y]
        self.pieces.append((self.n, self.n + len(y), _sha(y)))
        self.last_piece = self.n
        self.n += len(y)
        self.peak = max(self.peak, float(np.abs(y).max()) if len(y) else 0.0)

    def end_at(self, n_samples: int) -> None:
        """The recording ends at sample ``n_samples`` (16 kHz), as assemble makes the track:
        silence after the last audio segment when another device ran longer, the last samples
        cut when the end (to the millisecond) falls before them and Silero has not read them."""
        if n_samples > self.n:
            self.add(self.n / AUDIO_RATE_HZ, np.zeros(n_samples - self.n, np.float32), AUDIO_RATE_HZ)
        elif self.vad_at <= n_samples < self.n and n_samples > self.last_piece:
            self.y, self.n = self.y[:n_samples - self.offset], n_samples
            self.cut = [self.last_piece, n_samples, _sha(self._part(self.last_piece, n_samples))]

    def _part(self, a: int, b: int) -> np.ndarray:
        return self.y[a - self.offset:b - self.offset]

    def process(self, *, final: bool) -> None:
        import torch

        whole = self.n - self.n % 512
        with torch.no_grad():
            probs = [self.vad(torch.from_numpy(self._part(i, i + 512).copy())[None], AUDIO_RATE_HZ).numpy()[0]
                     for i in range(self.vad_at, whole, 512)]
            self.vad_at = whole
            if final and whole < self.n:         # the last chunk padded with zeros, as diarization.vad_probabilities does
                last = np.zeros(512, np.float32)
                last[:self.n - whole] = self._part(whole, self.n)
                probs.append(self.vad(torch.from_numpy(last)[None], AUDIO_RATE_HZ).numpy()[0])
                self.vad_at = self.n
        if probs:
            self.out["probs"].append(np.concatenate(probs))
            self.all_probs.append(self.out["probs"][-1])
        done = len(self.levels) * HOP
        upto = self.n if final else self.n - (self.n - done) % HOP      # the last frame padded at the end
        self.levels = np.r_[self.levels, frame_level_db(self._part(done, upto), AUDIO_RATE_HZ)]
        self._windows(final=final)
        self._chunks(final=final)
        self._overlap(final=final)
        keep = max(self.offset, min(self.n - int(self.KEEP_S * AUDIO_RATE_HZ), self.vad_at) // HOP * HOP)
        self.y, self.offset = self.y[keep - self.offset:], keep

    def _n_frames(self) -> int:
        return int(np.ceil(self.n / AUDIO_RATE_HZ / FRAME_S))      # as diarization.speech_mask counts them

    def _windows(self, *, final: bool) -> None:
        win = int(self.params.window_s / FRAME_S)
        hop = int(self.params.hop_s / FRAME_S)
        grid = diarization.window_grid(self._n_frames() if final else self.n // HOP - 2, params=self.params)
        starts = [s for s in grid if s >= self.window_at]
        if not starts:
            return
        mel = diarization.ge2e_mel_span(self.y, starts[0], starts[-1] + win, peak=self.peak, offset=self.offset)
        self.out["window_starts"].append(np.asarray(starts))
        self.out["window_emb"].append(diarization.embed_windows(mel, starts, win, first=starts[0]))
        self.window_at = starts[-1] + hop

    def _chunks(self, *, final: bool) -> None:
        if not self.all_probs:
            return
        probs = np.concatenate(self.all_probs)
        n_frames = self._n_frames() if final else min(len(self.levels), self.vad_at // HOP)
        if n_frames < 100:
            return
        mask = diarization.mask_from_vad(probs, self.levels[:n_frames], n_frames, AUDIO_RATE_HZ, params=self.params)
        settled = n_frames - (0 if final else int(SETTLE_S / FRAME_S))
        new = [(a, b) for a, b in diarization.speech_chunks(mask, params=self.params)
               if (a, b) not in self.embedded and b < settled and a * HOP - 2 * HOP >= self.offset]
        if not new:
            return
        first, last = new[0][0], max(b for _, b in new)
        mel = diarization.ge2e_mel_span(self.y, first, last, peak=self.peak, offset=self.offset)
        self.out["chunks"].append(np.asarray(new))
        self.out["chunk_emb"].append(diarization.chunk_embeddings(mel, [(a - first, b - first) for a, b in new]))
        self.embedded.update(new)

    def _overlap(self, *, final: bool) -> None:
        op = self.params.overlap
        win, hop = int(overlap.WINDOW_S * AUDIO_RATE_HZ), int(op.step_s * AUDIO_RATE_HZ)
        grid = overlap.window_starts(self.n, params=op) if final else range(0, self.n - win + 1, hop)
        starts = [s for s in grid if s >= self.overlap_at or (final and s % hop)]   # and the window ending the recording
        if not op.enabled or not starts:
            return
        self.out["overlap_starts"].append(np.asarray(starts))
        self.out["overlap_activity"].append(overlap.activity_at(self.y, starts, params=op, offset=self.offset))
        self.overlap_at = starts[-1] + hop

    def flush(self, store: Store, session_id: str, n: int) -> None:
        arrays = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.out.items()}
        meta = {"pieces": self.pieces, "fingerprint": self.fingerprint, "cut": self.cut}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
        store.write_bytes(session_id, f"{LIVE}/voices-{n:05d}.npz", buffer.getvalue())
        self._new()


class _Worker:
    """The live analysis of one session: what its consent and devices allow."""

    def __init__(self, store: Store, session_id: str, params: Params, flush_s: float):
        self.store, self.id, self.flush_s = store, session_id, flush_s
        session = Session(store, session_id)
        self.params = params = session_params(session, params)
        devices = store.read_json(session_id, CAPTURE_FILE).get("devices", [])
        mics = [d for d in devices if d["kind"] == "audio"]
        ids, visible = face_consent(session, params)
        self.faces = (_LiveFaces(params.faces, ids, visible)
                      if ids and any(d["key"] == "cam1" for d in devices) else None)
        single_embedded = params.diarization.backend == "embedded" and not params.diarization.pyannote_pipeline
        self.voices = (_LiveVoices(params.diarization) if len(mics) == 1 and mics[0]["rate"] == AUDIO_RATE_HZ
                       and session.consented("analyse_voice") and single_embedded else None)
        self.devices = [d["key"] for d in devices]
        self.ends: dict[str, float] = {}      # device -> end (s) of its last segment analysed
        self.next = {"cam1": 0, "mic1": 0}
        self.since = {"cam1": 0.0, "mic1": 0.0}
        self.files = {"cam1": 0, "mic1": 0}

    def step(self, *, final: bool = False) -> bool:
        """Analyse the segments sealed since the last step; True if there were any."""
        worked = False
        for key, part in (("cam1", self.faces), ("mic1", self.voices)):
            if part is None:
                continue
            while self.store.exists(self.id, rel := f"spool/{key}/{self.next[key]:06d}.seg"):
                header, payload = unpack_segment(self.store.read_bytes(self.id, rel))
                if key == "cam1":
                    part.add(payload)
                else:
                    part.add(header["t0_s"], *decode_wav(payload))
                self.since[key] += header["t1_s"] - header["t0_s"]
                self.ends[key] = header["t1_s"]
                self.next[key] += 1
                worked = True
                if key == "mic1":
                    part.process(final=False)
            if key == "mic1" and final:
                part.end_at(int(round(self._end_s() * AUDIO_RATE_HZ)))
                part.process(final=True)
            if (self.since[key] >= self.flush_s or final) and self._session_kept():
                part.flush(self.store, self.id, self.files[key])
                self.files[key] += 1
                self.since[key] = 0.0
        return worked

    def _end_s(self) -> float:
        """Where :func:`~capture.live.recorder.assemble` ends the session (s): the latest end of
        any device's last sealed segment, to the millisecond."""
        ends = dict(self.ends)
        for key in self.devices:
            if key not in ends and (rels := sorted(self.store.list_files(self.id, f"spool/{key}"))):
                ends[key] = unpack_segment(self.store.read_bytes(self.id, rels[-1]))[0]["t1_s"]
        return round(max(ends.values(), default=0.0), 3)

    def _session_kept(self) -> bool:
        """False once the session is being erased (a withdrawal): nothing more is written."""
        if not self.store.exists(self.id, "manifest.json"):
            return False
        if self.store.exists(self.id, STOP_FILE):
            return self.store.read_json(self.id, STOP_FILE).get("reason") != "withdrawn"
        return True

    def close(self) -> None:
        if self.faces is not None:
            self.faces.close()


def _serve(root: str, session_id: str, key: bytes | None, params: Params, done, poll_s: float, flush_s: float) -> None:
    """The worker process: analyse sealed segments until ``done.value`` is set, then the rest, then stop."""
    import multiprocessing
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl+C stops the recording; the recorder then drains this
    torch.set_num_threads(1)            # a core for the recorder
    parent = multiprocessing.parent_process()
    worker = None
    try:
        worker = _Worker(Store.for_one_session(root, session_id, key), session_id, params, flush_s)
        while parent is None or parent.is_alive():      # a recorder killed (recovery assembles it later)
            if done.value:
                worker.step(final=True)
                return
            if not worker.step():
                waited = time.monotonic() + poll_s
                while not done.value and time.monotonic() < waited:     # a drain seen within 50 ms
                    time.sleep(0.05)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback: the finish computes the rest
        print(f"playback: the live analysis stopped ({one_line(exc)}); what it had not done is computed at Stop.",
              file=sys.stderr)
        sys.exit(1)
    finally:
        if worker is not None:
            worker.close()


class LiveAnalyser:
    """Analyse ``session_id`` while it is recorded, in a worker process (see the module docstring).

    :meth:`start` after the recorder started; :meth:`drain` once its last segments are sealed
    (before they are assembled); :meth:`cancel` on a withdrawal."""

    def __init__(self, store: Store, session_id: str, *, params: Params | None = None, poll_s: float = 0.5,
                 flush_s: float = FLUSH_S):
        self.store, self.session_id = store, session_id
        self.params = params or Params.from_environment()
        self.poll_s, self.flush_s = poll_s, flush_s
        self._process = None
        self._done = None

    def start(self) -> "LiveAnalyser":
        ctx = get_context("spawn")
        # A flag in shared memory with no lock: a multiprocessing.Event's set() waits for every
        # process asleep in its wait() to wake, so a worker killed while waiting (SIGKILL, the
        # out-of-memory killer) made Stop hang for ever.
        self._done = ctx.RawValue("b", 0)
        key = None if self.store.keys.plaintext else self.store.keys.data_key(self.session_id)
        self._process = ctx.Process(target=_serve, name="playback-live", daemon=True,
                                    args=(str(self.store.root), self.session_id, key, self.params, self._done,
                                          self.poll_s, self.flush_s))
        with clean_main():
            self._process.start()
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def drain(self, timeout_s: float = 120.0) -> bool:
        """Analyse what is left and stop (at most ``timeout_s`` seconds); True when it ended
        well. Call it after the recorder sealed its last segments, before they are assembled."""
        if self._process is None:
            return False
        self._done.value = 1
        self._process.join(timeout_s)
        if self._process.is_alive():
            log.warning("live analysis did not finish within %.0f s; the rest is computed at Stop", timeout_s)
            self.cancel()
            return False
        return self._process.exitcode == 0

    def cancel(self) -> None:
        """Stop at once, writing nothing more (a withdrawal)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(10)


# ----- after Stop: finish from the partial results ----------------------------------------------------
class LivePartials:
    """The partial results a live analysis left for ``session_id`` (``derived/live/``)."""

    def __init__(self, store: Store, session_id: str):
        self.store, self.id = store, session_id
        self.files = sorted(store.list_files(session_id, LIVE))
        self.report: dict[str, str] = {}

    def _named(self, prefix: str) -> list[str]:
        return [rel for rel in self.files if rel.rsplit("/", 1)[-1].startswith(prefix)]

    # -- faces --
    def detections(self, s: Session, p: Params) -> pd.DataFrame:
        """What :func:`pipeline.face_detections` gives, from the live detections, the stretches
        they lack computed from the assembled video."""
        ids, visible = face_consent(s, p)
        wanted = _fingerprint(p.faces, ids, visible)
        parts = []
        for rel in self._named("faces-"):
            try:
                frame, meta = self.store.read_table(self.id, rel)
            except PlaybackError as exc:
                log.warning("live faces %s unreadable: %s", rel, exc)
                continue
            if meta.get("fingerprint") == wanted:
                parts.append((meta["from_s"], meta["to_s"], frame))
        if not parts:           # none usable: the stage's own work, its stretches on every core
            self.report["faces"] = "computed at Stop (no live results)"
            return face_detections(s, p)
        parts.sort(key=lambda part: part[0])
        duration = float(s.manifest["duration_s"] or 0.0)
        pieces, at, missing = [], 0.0, 0
        for start, end, frame in parts + [(float("inf"), None, None)]:
            if start > at + 1e-9 and at < duration:
                gap = self._detect_gap(s, p, ids, visible, at, None if frame is None else start)
                missing += sum(len(piece.t_s.unique()) for piece in gap if len(piece))
                pieces += gap
            if frame is not None:
                pieces.append(frame)
                at = end
        samples = sum(len(piece.t_s.unique()) for piece in pieces if len(piece))
        self.report["faces"] = f"live, {missing} of {samples} samples computed at Stop"
        pieces = [piece for piece in pieces if len(piece)]
        return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()

    def _detect_gap(self, s: Session, p: Params, ids, visible, start_s: float, end_s: float | None) -> list[pd.DataFrame]:
        """Detections of ``start_s``..``end_s`` of the assembled video, a new detector at each
        ``chunk_s`` stretch as :func:`pipeline.face_detections` starts one."""
        step = p.faces.chunk_s
        limit = min(end_s if end_s is not None else np.inf, float(s.manifest["duration_s"] or 0.0))
        cuts = [k * step for k in range(int(start_s // step) + 1, int(np.ceil(limit / step)))] if step > 0 else []
        bounds, ends = [start_s, *cuts], [*cuts, end_s]
        return [_detect_stretch(str(s.store.root), s.id, None, s.manifest["media"]["video"], a, b, len(ids), p.faces,
                                s.manifest.get("time_origin_s", 0.0), visible, store=s.store)
                for a, b in zip(bounds, ends)]

    # -- voices --
    def voice_frames(self, y: np.ndarray, sr: int, *, n_speakers: int | None,
                     params: diarization.DiarizationParams) -> diarization.FrameDiarization:
        """What :func:`backends.diarize_backend_frames` gives, from the live voice work, what it
        lacks computed from the assembled audio ``y`` (``sr`` Hz)."""
        if params.backend != "embedded" or sr != AUDIO_RATE_HZ:
            self.report["speakers"] = "computed at Stop (not the embedded backend)"
            return backends.diarize_backend_frames(y, sr, n_speakers=n_speakers, params=params)
        features = self._voice_features(y, params)
        return diarization.diarize_frames(y, sr, n_speakers=n_speakers, params=params, features=features)

    def _voice_batches(self, y: np.ndarray, params: diarization.DiarizationParams) -> tuple[list[dict], int]:
        """The live voice files in order and the sample up to which what they analysed is ``y``
        (every piece received checked against the assembled audio by its sha256)."""
        wanted, upto, batches, pieces, cut = _fingerprint(params), 0, [], [], None
        for rel in self._named("voices-"):
            try:
                data = np.load(io.BytesIO(self.store.read_bytes(self.id, rel)), allow_pickle=False)
                batch = {k: data[k] for k in data.files}
            except (PlaybackError, ValueError, OSError) as exc:
                log.warning("live voices %s unreadable: %s", rel, exc)
                break
            meta = json.loads(str(batch["meta"]))
            if meta["fingerprint"] != wanted:
                break
            batches.append(batch)
            pieces += meta["pieces"]
            cut = meta.get("cut")
        for first, end, sha in pieces:
            if cut and cut[:2] == [first, len(y)] and end > len(y):      # the last piece, cut at the end
                end, sha = cut[1], cut[2]
            if first != upto or end > len(y) or sha != _sha(y[first:end]):
                break                             # a file lost, or audio other than the assembled mix
            upto = end
        return batches, upto

    def _voice_features(self, y: np.ndarray, params: diarization.DiarizationParams) -> diarization.VoiceFeatures:
        sr = AUDIO_RATE_HZ
        batches, upto = self._voice_batches(y, params)

        def joined(key: str, shape: tuple) -> np.ndarray:
            parts = [b[key] for b in batches if b[key].size]
            return np.concatenate(parts) if parts else np.zeros(shape)

        probs = _vad_completed(joined("probs", (0,)), y, upto)
        mask = diarization.speech_mask(y, sr, params=params, probabilities=probs)
        chunks = diarization.speech_chunks(mask, params=params)
        peak = float(np.abs(y).max()) if len(y) else 0.0
        win = int(params.window_s / FRAME_S)
        trusted_frames = upto // HOP - 2 if upto < len(y) else np.inf

        # chunk embeddings: live where the live chunk is the same and lies in the trusted audio
        live_chunks = {tuple(map(int, c)): e for c, e in zip(joined("chunks", (0, 2)), joined("chunk_emb", (0, 256)))
                       if c[1] <= trusted_frames}
        chunk_emb = np.zeros((len(chunks), 256), np.float32)
        todo = [i for i, c in enumerate(chunks) if c not in live_chunks]
        for i, c in enumerate(chunks):
            if c in live_chunks:
                chunk_emb[i] = live_chunks[c]
        for i in todo:
            a, b = chunks[i]
            mel = diarization.ge2e_mel_span(y, a, b, peak=peak)
            chunk_emb[i] = diarization.chunk_embeddings(mel, [(0, b - a)])[0]

        # sliding windows
        starts = diarization.speech_window_starts(mask, params=params) if chunks else []
        live_windows = {int(s): e for s, e in zip(joined("window_starts", (0,)), joined("window_emb", (0, 256)))
                        if s + win <= trusted_frames}
        window_emb = np.zeros((len(starts), 256), np.float32)
        missing = [s for s in starts if s not in live_windows]
        for i, s in enumerate(starts):
            if s in live_windows:
                window_emb[i] = live_windows[s]
        for run in _runs_of(missing, int(params.hop_s / FRAME_S)):
            mel = diarization.ge2e_mel_span(y, run[0], run[-1] + win, peak=peak)
            emb = diarization.embed_windows(mel, run, win, first=run[0])
            for s, e in zip(run, emb):
                window_emb[starts.index(s)] = e

        # overlap windows
        windows, note = self._overlap_windows(y, joined, upto, params.overlap)
        self.report["speakers"] = (f"live, {len(todo)} of {len(chunks)} chunks, {len(missing)} of {len(starts)} "
                                   f"windows computed at Stop, voice activity live"
                                   f"{'' if upto >= len(y) else f' to {upto / sr:.1f} s, the rest at Stop'}")
        return diarization.VoiceFeatures(mask, chunks, chunk_emb, np.asarray(starts, float) * FRAME_S, window_emb,
                                         windows, note)

    def _overlap_windows(self, y, joined, upto: int, params: overlap.OverlapParams):
        """The overlap model's windows of ``y``: live where they lie in the trusted audio."""
        sr = AUDIO_RATE_HZ
        if not params.enabled or len(y) < sr * 0.5:
            return diarization.overlap_windows(y, sr, params=params)
        win = int(overlap.WINDOW_S * sr)
        live = {int(s): a for s, a in zip(joined("overlap_starts", (0,)), joined("overlap_activity", (0, 1, 3)))
                if s + win <= upto}
        starts = overlap.window_starts(len(y), params=params)
        missing = [s for s in starts if s not in live]
        try:
            computed = dict(zip(missing, overlap.activity_at(y, missing, params=params))) if missing else {}
        except ModelUnavailableError:
            return diarization.overlap_windows(y, sr, params=params)
        return (np.array(starts) / sr, np.stack([live[s] if s in live else computed[s] for s in starts])), ""

    def prepared(self) -> dict:
        """Work for :func:`pipeline.analyze`'s ``prepared``: faces and speakers from the partials."""
        return {"faces": self.detections,
                "speakers": functools.partial(speakers_from_audio, frames_of=self.voice_frames)}

    def remove(self) -> None:
        for rel in self.files:
            self.store.delete_file(self.id, rel)


VAD_WARMUP_S = 10.0     # Silero's state is rebuilt over this much audio before the samples it scores afresh


def _vad_completed(live: np.ndarray, y: np.ndarray, upto: int) -> np.ndarray:
    """Silero's probabilities over ``y`` (16 kHz): the ``live`` ones of the chunks inside its
    first ``upto`` samples (checked), the rest computed now, the model's state rebuilt over
    :data:`VAD_WARMUP_S` before them (from the start when that reaches it: exact)."""
    trusted = len(live) if upto >= len(y) else min(upto // 512, len(live))
    warmup = int(VAD_WARMUP_S * AUDIO_RATE_HZ / 512)
    n_chunks = int(np.ceil(len(y) / 512))
    if trusted >= n_chunks:
        return live[:n_chunks]
    start = max(trusted - warmup, 0) if trusted > warmup else 0
    rest = diarization.vad_probabilities(y[start * 512:], AUDIO_RATE_HZ) if len(y) >= 512 else np.zeros(n_chunks)
    return np.r_[live[:trusted], rest[trusted - start:]] if start else rest


def _runs_of(starts: list[int], hop: int) -> list[list[int]]:
    """``starts`` split into runs ``hop`` apart."""
    runs: list[list[int]] = []
    for s in starts:
        if runs and s - runs[-1][-1] == hop:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


def stop_recording(recorder: Recorder, live: LiveAnalyser | None, *, params: Params | None = None,
                   hook: ProgressHook = no_progress) -> tuple[dict | None, dict | None]:
    """Stop ``recorder``; with ``live``, its analysis finishes the last sealed segments before
    they are assembled, then :func:`finish` runs. Returns the manifest (None after a withdrawal)
    and the finish's report (None without live analysis or after a withdrawal), whose ``delay_s``
    is the time (s) from Stop to the results."""
    stopped = time.perf_counter()

    def sealed(kept: bool) -> None:
        if kept:
            live.drain()
        else:
            live.cancel()

    manifest = recorder.stop(sealed=sealed if live is not None else None)
    if manifest is None or live is None:
        return manifest, None
    report = finish(store=recorder.store, session_id=recorder.session_id, params=params, hook=hook)
    return manifest, {**report, "delay_s": round(time.perf_counter() - stopped, 3)}


def finish(store: Store, session_id: str, *, params: Params | None = None, hook: ProgressHook = no_progress,
           force: bool = False) -> dict:
    """Analyse a recorded session from its live partial results (see the module docstring), then
    drop them. Returns ``seconds`` (wall time), ``stages`` (each stage's run seconds), ``live``
    (what came from the live analysis, what was computed here) and the run ``records``."""
    started = time.perf_counter()
    partials = LivePartials(store, session_id)
    records = analyze(store, session_id, params=params, hook=hook, prepared=partials.prepared(), force=force)
    partials.remove()
    return {"seconds": round(time.perf_counter() - started, 3),
            "stages": {r["stage"]: r.get("seconds") for r in records if r.get("this_run") == "ran"},
            "live": partials.report, "records": records}
