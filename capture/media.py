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
                 keep_readable: bool = False) -> np.ndarray:
    """Decode the first audio stream, resampled to ``sr`` Hz.

    Returns float32 of shape ``(n,)`` when ``mono`` (channels averaged), else ``(channels, n)``.
    Sample 0 is the stream's first timestamp; a damaged stream raises :class:`BadMediaError`,
    unless ``keep_readable`` and some of it decoded: then what decoded before the damage is
    returned (a truncated file holds what its streams really hold).
    """
    name = Path(path).name
    chunks: list[np.ndarray] = []
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
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        if not (keep_readable and chunks):
            raise BadMediaError(f"{name}: the audio could not be decoded ({_ffmpeg_reason(exc)}).") from None
    if not chunks:
        raise BadMediaError(f"{name}: the audio stream holds no samples.")
    audio = np.concatenate(chunks, axis=1).astype(np.float32)
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


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Inverse of :func:`encode_wav`: float32 array (shape (n,) or (channels, n)) and rate in Hz."""
    y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return (y.T if y.ndim == 2 else y), int(sr)


__all__ = ["MediaInfo", "probe", "decode_audio", "iter_video_frames", "encode_wav", "decode_wav"]
