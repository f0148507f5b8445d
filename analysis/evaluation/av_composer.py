"""Compose audio-visual "couples" from GRID talking faces, with exact ground truth.

Two GRID clips (``../shared/data/talking/*.mpg``: one speaker saying one short sentence, 3 s,
360x288 at 25 fps, with its own sound) sit side by side on a 720x288 canvas. Each face *speaks*
on a schedule: while it speaks, its clip plays (frames and sound, from a little before the
sentence's first sound to a little after its last); while it is silent the face is a **still
frame** (the clip's last frame, mouth closed) and adds no sound. The sound track is the sum of
both faces' sound. A face can speak many times in a session (its one clip is replayed), so
sessions of any length can be built; turns follow each other with gaps, and some start while the
other face is mid-sentence (overlapped speech).

The truth is exact by construction: each clip's speech extent is measured once on the clip
itself (for ``id2_vcd_swwp2s`` from the word timings in ``swwp2s.align``; otherwise from its
10 ms frame energy, above the midpoint in dB between the clip's noise floor, 10th percentile,
and its speech level, 97th percentile, above 80 Hz (some clips carry sub-audio thumps), with
pauses under 0.5 s filled), and every placement
shifts it by a whole number of video frames, so sound, picture and truth agree to the sample.

Participants are named by seat: ``p1`` left, ``p2`` right (as ``analysis.stages.faces`` seats them).

    compose_couple("couple.mp4", left="bbaf2n", right="lwbsza", duration_s=40, seed=0)

writes ``couple.mp4`` (H.264 + AAC, 16 kHz mono) and ``couple.rttm`` and returns a dict with the
truth table (``start_s, end_s, participant_id, side, clip``), the schedule and the overlap.
Sources are read in place, never copied.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pandas as pd
from scipy.signal import butter, sosfiltfilt

from analysis.core.frames import FRAME_S, fill_short_runs, frame_level_db, true_runs
from analysis.core.rttm import to_rttm
from capture.media import decode_audio

SR = 16000                      # sound sample rate, Hz
FPS = 25                        # GRID video frame rate
LEAD_S = 0.3                    # a clip starts playing this long before its first sound ...
TAIL_S = 0.3                    # ... and stops this long after its last
FILL_PAUSE_S = 0.5              # pauses shorter than this inside a sentence are speech (turn gap)
SPEECH_LEVEL_DB = -23.0         # every clip's speech is normalised to this RMS level (dBFS)
NOISE_DB = -65.0                # a faint noise floor under the mixture (no digital silence)
IDS = {"left": "p1", "right": "p2"}
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "talking"


@dataclass(frozen=True)
class GridClip:
    """One GRID clip: ``frames`` (n, h, w, 3) uint8 at :data:`FPS`; ``y`` mono float32 at
    :data:`SR` normalised to :data:`SPEECH_LEVEL_DB`; ``speech`` (start_s, end_s) spans in clip
    time; the play window ``[play_s, stop_s)`` (multiples of a video frame)."""

    name: str
    frames: np.ndarray
    y: np.ndarray
    speech: tuple[tuple[float, float], ...]

    @property
    def speech_on_s(self) -> float:
        return self.speech[0][0]

    @property
    def speech_off_s(self) -> float:
        return self.speech[-1][1]

    @property
    def play_s(self) -> float:
        return max(0.0, np.floor((self.speech_on_s - LEAD_S) * FPS) / FPS)

    @property
    def stop_s(self) -> float:
        return min(len(self.frames) / FPS, np.ceil((self.speech_off_s + TAIL_S) * FPS) / FPS)

    @property
    def still(self) -> np.ndarray:
        return self.frames[-1]


@dataclass(frozen=True)
class Turn:
    """``side`` ("left" or "right") speaks its clip with the clip's first sound at ``start_s``."""

    side: str
    start_s: float


def _energy_speech(y: np.ndarray) -> list[tuple[float, float]]:
    y = sosfiltfilt(butter(4, 80, "highpass", fs=SR, output="sos"), y)  # GRID has sub-audio thumps
    e = frame_level_db(y, SR, frame_s=FRAME_S)
    noise, level = np.percentile(e, [10, 97])
    mask = fill_short_runs(e > (noise + level) / 2, value=False, max_len=int(round(FILL_PAUSE_S / FRAME_S)))
    return [(s * FRAME_S, e_ * FRAME_S) for s, e_ in true_runs(mask) if e_ - s >= 0.1 / FRAME_S]


def _align_speech(path: Path) -> list[tuple[float, float]]:
    """Speech spans from a GRID ``.align`` file (times in 1/25000 s; ``sil``/``sp`` are silence)."""
    spans: list[list[float]] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[2] in ("sil", "sp"):
            continue
        a, b = int(parts[0]) / 25000, int(parts[1]) / 25000
        if spans and a - spans[-1][1] < FILL_PAUSE_S:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


