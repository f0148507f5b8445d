"""Capture devices behind one interface, all stamped from one monotonic clock.

A device is opened with the session's :class:`Clock` and then yields :class:`Chunk` objects:
audio blocks (float32 mono at the device's rate) or video frames (RGB uint8), each with the
clock time of its first sample. Real devices: :class:`Microphone` (sounddevice / PortAudio) and
:class:`Camera` (OpenCV). File-backed devices, used by tests and ``--simulate``:
:class:`WavMicrophone` (a WAV or any audio file played as a microphone) and :class:`FileCamera`
(a video file played as a camera), both at real-time pace.

Constructors only store parameters; nothing touches hardware or files until :meth:`open`,
so a consent check can run before any device is opened (C1).
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from capture.errors import PlaybackError
from capture.media import decode_audio, iter_video_frames, probe

AUDIO_BLOCK_S = 0.1


class DeviceError(PlaybackError):
    """A capture device is missing, busy or its system library is not installed."""


class Clock:
    """One monotonic clock for every stream of a session; ``now()`` is seconds since start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def sleep_until(self, t_s: float, stop: threading.Event | None = None) -> bool:
        """Sleep until clock time ``t_s``; False if ``stop`` was set meanwhile."""
        delay = t_s - self.now()
        if delay <= 0:
            return not (stop and stop.is_set())
        if stop is not None:
            return not stop.wait(delay)
        time.sleep(delay)
        return True


@dataclass
class Chunk:
    t_s: float                 # clock time of the first sample / the frame
    data: np.ndarray           # audio: float32 (n,) ; video: uint8 (h, w, 3) RGB


class Device(Protocol):
    kind: str                  # "audio" or "video"
    name: str
    rate: float                # audio: samples per second; video: nominal frames per second

    def open(self, clock: Clock) -> None: ...
    def chunks(self, stop: threading.Event) -> Iterator[Chunk]: ...
    def close(self) -> None: ...


# ----- file-backed devices --------------------------------------------------------------------
class WavMicrophone:
    """An audio file played as a microphone in real time, 16 kHz mono blocks of 0.1 s."""

    kind = "audio"

    def __init__(self, path: Path | str, *, rate: int = 16_000, loop: bool = False):
        self.path = Path(path)
        self.rate = rate
        self.loop = loop
        self.name = f"file:{self.path.name}"
        self.opened = 0
        self._y: np.ndarray | None = None
        self._clock: Clock | None = None

    def open(self, clock: Clock) -> None:
        self.opened += 1
        if not self.path.is_file():
            raise DeviceError(f"Simulated microphone: no file {self.path}.")
        self._y = decode_audio(self.path, sr=self.rate)
        self._clock = clock

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        assert self._y is not None and self._clock is not None, "open() first"
        block = int(self.rate * AUDIO_BLOCK_S)
        start = self._clock.now()
        i = 0
        while not stop.is_set():
            if i >= len(self._y):
                if not self.loop:
                    return
                i, start = 0, start + len(self._y) / self.rate
            data = self._y[i:i + block]
            t = start + i / self.rate
            # a real microphone delivers a block once it has been heard
            if not self._clock.sleep_until(t + len(data) / self.rate, stop):
                return
            yield Chunk(t, data.astype(np.float32))
            i += block

    def close(self) -> None:
        self._y = None


class FileCamera:
    """A video file played as a camera in real time (frames by timestamp, at most ``fps``)."""

    kind = "video"

    def __init__(self, path: Path | str, *, fps: float = 15.0, loop: bool = False):
        self.path = Path(path)
        self.rate = fps
        self.loop = loop
        self.name = f"file:{self.path.name}"
        self.opened = 0
        self._clock: Clock | None = None

    def open(self, clock: Clock) -> None:
        self.opened += 1
        info = probe(self.path)
        if not info.has_video:
            raise DeviceError(f"Simulated camera: {self.path.name} holds no video.")
        self._clock = clock

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        assert self._clock is not None, "open() first"
        start = self._clock.now()
        while not stop.is_set():
            last = 0.0
            for t, rgb in iter_video_frames(self.path, fps=self.rate):
                if not self._clock.sleep_until(start + t, stop):
                    return
                last = t
                yield Chunk(self._clock.now(), rgb)
            if not self.loop:
                return
            start += last + 1.0 / self.rate

    def close(self) -> None:
        pass


