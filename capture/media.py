"""Probing and decoding media with PyAV (FFmpeg inside the wheel).

Probe before processing, limits before decoding, time from timestamps: :func:`probe` checks a
file's container, streams, size, duration and resolution and raises :class:`BadMediaError` with
a readable message; decoding functions use stream timestamps, never frame counts.
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import av
import numpy as np
import soundfile as sf

from capture.errors import BadMediaError

AUDIO_RATE_HZ = 16_000

# Limits checked before any decoding (B2).
MAX_FILE_BYTES = 20 * 1024**3
MAX_DURATION_S = 4 * 3600.0
MAX_PIXELS = 3840 * 2160
MAX_STREAMS = 16
MIN_DURATION_S = 0.5


@dataclass(frozen=True)
class MediaInfo:
    """What a probe learns about a file. Times in seconds; offsets are stream start times."""

    container: str
    duration_s: float
    has_audio: bool
    has_video: bool
    audio_rate_hz: int | None = None
    audio_channels: int | None = None
    audio_start_s: float = 0.0
    video_width: int | None = None
    video_height: int | None = None
    video_fps: float | None = None
    video_start_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def probe(path: Path | str) -> MediaInfo:
    """Inspect ``path`` without decoding it fully; raise :class:`BadMediaError` if unusable."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise BadMediaError(f"{name}: no such file.")
    size = path.stat().st_size
    if size == 0:
        raise BadMediaError(f"{name}: the file is empty (0 bytes); choose the full recording.")
    if size > MAX_FILE_BYTES:
        raise BadMediaError(f"{name}: {size / 1024**3:.1f} GB is over the {MAX_FILE_BYTES // 1024**3} GB limit.")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise BadMediaError(
            f"{name}: not a readable audio or video file ({_ffmpeg_reason(exc)}); "
            "it may be truncated or not media at all."
        ) from None
    with container:
        audio = [s for s in container.streams if s.type == "audio"]
        video = [s for s in container.streams if s.type == "video" and not _is_cover_art(s)]
        if len(container.streams) > MAX_STREAMS:
            raise BadMediaError(f"{name}: {len(container.streams)} streams is over the limit of {MAX_STREAMS}.")
        if not audio and not video:
            raise BadMediaError(f"{name}: the file holds no audio or video stream.")
        durations = [d for d in (_stream_duration(s) for s in audio + video) if d]
        if container.duration is not None:
            durations.append(container.duration / 1_000_000)
        duration = max(durations) if durations else 0.0
        if not math.isfinite(duration) or duration < MIN_DURATION_S:
            raise BadMediaError(
                f"{name}: the recording is {duration:.2f} s long; at least {MIN_DURATION_S} s is needed."
            )
        if duration > MAX_DURATION_S:
            raise BadMediaError(f"{name}: {duration / 3600:.1f} h is over the {MAX_DURATION_S / 3600:.0f} h limit.")
        info = {"container": container.format.name, "duration_s": round(duration, 3)}
        if audio:
            a = audio[0]
            info.update(
                has_audio=True,
                audio_rate_hz=int(a.codec_context.sample_rate or 0) or None,
                audio_channels=int(a.codec_context.channels or 0) or None,
                audio_start_s=_seconds(a.start_time, a.time_base) or 0.0,
            )
        else:
            info["has_audio"] = False
        if video:
            v = video[0]
            width, height = int(v.codec_context.width or 0), int(v.codec_context.height or 0)
            if width * height > MAX_PIXELS:
                raise BadMediaError(
                    f"{name}: video of {width}x{height} is over the limit of 3840x2160 (4K); "
                    "convert it to a smaller size first."
                )
            if width == 0 or height == 0:
                raise BadMediaError(f"{name}: the video stream has no picture size; the file may be damaged.")
            rate = v.average_rate or v.guessed_rate
            info.update(
                has_video=True,
                video_width=width,
                video_height=height,
                video_fps=round(float(rate), 3) if rate else None,
                video_start_s=_seconds(v.start_time, v.time_base) or 0.0,
            )
        else:
            info["has_video"] = False
    return MediaInfo(**info)


def _is_cover_art(stream) -> bool:
    return bool(stream.disposition & getattr(__import__("av").stream.Disposition, "attached_pic", 0))