@lru_cache(maxsize=8)
def load_clip(name: str, data_dir: str = str(DEFAULT_DATA_DIR)) -> GridClip:
    """Decode ``<data_dir>/<name>.mpg`` (frames and 16 kHz mono sound) and measure its speech."""
    path = Path(data_dir) / f"{name}.mpg"
    if not path.is_file():
        raise FileNotFoundError(f"GRID clip {path} not found")
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    y = decode_audio(path, sr=SR)
    align = Path(data_dir) / f"{name.split('_')[-1]}.align"
    speech = _align_speech(align) if align.is_file() else _energy_speech(y)
    if not speech:
        raise ValueError(f"{name}: no speech found")
    inside = np.zeros(len(y), bool)
    for a, b in speech:
        inside[int(a * SR):int(b * SR)] = True
    rms_db = 10 * np.log10(np.mean(y[inside].astype(np.float64) ** 2) + 1e-12)
    y = (y * 10 ** ((SPEECH_LEVEL_DB - rms_db) / 20)).astype(np.float32)
    return GridClip(name, frames, y, tuple(speech))


def random_schedule(rng: np.random.Generator, clips: dict[str, GridClip], *, duration_s: float,
                    p_overlap: float = 0.3, p_same: float = 0.15) -> list[Turn]:
    """Turns filling ``duration_s``: the floor mostly alternates (the same face speaks again with
    ``p_same``); the next face starts 0.3-1.5 s after the last sentence ends or, with ``p_overlap``,
    while it is still under way (0.4-1.0 s before its end, never in its first 0.3 s). A face
    never starts before its own previous clip has stopped playing."""
    turns: list[Turn] = []
    free_at = {side: 0.0 for side in clips}        # when each face's clip has stopped playing
    last: Turn | None = None
    t = 1.0
    while True:
        if last is None:
            side = str(rng.choice(sorted(clips)))
            onset = t
        else:
            other = next(s for s in clips if s != last.side)
            side = last.side if rng.random() < p_same else other
            clip_last = clips[last.side]
            end_last = last.start_s + clip_last.speech_off_s - clip_last.speech_on_s
            len_last = end_last - last.start_s
            if side != last.side and rng.random() < p_overlap and len_last > 0.8:
                onset = end_last - rng.uniform(0.4, min(1.0, len_last - 0.3))
            else:
                onset = end_last + rng.uniform(0.3, 1.5)
        clip = clips[side]
        onset = max(onset, free_at[side] + clip.speech_on_s - clip.play_s + 1 / FPS)
        onset = _on_video_frame(onset, clip)
        if onset + clip.stop_s - clip.speech_on_s > duration_s:
            break
        turn = Turn(side, onset)
        turns.append(turn)
        free_at[side] = onset + clip.stop_s - clip.speech_on_s
        last = turn
    return turns


def _on_video_frame(onset: float, clip: GridClip) -> float:
    """Move ``onset`` so that the clip's placement offset is a whole number of video frames."""
    offset = round((onset - clip.speech_on_s) * FPS) / FPS
    return round(offset + clip.speech_on_s, 6)


