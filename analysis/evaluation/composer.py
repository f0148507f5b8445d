"""Compose conversations with exactly known dynamics from real single-speaker speech.

Real speech (16 kHz mono float32) is cut into *turn clips* (stretches of one person talking,
internal pauses shorter than ``MAX_INTERNAL_PAUSE_S``) and *short clips* (isolated words,
0.25-0.9 s, the raw material of backchannels) and laid onto one track per speaker following a
script of :class:`Utterance` acts:

- ``"turn"``: the speaker takes the floor ``gap_s`` after the current floor holder's last speech
  (negative: an early, overlapping start);
- ``"backchannel"``: a short clip ``at_s`` seconds after the floor turn started; the floor holder
  carries on;
- ``"interrupt"`` with ``cut_target_after_s``: a **successful** interruption: the floor holder's
  audio is cut that long after the onset and the interrupter holds the floor;
- ``"interrupt"`` with ``drop_after_s``: an **unsuccessful** interruption: the interrupter's
  audio is cut after that long while the floor holder carries on.

``gain_db > 0`` raises the voice (the truth label gets ``", competitive"``; an interruption with
no gain is ``", cooperative"``). The truth is exact by construction: speech segments come from an
energy mask of every clip actually laid down (after cuts), events from the script, with the
times measured on the laid-down audio. :func:`random_script` only places events where the truth
is unambiguous (onsets inside the floor holder's speech, cuts inside speech, floor holder
talking on after a backchannel or failed attempt), see its docstring.

Sources (read-only, never copied into the repository): ``../shared/data/ami-group/sources/``
(one AMI speaker per track, speaker identity and speech regions from ``mixture.rttm``) and the
GRID clips ``../shared/data/talking/*.mpg`` (decoded with PyAV).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pandas as pd
import soundfile as sf

from analysis.core.events import upgrade_legacy
from analysis.core.frames import FRAME_S, fill_short_runs, frame_level_db, true_runs
from analysis.core.rttm import read_rttm

SR = 16000
MAX_INTERNAL_PAUSE_S = 0.8      # turn clips are split at pauses this long or longer
SHORT_MIN_S, SHORT_MAX_S = 0.25, 0.9
DISPLAY_NAMES = ("Alex", "Sam", "Kim", "Jo", "Robin", "Charlie")
DEFAULT_DATA_ROOT = Path("../shared/data")


# ----------------------------------------------------------------------------- audio helpers


def speech_mask_energy(y: np.ndarray, sr: int = SR, *, threshold_db: float | None = None,
                       fill_gap_s: float = 0.1, min_run_s: float = 0.05) -> np.ndarray:
    """Boolean speech mask at ``FRAME_S`` from frame energy.

    threshold_db: absolute dBFS threshold; default ``max(p95 - 25, p10 + 12)`` of the clip's
    frame energies (speech peaks minus 25 dB, but clearly above the noise floor).
    Gaps shorter than ``fill_gap_s`` are filled, runs shorter than ``min_run_s`` dropped.
    """
    e = frame_level_db(y, sr, frame_s=FRAME_S)
    if threshold_db is None:
        threshold_db = max(np.percentile(e, 95) - 25.0, np.percentile(e, 10) + 12.0)
    m = e > threshold_db
    m = fill_short_runs(m, value=False, max_len=int(round(fill_gap_s / FRAME_S)))
    return fill_short_runs(m, value=True, max_len=int(round(min_run_s / FRAME_S)))


def mask_to_intervals(m: np.ndarray, *, frame_s: float = FRAME_S) -> np.ndarray:
    """(K, 2) array of [start_s, end_s) of True runs."""
    r = true_runs(m)
    return np.asarray(r, float).reshape(-1, 2) * frame_s


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate (soundfile)."""
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


def read_media_audio(path: str | Path, *, sr: int = SR) -> np.ndarray:
    """Decode the audio of a media file (e.g. GRID .mpg) to mono float32 at ``sr`` with PyAV."""
    out = []
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rs = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for frame in c.decode(stream):
            out += [f.to_ndarray().reshape(-1) for f in rs.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def _rms_db(y: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(y.astype(np.float64) ** 2) + 1e-12))


# ----------------------------------------------------------------------------- clip library