def _stream_duration(stream) -> float | None:
    return _seconds(stream.duration, stream.time_base)


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() or type(exc).__name__


def decode_audio(path: Path | str, *, sr: int = AUDIO_RATE_HZ, mono: bool = True,
                 keep_readable: bool = False, until_s: float | None = None) -> np.ndarray:
    """Decode the first audio stream, resampled to ``sr`` Hz (with ``until_s``, only its first
    ``until_s`` seconds: decoding stops there).

    Returns float32 of shape ``(n,)`` when ``mono`` (channels averaged), else ``(channels, n)``.
    Sample 0 is the stream's first timestamp; a damaged stream raises :class:`BadMediaError`,
    unless ``keep_readable`` and some of it decoded: then what decoded before the damage is
    returned (a truncated file holds what its streams really hold).
    """
    name = Path(path).name
    chunks: list[np.ndarray] = []
    wanted = None if until_s is None else int(round(until_s * sr))
    decoded = 0                                       # samples per channel so far
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise BadMediaError(f"{name}: no audio stream.")
            stream = container.streams.audio[0]
            layout = "mono" if mono else stream.codec_context.layout.name
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=sr)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                    decoded += chunks[-1].shape[1]
                if wanted is not None and decoded >= wanted:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        if not (keep_readable and chunks):
            raise BadMediaError(f"{name}: the audio could not be decoded ({_ffmpeg_reason(exc)}).") from None
    if not chunks:
        raise BadMediaError(f"{name}: the audio stream holds no samples.")
    audio = np.concatenate(chunks, axis=1).astype(np.float32)[:, :wanted]
    return audio[0] if mono else audio


def next_sample_s(t_s: float, fps: float) -> float:
    """The time (s) on the ``fps`` sampling grid after a frame sampled at ``t_s``: where
    :func:`iter_video_frames` takes its next frame."""
    step = 1.0 / fps
    return (math.floor(t_s / step + 1e-6) + 1) * step


def iter_video_frames(
    source: Path | str | BinaryIO, *, fps: float, origin_s: float = 0.0, start_s: float = 0.0,
    end_s: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t_s, rgb)`` at about ``fps`` frames per second, ``rgb`` uint8 of shape (h, w, 3),
    from a media file's path or a seekable binary file (a session's
    :meth:`capture.store.Store.open_media`).

    ``t_s`` is each frame's presentation timestamp minus ``origin_s`` (the session's time zero,
    the earliest stream start), so variable frame rate video is sampled correctly. Frames between samples are decoded but
    not converted. With ``start_s`` / ``end_s`` (session seconds) only frames with ``start_s <= t_s
    < end_s`` are yielded (decoding starts at the key frame before ``start_s``); the samples are
    those a whole-file pass would take when ``start_s`` is a multiple of ``1 / fps``.
    """
    readable = hasattr(source, "read")
    name = "the recording" if readable else Path(source).name
    path = source if readable else str(source)
    next_t = start_s
    try:
        with av.open(path) as container:
            if not container.streams.video:
                return
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if start_s > 0:
                container.seek(int((start_s + origin_s) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - origin_s
                if end_s is not None and t >= end_s:
                    return
                if t + 1e-6 < next_t:
                    continue
                yield round(t, 4), frame.to_ndarray(format="rgb24")
                next_t = next_sample_s(t, fps)
    except av.error.FFmpegError as exc:
        raise BadMediaError(f"{name}: the video could not be decoded ({_ffmpeg_reason(exc)}).") from None


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_wav(y: np.ndarray, *, sr: int) -> bytes:
    """16-bit PCM WAV bytes of ``y`` (float in [-1, 1], shape (n,) or (channels, n))."""
    buffer = io.BytesIO()
    data = y.T if y.ndim == 2 else y
    sf.write(buffer, np.clip(data, -1, 1), sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def decode_wav(data: bytes | BinaryIO) -> tuple[np.ndarray, int]:
    """Inverse of :func:`encode_wav`: float32 array (shape (n,) or (channels, n)) and rate in Hz.
    ``data`` is the WAV's bytes or a seekable binary file of them (e.g. ``Store.open_media``:
    then no copy of the file's bytes is held beside the decoded samples)."""
    if isinstance(data, (bytes, bytearray)):
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    else:
        y, sr = _guarded_read(data, lambda source: sf.read(source, dtype="float32", always_2d=False))
    return (y.T if y.ndim == 2 else y), int(sr)


