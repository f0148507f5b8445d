"""Generate small media files with PyAV/numpy at test time (never stored in the repo)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

CONTAINERS = {".mp4": ("mp4", "libx264", "aac"), ".mov": ("mov", "libx264", "aac"),
              ".mkv": ("matroska", "libx264", "aac"), ".webm": ("webm", "libvpx", "libopus"),
              ".m4a": ("ipod", None, "aac"), ".wav": ("wav", None, "pcm_s16le")}


def tone(seconds: float, *, rate: int = 16_000, freq: float = 220.0, channels: int = 1, level: float = 0.3,
         seed: int = 0) -> np.ndarray:
    """A voiced-like signal: a tone with harmonics and syllable-rate amplitude, shape (channels, n)."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    y = level * y / np.abs(y).max() + 0.003 * rng.standard_normal(len(t))
    return np.tile(y.astype(np.float32), (channels, 1))


def make_media(path: Path, *, seconds: float = 2.0, video: bool = True, audio: bool = True, size=(160, 120),
               fps: float = 15.0, rate: int = 16_000, channels: int = 1, vfr: bool = False, silent: bool = False,
               audio_start_s: float = 0.0) -> Path:
    """Write a file whose container follows ``path``'s suffix (see :data:`CONTAINERS`)."""
    import av

    fmt, vcodec, acodec = CONTAINERS[path.suffix]
    with av.open(str(path), "w", format=fmt) as out:
        vs = as_ = None
        if video and vcodec:
            vs = out.add_stream(vcodec, rate=int(fps))
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
            vs.time_base = Fraction(1, 1000)
            vs.codec_context.time_base = Fraction(1, 1000)
            if vcodec == "libx264":
                vs.options = {"preset": "ultrafast"}
        if audio:
            as_ = out.add_stream(acodec, rate=rate, layout="mono" if channels == 1 else "stereo")
        if vs is not None:
            rng = np.random.default_rng(1)
            t, i = 0.0, 0
            while t < seconds:
                img = np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
                img[: size[1] // 4, : size[0] // 4] = 255
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
                for packet in vs.encode(frame):
                    out.mux(packet)
                step = (1 / fps) * (rng.uniform(0.3, 2.5) if vfr else 1.0)
                t += step
                i += 1
            for packet in vs.encode(None):
                out.mux(packet)
        if as_ is not None:
            y = tone(seconds, rate=rate, channels=channels) * (0.0 if silent else 1.0)
            fmt_name = "s16" if acodec == "pcm_s16le" else "fltp"
            block = 1024 if acodec != "libopus" else 960
            start = int(round(audio_start_s * rate))
            for s0 in range(0, y.shape[1], block):
                chunk = y[:, s0:s0 + block]
                if chunk.shape[1] < block and acodec in ("aac", "libopus"):
                    chunk = np.pad(chunk, ((0, 0), (0, block - chunk.shape[1])))
                data = (chunk * 32767).astype(np.int16).T.reshape(1, -1) if fmt_name == "s16" else np.ascontiguousarray(chunk)
                frame = av.AudioFrame.from_ndarray(data, format=fmt_name, layout="mono" if channels == 1 else "stereo")
                frame.sample_rate = rate
                frame.pts, frame.time_base = start + s0, Fraction(1, rate)
                for packet in as_.encode(frame):
                    out.mux(packet)
            for packet in as_.encode(None):
                out.mux(packet)
    return path


def make_wav(path: Path, seconds: float, *, rate: int = 16_000, freq: float = 220.0, seed: int = 0) -> Path:
    from capture.media import encode_wav

    path.write_bytes(encode_wav(tone(seconds, rate=rate, freq=freq, seed=seed)[0], sr=rate))
    return path


def written_file(name: str, data: bytes):
    """A maker ``tmp -> path`` of a file called ``name`` holding ``data`` (for parametrised tests)."""
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name
    return make