# ----- real devices -------------------------------------------------------------------------
def _sounddevice():
    try:
        import sounddevice
    except OSError:
        raise DeviceError("Microphones need the PortAudio library, which is not installed "
                          "(Debian/Ubuntu: sudo apt-get install libportaudio2; macOS: brew install portaudio). "
                          "Use --simulate to record from files instead.") from None
    except ImportError:
        raise DeviceError("Microphones need the 'sounddevice' package: pip install sounddevice.") from None
    return sounddevice


class Microphone:
    """A real microphone through sounddevice (PortAudio), mono at ``rate`` Hz."""

    kind = "audio"

    def __init__(self, device: str | int | None = None, *, rate: int = 16_000):
        self.device = device
        self.rate = rate
        self.name = f"mic:{device if device is not None else 'default'}"
        self.opened = 0
        self._stream = None
        self._queue: queue.Queue = queue.Queue()
        self._clock: Clock | None = None
        self._samples = 0
        self._start_t: float | None = None

    def open(self, clock: Clock) -> None:
        sd = _sounddevice()
        self.opened += 1
        self._clock = clock

        def callback(indata, frames, info, status):
            # the first block fixes the stream's start on the session clock (minus its
            # input latency); after that the sample count is the clock (no drift from jitter)
            if self._start_t is None:
                self._start_t = clock.now() - frames / self.rate - float(getattr(self._stream, "latency", 0) or 0)
            t = self._start_t + self._samples / self.rate
            self._samples += frames
            self._queue.put(Chunk(t, indata[:, 0].astype(np.float32).copy()))

        try:
            self._stream = sd.InputStream(device=self.device, channels=1, samplerate=self.rate, dtype="float32",
                                          blocksize=int(self.rate * AUDIO_BLOCK_S), callback=callback)
            self._stream.start()
        except Exception as exc:  # PortAudioError, ValueError for unknown names
            raise DeviceError(f"Could not open microphone {self.device!r}: {exc}. "
                              "Run 'playback devices' to list microphones.") from None

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        while not stop.is_set():
            try:
                yield self._queue.get(timeout=0.2)
            except queue.Empty:
                continue

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


class Camera:
    """A real camera through OpenCV; frames stamped on the session clock as they arrive."""

    kind = "video"

    def __init__(self, index: int = 0, *, fps: float = 15.0, width: int | None = None, height: int | None = None):
        self.index = index
        self.rate = fps
        self.width, self.height = width, height
        self.name = f"camera:{index}"
        self.opened = 0
        self._cap = None
        self._clock: Clock | None = None

    def open(self, clock: Clock) -> None:
        import cv2

        self.opened += 1
        self._clock = clock
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise DeviceError(f"Could not open camera {self.index}; run 'playback devices' to list cameras.")
        if self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        import cv2

        step = 1.0 / self.rate
        next_t = 0.0
        while not stop.is_set():
            ok, frame = self._cap.read()
            t = self._clock.now()
            if not ok:
                raise DeviceError(f"Camera {self.index} stopped delivering frames.")
            if t + 1e-3 < next_t:
                continue
            next_t = t + step
            yield Chunk(t, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_devices() -> dict[str, list[str]]:
    """Names of the microphones and cameras found (probing cameras 0-3), and any problem."""
    found: dict[str, list[str]] = {"microphones": [], "cameras": [], "problems": []}
    try:
        sd = _sounddevice()
        found["microphones"] = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    except DeviceError as exc:
        found["problems"].append(str(exc))
    try:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
        import cv2

        with contextlib.suppress(Exception):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        for i in range(4):
            if os.path.isdir("/dev") and os.uname().sysname == "Linux" and not os.path.exists(f"/dev/video{i}"):
                continue
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found["cameras"].append(str(i))
            cap.release()
    except Exception as exc:  # noqa: BLE001 - listing must never crash
        found["problems"].append(f"cameras: {exc}")
    return found


def parse_mic(spec: str) -> str | int:
    return int(spec) if spec.isdigit() else spec