PCM16_SCALE = np.float32(2.0**-15)     # libsndfile's 16-bit sample -> float (exact: k / 32768)


class Pcm16Signal:
    """A mono float32 signal held as its 16-bit PCM samples: half the memory of the float32
    array (a 50-minute session: 96 MB instead of 192 MB) and the same values, since every
    16-bit sample ``k`` is ``k / 32768`` exactly in float32, as libsndfile decodes it.

    It answers what the audio stages ask of a signal: ``len``, ``shape``, ``dtype`` (float32),
    slices (``y[a:b]``: a float32 array of those samples), ``max``, ``min`` and ``mean`` (also
    through ``np.max`` etc.; ``mean`` with ``dtype=float64`` equals numpy's on the float32 array,
    its float64 sums of multiples of 2^-15 being exact); ``np.asarray(y)`` gives the whole
    float32 array (a copy: code that has to hold the whole signal)."""

    ndim = 1
    dtype = np.dtype(np.float32)

    def __init__(self, pcm: np.ndarray):
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("Pcm16Signal holds mono int16 samples")
        self.pcm = pcm

    def __len__(self) -> int:
        return len(self.pcm)

    @property
    def shape(self) -> tuple[int]:
        return self.pcm.shape

    @property
    def size(self) -> int:
        return self.pcm.size

    def __getitem__(self, key) -> np.ndarray:
        return np.multiply(self.pcm[key], PCM16_SCALE, dtype=np.float32)    # one float32 array, no int16 copy

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def max(self, axis=None, out=None, **kwargs):
        return np.float32(self.pcm.max()) * PCM16_SCALE

    def min(self, axis=None, out=None, **kwargs):
        return np.float32(self.pcm.min()) * PCM16_SCALE

    def mean(self, axis=None, dtype=None, out=None, **kwargs):
        if dtype is None or np.dtype(dtype) != np.float64 or not len(self.pcm):
            return np.mean(np.asarray(self), dtype=dtype)
        total = np.float64(self.pcm.sum(dtype=np.int64)) * np.float64(PCM16_SCALE)   # exact
        return np.float64(total / len(self.pcm))


def decode_wav_signal(file: BinaryIO) -> tuple[np.ndarray | Pcm16Signal, int]:
    """:func:`decode_wav` of a seekable WAV file, a mono 16-bit one (as :func:`encode_wav`
    writes) as a :class:`Pcm16Signal` of the same values."""
    info = _guarded_read(file, sf.info)
    file.seek(0)
    if info.channels != 1 or info.subtype != "PCM_16":
        return decode_wav(file)
    pcm, sr = _guarded_read(file, lambda source: sf.read(source, dtype="int16", always_2d=False))
    return Pcm16Signal(pcm), int(sr)


def _guarded_read(file: BinaryIO, work):
    """``work(reader)`` on ``file`` through a :class:`_RaisingReader`: an error raised while
    libsndfile read the file (e.g. IntegrityError from a damaged encrypted chunk) is raised."""
    source = _RaisingReader(file)
    try:
        result = work(source)
    except Exception:
        if source.error is None:
            raise
    if source.error is not None:
        raise source.error
    return result


class _RaisingReader:
    """A binary file for libsndfile's callbacks that keeps the first error raised while reading
    it: an exception inside a callback would only be printed, and the decoding silently cut
    short; :func:`decode_wav` raises it once libsndfile is done."""

    def __init__(self, file: BinaryIO):
        self.file, self.error = file, None

    def _guarded(self, work, fallback):
        if self.error is not None:
            return fallback
        try:
            return work()
        except BaseException as exc:
            self.error = exc
            return fallback

    def readinto(self, buffer) -> int:
        return self._guarded(lambda: self.file.readinto(buffer), 0)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._guarded(lambda: self.file.seek(offset, whence), 0)

    def tell(self) -> int:
        return self._guarded(self.file.tell, 0)


__all__ = ["MediaInfo", "probe", "decode_audio", "iter_video_frames", "encode_wav", "decode_wav", "decode_wav_signal",
           "Pcm16Signal"]