def compose_couple(out_path, *, left: str = "bbaf2n", right: str = "lwbsza", schedule: list | None = None,
                   seed: int = 0, duration_s: float = 40.0, p_overlap: float = 0.3,
                   data_dir: str | Path = DEFAULT_DATA_DIR) -> dict:
    """Write the couple video ``out_path`` (.mp4) and its truth ``<stem>.rttm``; return
    ``{"path", "rttm", "truth", "schedule", "duration_s", "speech_s", "overlap_s", "ids"}``.

    ``schedule``: a list of :class:`Turn` or ``(side, start_s)`` pairs (``start_s`` is when that
    face's sentence starts sounding); by default :func:`random_schedule` with ``seed``.
    """
    out_path = Path(out_path)
    clips = {"left": load_clip(left, str(data_dir)), "right": load_clip(right, str(data_dir))}
    generated = schedule is None
    if generated:
        schedule = random_schedule(np.random.default_rng(seed), clips, duration_s=duration_s, p_overlap=p_overlap)
    turns = sorted((t if isinstance(t, Turn) else Turn(*t) for t in schedule), key=lambda t: t.start_s)
    turns = [Turn(t.side, _on_video_frame(t.start_s, clips[t.side])) for t in turns]
    # placements: (side, offset in video frames, first and last played clip frame)
    placed = []
    for t in turns:
        clip = clips[t.side]
        offset = int(round((t.start_s - clip.speech_on_s) * FPS))
        first, stop = int(round(clip.play_s * FPS)), int(round(clip.stop_s * FPS))
        if offset + first < 0:
            raise ValueError(f"{t}: starts before the session does")
        placed.append((t.side, offset, first, stop))
    for side in clips:
        mine = sorted((o + a, o + b) for s, o, a, b in placed if s == side)
        if any(b0 > a1 for (_, b0), (a1, _) in zip(mine, mine[1:])):
            raise ValueError(f"the {side} face is scheduled to speak twice at once")
    n_video = max((o + b for _, o, _, b in placed), default=0) + FPS // 2
    if generated:
        n_video = max(n_video, int(np.ceil(duration_s * FPS)))
    n_audio = n_video * SR // FPS
    rng = np.random.default_rng(seed + 1)
    mix = (rng.standard_normal(n_audio) * 10 ** (NOISE_DB / 20)).astype(np.float32)
    playing = {side: np.full(n_video, -1) for side in clips}  # clip frame shown per video frame
    rows = []
    spf = SR // FPS
    for side, offset, first, stop in placed:
        clip = clips[side]
        playing[side][offset + first:offset + stop] = np.arange(first, stop)
        piece = clip.y[first * spf:stop * spf].copy()
        ramp = min(len(piece) // 2, int(0.01 * SR))
        if ramp:
            piece[:ramp] *= np.linspace(0, 1, ramp, dtype=np.float32)
            piece[-ramp:] *= np.linspace(1, 0, ramp, dtype=np.float32)
        at = (offset + first) * spf
        mix[at:at + len(piece)] += piece
        for a, b in clip.speech:
            rows.append((round(offset / FPS + a, 3), round(offset / FPS + b, 3), IDS[side], side, clip.name))
    truth = pd.DataFrame(rows, columns=["start_s", "end_s", "participant_id", "side", "clip"]).sort_values(
        ["start_s", "participant_id"], ignore_index=True)
    _write_mp4(out_path, clips, playing, mix)
    rttm = out_path.with_suffix(".rttm")
    rttm.write_text(to_rttm(truth, out_path.stem, sort=False))
    return {"path": out_path, "rttm": rttm, "truth": truth, "schedule": turns, "duration_s": n_video / FPS,
            "speech_s": float((truth.end_s - truth.start_s).sum()), "overlap_s": overlap_seconds(truth),
            "ids": [IDS["left"], IDS["right"]], "clips": {"left": left, "right": right}}


def _write_mp4(path: Path, clips: dict[str, GridClip], playing: dict[str, np.ndarray], mix: np.ndarray) -> None:
    h, w = clips["left"].frames.shape[1:3]
    n_video = len(playing["left"])
    peak = float(np.abs(mix).max())
    if peak > 0.99:
        mix = mix * (0.99 / peak)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = 2 * w, h, "yuv420p"
        as_ = out.add_stream("aac", rate=SR, layout="mono")
        canvas = np.zeros((h, 2 * w, 3), np.uint8)
        for i in range(n_video):
            for k, side in enumerate(("left", "right")):
                j = playing[side][i]
                canvas[:, k * w:(k + 1) * w] = clips[side].frames[j] if j >= 0 else clips[side].still
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        step = 1024
        for i in range(0, len(mix), step):
            frame = av.AudioFrame.from_ndarray(mix[None, i:i + step].copy(), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SR, i
            for packet in as_.encode(frame):
                out.mux(packet)
        for packet in as_.encode():
            out.mux(packet)


# ----------------------------------------------------------------------------- scoring


def _frames(segments: pd.DataFrame, ids: list[str], n: int, label: str = "participant_id") -> np.ndarray:
    active = np.zeros((n, len(ids)), bool)
    for r in segments.itertuples():
        pid = getattr(r, label)
        if pid in ids:
            active[int(round(r.start_s / FRAME_S)):int(round(r.end_s / FRAME_S)), ids.index(pid)] = True
    return active


def overlap_seconds(segments: pd.DataFrame, label: str = "participant_id") -> float:
    """Seconds during which two or more labels are active."""
    if segments.empty:
        return 0.0
    ids = sorted(segments[label].unique())
    n = int(np.ceil(segments.end_s.max() / FRAME_S)) + 1
    return float((_frames(segments, ids, n, label).sum(1) >= 2).sum() * FRAME_S)


def right_face_share(truth: pd.DataFrame, hypothesis: pd.DataFrame) -> float:
    """Share of true speech time (per person, overlaps counted per person) during which the
    hypothesis has that same participant speaking: the right face was named."""
    ids = sorted(truth.participant_id.unique())
    end = max(truth.end_s.max(), hypothesis.end_s.max() if len(hypothesis) else 0)
    n = int(np.ceil(end / FRAME_S)) + 1
    ref, hyp = _frames(truth, ids, n), _frames(hypothesis, ids, n)
    return float((ref & hyp).sum() / max(ref.sum(), 1))