@dataclass(frozen=True)
class Clip:
    """A piece of one person's real speech, trimmed to start and end on speech.

    y: float32 samples at ``SR``, normalised to -23 dBFS over its speech frames.
    speech: (K, 2) speech intervals in seconds relative to the clip start.
    """

    speaker: str
    source: str
    offset_s: float
    y: np.ndarray = field(repr=False)
    speech: np.ndarray = field(repr=False)

    @property
    def duration_s(self) -> float:
        return len(self.y) / SR


@dataclass(frozen=True)
class ClipLibrary:
    """Turn clips and short clips per speaker id."""

    turns: dict
    shorts: dict

    @property
    def turn_speakers(self) -> list[str]:
        return sorted(k for k, v in self.turns.items() if v)


def _make_clip(speaker, source, y_src, mask, f0, f1) -> Clip | None:
    m = mask[f0:f1]
    if not m.any():
        return None
    idx = np.flatnonzero(m)
    f0, f1 = f0 + idx[0], f0 + idx[-1] + 1
    hop = int(SR * FRAME_S)
    y = y_src[f0 * hop: f1 * hop].copy()
    m = mask[f0:f1]
    speech_y = y.reshape(-1, hop)[m[: len(y) // hop]].reshape(-1)
    y *= 10 ** ((-23.0 - _rms_db(speech_y)) / 20)
    return Clip(speaker, source, f0 * FRAME_S, y.astype(np.float32), mask_to_intervals(m))


def _cut_clips(speaker, source, y, mask, region_frames) -> tuple[list[Clip], list[Clip]]:
    """Turn clips (>= 1.5 s, split at long pauses, at most 9 s) and isolated short clips."""
    turns, shorts = [], []
    m = np.zeros_like(mask)
    for a, b in region_frames:
        m[a:b] = mask[a:b]
    runs = true_runs(m)
    if not runs:
        return turns, shorts
    max_pause = int(MAX_INTERNAL_PAUSE_S / FRAME_S)
    # group runs into stretches separated by pauses >= MAX_INTERNAL_PAUSE_S
    groups, cur = [], [runs[0]]
    for r in runs[1:]:
        if r[0] - cur[-1][1] >= max_pause:
            groups.append(cur)
            cur = [r]
        else:
            cur.append(r)
    groups.append(cur)
    for g in groups:
        length = (g[-1][1] - g[0][0]) * FRAME_S
        if length >= 1.5:
            # split long stretches at pauses >= 0.25 s into pieces of about 2-9 s
            start = g[0][0]
            for i in range(len(g)):
                end = g[i][1]
                nxt_gap = (g[i + 1][0] - end) * FRAME_S if i + 1 < len(g) else np.inf
                if ((end - start) * FRAME_S >= 4.0 and nxt_gap >= 0.25) or (end - start) * FRAME_S >= 9.0 or i == len(g) - 1:
                    if (end - start) * FRAME_S >= 1.5:
                        c = _make_clip(speaker, source, y, mask, start, end)
                        if c is not None:
                            turns.append(c)
                    if i + 1 < len(g):
                        start = g[i + 1][0]
        # short clips: isolated runs (>= 0.2 s of quiet each side) of 0.25-0.9 s
        for i, (a, b) in enumerate(g):
            dur = (b - a) * FRAME_S
            before = (a - g[i - 1][1]) * FRAME_S if i > 0 else np.inf
            after = (g[i + 1][0] - b) * FRAME_S if i + 1 < len(g) else np.inf
            if SHORT_MIN_S <= dur <= SHORT_MAX_S and before >= 0.2 and after >= 0.2:
                c = _make_clip(speaker, source, y, mask, a, b)
                if c is not None:
                    shorts.append(c)
    return turns, shorts


@lru_cache(maxsize=2)
def load_library(data_root: str = str(DEFAULT_DATA_ROOT), *, include_grid: bool = True) -> ClipLibrary:
    """Cut the clip library from the shared AMI sources (and GRID clips).

    data_root: the shared data folder (``../shared/data`` from the repository root).
    AMI speakers are identified by matching each ``mixture.rttm`` speaker to the source track
    with the most energy in their regions; only their annotated regions are used (one track also
    carries breathing noise outside them). Each GRID file is one more speaker (``GRID-<name>``),
    its whole sentence one turn clip, its loudest word-like runs short clips.
    """
    root = Path(data_root)
    turns: dict[str, list[Clip]] = {}
    shorts: dict[str, list[Clip]] = {}
    ami = root / "ami-group"
    rttm = read_rttm(ami / "mixture.rttm")
    srcs = sorted((ami / "sources").glob("source*.wav"))
    ys = [read_wav(p)[0] for p in srcs]
    masks = [speech_mask_energy(y) for y in ys]
    energies = [frame_level_db(y, SR, frame_s=FRAME_S) for y in ys]
    for spk, g in rttm.groupby("speaker"):
        frames = [(int(a / FRAME_S), int(np.ceil(b / FRAME_S))) for a, b in zip(g.start_s, g.end_s)]
        score = [np.mean(np.concatenate([e[a:b] for a, b in frames])) for e in energies]
        i = int(np.argmax(score))
        t, s = _cut_clips(spk, srcs[i].name, ys[i], masks[i], frames)
        turns[spk], shorts[spk] = t, s
    if include_grid:
        for path in sorted((root / "talking").glob("*.mpg")):
            y = read_media_audio(path)
            m = speech_mask_energy(y)
            spk = f"GRID-{path.stem.split('_')[-1]}"
            runs = true_runs(m)
            if not runs:
                continue
            c = _make_clip(spk, path.name, y, m, runs[0][0], runs[-1][1])
            turns[spk] = [c] if c is not None else []
            sh = [_make_clip(spk, path.name, y, m, a, b) for a, b in runs if SHORT_MIN_S <= (b - a) * FRAME_S <= SHORT_MAX_S]
            if not sh:  # a word-sized piece of the sentence
                a = runs[0][0]
                sh = [_make_clip(spk, path.name, y, m, a, a + int(0.5 / FRAME_S))]
            shorts[spk] = [c for c in sh if c is not None]
    return ClipLibrary(turns=turns, shorts=shorts)


# ----------------------------------------------------------------------------- script


@dataclass(frozen=True)
class Utterance:
    """One act of a script (seconds throughout).

    speaker: speaker id of the library.
    act: "turn", "backchannel" or "interrupt".
    clips: indices into ``library.turns[speaker]`` (turn, interrupt; concatenated with
        ``inner_gap_s`` pauses) or ``library.shorts[speaker]`` (backchannel, first index used).
    gap_s: turn only: start after the floor holder's last speech (negative = overlapping start).
    at_s: backchannel/interrupt: onset, seconds after the current floor turn's start.
    cut_target_after_s: successful interruption: the floor holder is cut this long after onset.
    drop_after_s: unsuccessful interruption: the interrupter's own audio is cut after this long.
    gain_db: voice raised by this many dB (> 0 makes an interruption "competitive").
    pitch_st: voice raised by this many semitones (librosa's pitch shift, length and level kept); a turn
        with ``gain_db`` and ``pitch_st`` both above 0 is a true raised-voice passage.
    """

    speaker: str
    act: str
    clips: tuple[int, ...]
    gap_s: float = 0.2
    at_s: float = 0.0
    cut_target_after_s: float | None = None
    drop_after_s: float | None = None
    gain_db: float = 0.0
    inner_gap_s: float = 0.25
    pitch_st: float = 0.0


@dataclass
class Composition:
    """A composed conversation and its exact truth.

    y: mixture, float32 at ``sr``; tracks: speaker -> float32 track (they sum to y).
    speech: true speech segments (start_s, end_s, participant_id), from the energy mask of each
        clip laid down (after cuts).
    events: true events (kind, start_s, end_s, participant_id, target_participant_id, label);
        kind "backchannel" (label "backchannel"), "raised_voice" (a turn with gain_db and pitch_st) or
        "interruption" (label "successful" or
        "unsuccessful", plus ", competitive" / ", cooperative"), with the same in the structured
        ``outcome``, ``style`` and ``expression`` columns of :mod:`analysis.core.events`.
    names: speaker id -> display name.
    """

    y: np.ndarray
    sr: int
    tracks: dict
    speech: pd.DataFrame
    events: pd.DataFrame
    script: list
    names: dict
    duration_s: float
    seed: int | None = None


def render(library: ClipLibrary, u: Utterance) -> tuple[np.ndarray, np.ndarray]:
    """Audio (float32) and speech intervals (K, 2, seconds from its start) of one act, before cuts."""
    pool = library.shorts if u.act == "backchannel" else library.turns
    clips = [pool[u.speaker][i] for i in (u.clips[:1] if u.act == "backchannel" else u.clips)]
    parts, speech, t = [], [], 0.0
    gap = np.zeros(int(round(u.inner_gap_s * SR)), np.float32)
    for i, c in enumerate(clips):
        if i:
            parts.append(gap)
            t += len(gap) / SR
        parts.append(c.y)
        speech.append(c.speech + t)
        t += c.duration_s
    y = np.concatenate(parts) * np.float32(10 ** (u.gain_db / 20))
    if u.pitch_st:
        import librosa

        shifted = librosa.effects.pitch_shift(y, sr=SR, n_steps=u.pitch_st)
        # the phase vocoder loses about 3 dB: keep the level, so that gain_db is the only change
        y = shifted * np.float32(np.sqrt(np.mean(y ** 2) / max(float(np.mean(shifted ** 2)), 1e-12)))
    return y.astype(np.float32), np.concatenate(speech).reshape(-1, 2)


def _cut(y: np.ndarray, speech: np.ndarray, at_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Truncate at ``at_s`` (10 ms fade-out); speech intervals cropped."""
    n = max(0, min(len(y), int(round(at_s * SR))))
    y = y[:n].copy()
    fade = min(n, int(0.01 * SR))
    if fade:
        y[n - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    sp = speech[speech[:, 0] < at_s].copy()
    sp[:, 1] = np.minimum(sp[:, 1], at_s)
    return y, sp[sp[:, 1] - sp[:, 0] > 0.02]


def compose(script: list[Utterance], library: ClipLibrary, *, names: dict | None = None,
            lead_in_s: float = 0.5, tail_s: float = 1.0, levels_db: dict | None = None,
            seed: int | None = None) -> Composition:
    """Lay the script's real speech onto per-speaker tracks and write the truth.

    levels_db: speaker -> level offset in dB (people are not equally loud; default 0).
    """
    levels_db = levels_db or {}
    placed: list[dict] = []       # start, y, speech (relative), speaker
    truth: list[tuple] = []
    floor = None                  # index into placed of the current floor turn
    for u in script:
        y, sp = render(library, u)
        lvl = 10 ** (levels_db.get(u.speaker, 0.0) / 20)
        y = (y * lvl).astype(np.float32)
        if u.act == "turn" or floor is None:
            if floor is None:
                start = lead_in_s
            else:
                f = placed[floor]
                start = f["start"] + (f["speech"][-1, 1] if len(f["speech"]) else 0.0) + u.gap_s
            placed.append(dict(start=start, y=y, speech=sp, speaker=u.speaker))
            floor = len(placed) - 1
            if u.gain_db > 0 and u.pitch_st > 0 and len(sp):
                truth.append(("raised_voice", start + sp[0, 0], start + sp[-1, 1], u.speaker, None, "raised voice"))
            continue
        f = placed[floor]
        onset = f["start"] + u.at_s
        tone = ", competitive" if u.gain_db > 0 else ", cooperative"
        if u.act == "backchannel":
            placed.append(dict(start=onset, y=y, speech=sp, speaker=u.speaker))
            truth.append(("backchannel", onset, onset + sp[-1, 1], u.speaker, f["speaker"], "backchannel"))
        elif u.act == "interrupt" and u.cut_target_after_s is not None:
            f["y"], f["speech"] = _cut(f["y"], f["speech"], u.at_s + u.cut_target_after_s)
            placed.append(dict(start=onset, y=y, speech=sp, speaker=u.speaker))
            truth.append(("interruption", onset, f["start"] + f["speech"][-1, 1], u.speaker, f["speaker"],
                          "successful" + tone))
            floor = len(placed) - 1
        elif u.act == "interrupt" and u.drop_after_s is not None:
            y, sp = _cut(y, sp, u.drop_after_s)
            placed.append(dict(start=onset, y=y, speech=sp, speaker=u.speaker))
            truth.append(("interruption", onset, onset + sp[-1, 1], u.speaker, f["speaker"], "unsuccessful" + tone))
        else:
            raise ValueError(f"act {u.act!r} needs cut_target_after_s or drop_after_s (interrupt) or is unknown; "
                             "use 'turn', 'backchannel' or 'interrupt'.")
    end = max(p["start"] + len(p["y"]) / SR for p in placed) + tail_s if placed else tail_s
    n = int(np.ceil(end * SR))
    speakers = list(dict.fromkeys(u.speaker for u in script))
    tracks = {s: np.zeros(n, np.float32) for s in speakers}
    rows = []
    for p in placed:
        i0 = int(round(p["start"] * SR))
        seg = p["y"][: n - i0]
        tracks[p["speaker"]][i0: i0 + len(seg)] += seg
        t0 = i0 / SR
        rows += [(t0 + a, t0 + b, p["speaker"]) for a, b in p["speech"]]
    # a person's own overlapping placements (never scripted) would double count: merge per person
    speech = _merge_rows(rows)
    y = np.sum(list(tracks.values()), axis=0).astype(np.float32) if tracks else np.zeros(n, np.float32)
    events = pd.DataFrame(truth, columns=["kind", "start_s", "end_s", "participant_id", "target_participant_id", "label"])
    events = upgrade_legacy(events.sort_values("start_s").reset_index(drop=True))   # outcome, style from the label
    names = names or {s: s for s in speakers}
    return Composition(y=y, sr=SR, tracks=tracks, speech=speech, events=events, script=list(script),
                       names=names, duration_s=n / SR, seed=seed)


def _merge_rows(rows: list[tuple]) -> pd.DataFrame:
    """(start_s, end_s, participant_id) rows -> DataFrame, overlapping rows of one person merged."""
    out = []
    for pid in dict.fromkeys(r[2] for r in rows):
        iv = sorted((a, b) for a, b, q in rows if q == pid)
        cs, ce = iv[0]
        for a, b in iv[1:]:
            if a <= ce:
                ce = max(ce, b)
            else:
                out.append((cs, ce, pid))
                cs, ce = a, b
        out.append((cs, ce, pid))
    df = pd.DataFrame(out, columns=["start_s", "end_s", "participant_id"])
    return df.sort_values(["start_s", "end_s"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- random scripts


def _active(speech: np.ndarray, t: float, before_s: float = 0.0) -> bool:
    """True when speech covers [t - before_s, t]."""
    return bool(np.any((speech[:, 0] <= t - before_s) & (speech[:, 1] > t)))


def _speech_in(speech: np.ndarray, a: float, b: float) -> float:
    return float(np.sum(np.clip(np.minimum(speech[:, 1], b) - np.maximum(speech[:, 0], a), 0, None)))


def _max_pause(speech: np.ndarray, a: float, b: float) -> float:
    """Longest silence inside [a, b] given sorted speech intervals."""
    s = np.clip(speech, a, b)
    s = s[s[:, 1] > s[:, 0]]
    if len(s) == 0:
        return b - a
    gaps = np.r_[s[0, 0] - a, s[1:, 0] - s[:-1, 1], b - s[-1, 1]]
    return float(gaps.max())


def random_script(rng: np.random.Generator, library: ClipLibrary, *, n_speakers: int = 2,
                  duration_s: float = 120.0, speakers: list[str] | None = None,
                  p_backchannel: float = 0.6, p_unsuccessful: float = 0.3, p_successful: float = 0.3,
                  p_raised: float = 0.35) -> list[Utterance]:
    """A varied, unambiguous conversation script of about ``duration_s`` seconds.

    Per floor turn: up to two backchannels by others (probability ``p_backchannel`` each try), an
    unsuccessful interruption (``p_unsuccessful``), and the turn ends either with a successful
    interruption (``p_successful``) or a normal turn change with a gap drawn from
    -0.2..0.05 s (15 %), 0.05..0.6 s (65 %), 0.6..2 s (12 %) or 3..5 s (8 %, a silence).
    Interruptions have their voice raised by 6-10 dB with probability ``p_raised``.

    Unambiguous by construction, with DOMAIN.md's turn definition (a pause of 0.5 s ends a
    turn): every backchannel or interruption starts at least 1 s into the turn, inside the floor
    holder's speech, and an interruption after at least 1 s of their talk with no pause of 0.45 s;
    every attempt is one vocalisation (no pause of 0.45 s or more inside it); after a backchannel (0.25-0.9 s) or an unsuccessful
    attempt (1.3-3 s of speech) the floor holder keeps talking for at least 1.5 s with no pause
    of 0.8 s or more around the attempt; a successful interruption overlaps 0.5-1.6 s, the floor
    holder is cut inside their speech, and the interrupter talks on at least 1.5 s after the cut.
    """
    pool = speakers or library.turn_speakers
    if n_speakers > len(pool):
        raise ValueError(f"n_speakers={n_speakers} but the library has only {len(pool)} speakers with turn clips.")
    people = [str(s) for s in rng.choice(pool, size=n_speakers, replace=False)]
    script: list[Utterance] = []
    t = 0.0
    cur = people[int(rng.integers(n_speakers))]

    def turn_clips(spk: str, long: bool) -> tuple[int, ...]:
        k = len(library.turns[spk])
        m = int(rng.integers(2, 4)) if long else int(rng.integers(1, 3))
        if k == 1:
            m += 1
        return tuple(int(i) for i in rng.integers(0, k, size=m))

    def inner_gap() -> float:
        return float(rng.uniform(0.1, 0.4))

    pending = Utterance(cur, "turn", turn_clips(cur, True), gap_s=0.0, inner_gap_s=inner_gap())
    first_free = 1.0  # earliest event onset in the pending turn, seconds from its start
    while True:
        script.append(pending)
        u = pending
        _, sp = render(library, u)
        total = sp[-1, 1]
        t_turn_start = t
        cursor = first_free
        others = [p for p in people if p != u.speaker]
        # backchannels and unsuccessful attempts inside this turn, one after the other
        for _ in range(3):
            r = rng.random()
            if r < p_unsuccessful / 2:
                ev = _try_unsuccessful(rng, library, sp, cursor, others, p_raised)
            elif r < (p_unsuccessful + p_backchannel) / 2:
                ev = _try_backchannel(rng, library, sp, cursor, others)
            else:
                ev = None
            if ev is not None:
                utt, end_rel = ev
                script.append(utt)
                cursor = end_rel + 1.0
        t = t_turn_start + total
        if t >= duration_s:
            break
        nxt = others[int(rng.integers(len(others)))]
        clips = turn_clips(nxt, True)
        if rng.random() < p_successful:
            ev = _try_successful(rng, library, sp, cursor, nxt, clips, p_raised, inner_gap())
            if ev is not None:
                pending, onset_rel, cut_rel = ev
                t = t_turn_start + onset_rel
                first_free = (cut_rel - onset_rel) + 1.0
                continue
        r = rng.random()
        gap = (rng.uniform(-0.2, 0.05) if r < 0.15 else rng.uniform(0.05, 0.6) if r < 0.80
               else rng.uniform(0.6, 2.0) if r < 0.92 else rng.uniform(3.0, 5.0))
        pending = Utterance(nxt, "turn", clips, gap_s=float(gap), inner_gap_s=inner_gap())
        first_free = 1.0
        t += float(gap)
    return script


def _onsets(sp: np.ndarray, lo: float, hi: float, rng, *, talking_s: float = 0.0) -> np.ndarray:
    """Candidate onset times in [lo, hi] (10 ms grid) inside speech, shuffled; with
    ``talking_s``, the speaker has talked for that long before with no pause of 0.45 s or more
    (they are mid-turn by DOMAIN.md's turn definition with a 0.5 s gap)."""
    if hi <= lo:
        return np.zeros(0)
    grid = np.arange(lo, hi, FRAME_S)
    ok = np.array([_active(sp, x, 0.05) and (talking_s <= 0 or (x >= talking_s and _max_pause(sp, x - talking_s, x) < 0.45))
                   for x in grid], bool) if len(grid) else np.zeros(0, bool)
    cand = grid[ok]
    rng.shuffle(cand)
    return cand[:40]


def _try_backchannel(rng, library, sp, cursor, others):
    spk = others[int(rng.integers(len(others)))]
    if not library.shorts.get(spk):
        return None
    i = int(rng.integers(len(library.shorts[spk])))
    dur = library.shorts[spk][i].duration_s
    end_turn = sp[-1, 1]
    for x in _onsets(sp, cursor, end_turn - dur - 1.5, rng):
        # the floor holder talks within 0.3 s before and after (carries on), and keeps talking
        if _speech_in(sp, x + dur, x + dur + 0.3) > 0 and _max_pause(sp, x - 0.3, x + dur + 0.3) < 0.45:
            return Utterance(spk, "backchannel", (i,), at_s=float(round(x, 2))), x + dur
    return None


def _try_unsuccessful(rng, library, sp, cursor, others, p_raised):
    spk = others[int(rng.integers(len(others)))]
    k = len(library.turns[spk])
    clips = tuple(int(c) for c in rng.integers(0, k, size=2))
    u0 = Utterance(spk, "interrupt", clips, inner_gap_s=float(rng.uniform(0.1, 0.3)))
    _, lsp = render(library, u0)
    want = float(rng.uniform(1.3, 3.0))
    # drop inside the interrupter's speech, with >= 1.3 s of their speech before it
    drops = [x for x in np.arange(want, min(want + 1.5, lsp[-1, 1]), FRAME_S)
             if _active(lsp, x, 0.1) and _speech_in(lsp, 0, x) >= 1.3 and _max_pause(lsp, 0, x) < 0.45]
    if not drops:
        return None
    drop = float(drops[0])
    end_turn = sp[-1, 1]
    for x in _onsets(sp, cursor, end_turn - drop - 1.5, rng, talking_s=1.0):
        if _max_pause(sp, x, x + drop + 1.5) < 0.6 and _speech_in(sp, x + drop, x + drop + 0.3) > 0:
            gain = float(rng.uniform(6, 10)) if rng.random() < p_raised else 0.0
            return replace(u0, at_s=float(round(x, 2)), drop_after_s=drop, gain_db=gain), x + drop
    return None


def _try_successful(rng, library, sp, cursor, spk, clips, p_raised, inner_gap):
    u0 = Utterance(spk, "interrupt", clips, inner_gap_s=inner_gap)
    _, lsp = render(library, u0)
    end_turn = sp[-1, 1]
    for x in _onsets(sp, max(cursor, 1.0), end_turn - 0.6, rng, talking_s=1.0):
        for ov in rng.uniform(0.5, 1.6, size=6):
            c = x + ov
            # cut inside the floor holder's speech, which runs without a long pause until then
            if c >= end_turn - 0.3 or not _active(sp, c, 0.1) or _max_pause(sp, x, c) >= 0.4:
                continue
            # the interrupter keeps talking: speech through the overlap and >= 1.5 s more after it
            if _speech_in(lsp, ov, ov + 1.5) < 1.0 or lsp[-1, 1] < ov + 1.5 or _max_pause(lsp, 0, ov + 1.5) >= 0.45:
                continue
            gain = float(rng.uniform(6, 10)) if rng.random() < p_raised else 0.0
            u = replace(u0, at_s=float(round(x, 2)), cut_target_after_s=float(round(ov, 2)), gain_db=gain)
            return u, x, c
    return None


def compose_set(*, n: int = 12, seed: int = 0, duration_s: tuple[float, float] = (60.0, 150.0),
                library: ClipLibrary | None = None, data_root: str = str(DEFAULT_DATA_ROOT)) -> list[Composition]:
    """A fixed, varied set of conversations: 2-4 people (cycling), durations drawn in
    ``duration_s``, per-person levels within +-4 dB, display names from :data:`DISPLAY_NAMES`.
    Same seed, same set."""
    library = library or load_library(data_root)
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        n_spk = 2 + i % 3
        dur = float(rng.uniform(*duration_s))
        script = random_script(rng, library, n_speakers=n_spk, duration_s=dur)
        spk = list(dict.fromkeys(u.speaker for u in script))
        names = {s: DISPLAY_NAMES[j % len(DISPLAY_NAMES)] for j, s in enumerate(spk)}
        levels = {s: float(rng.uniform(-4, 4)) for s in spk}
        out.append(compose(script, library, names=names, levels_db=levels, seed=seed * 1000 + i))
    return out
