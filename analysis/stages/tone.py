"""Tone of voice relative to each person's own baseline.

:func:`prosody_frames` measures, every ``hop_s`` seconds, loudness (dB of RMS), pitch (F0, Hz,
by Praat's autocorrelation method through ``praat-parselmouth``) and syllable nuclei (peaks of
Praat's intensity contour that are voiced, after de Jong & Wempe 2009). A session recorded with
one microphone per person gives one frame table per person (a ``participant_id`` column).

A person's voice is measured only where it can be heard on its own: on their own track inside
their speech, or, from one microphone, where they speak and nobody else does; overlapped
stretches are marked (``overlap_share``), never attributed. Their *baseline* is the median over
all of that speech in the session (a few heated minutes do not move a median).

:func:`segment_tone` summarises each speech segment against the baseline (loudness, pitch level,
range and variability, voiced share, speaking rate, the pause before it) and flags *raised*
(louder and higher), *fast* and *flat* segments; :func:`arousal_curve` gives each person's vocal
arousal over time and :func:`heated_exchanges` the stretches in which two or more people are
aroused while the floor changes hands fast. "Vocal arousal", never "anger".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.core import events as ev
from analysis.core.frames import as_signal, centred_frame_blocks, signal_part


@dataclass(frozen=True)
class ToneParams:
    hop_s: float = 0.02                 # frame hop, seconds
    fmin_hz: float = 65.0               # lowest F0 searched
    fmax_hz: float = 450.0              # highest F0 searched
    silence_threshold: float = 0.01     # Praat: frames whose peak is below this share of the
                                        # recording's peak are unvoiced (0.01 = 40 dB below it, so
                                        # a quiet, distant talker is still measured)
    voicing_threshold: float = 0.45     # Praat: autocorrelation strength (0-1) a frame needs to be
                                        # voiced (Praat's default)
    nucleus_floor_db: float = 25.0      # syllable nuclei: an intensity peak counts only when at most
                                        # this many dB below the track's loud speech (its 99th
                                        # percentile; de Jong & Wempe's default)
    nucleus_dip_db: float = 2.0         # syllable nuclei: a peak must stand this many dB above the dip
                                        # that separates it from the next higher peak
    raised_loudness_db: float = 4.0     # raised voice: at least this many dB over own baseline
                                        # (and raised_pitch_st higher)
    raised_pitch_st: float = 2.0        # raised voice: at least this many semitones over own
                                        # baseline (and raised_loudness_db louder)
    min_voiced_frames: int = 10         # fewer voiced frames than this: no tone for the segment
    raised_min_heard_s: float = 1.0     # raised voice: at least this much of the segment is the
                                        # person's voice heard alone (one loud word is not a raised
                                        # voice; the start of an interruption has its own style call)
    min_measured_s: float = 2.0         # speaking rate and flat voice are judged only on segments
                                        # with at least this much of the person's voice heard alone
    fast_rate_ratio: float = 1.4        # faster speech: syllables per second at least this many
                                        # times the person's usual rate (median over their segments)
    min_usual_segments: int = 3         # a person's usual rate or pitch range needs at least this
                                        # many measured segments of theirs (fewer: not judged)
    flat_range_ratio: float = 0.5       # flat voice: pitch range (10th-90th percentile) at most this
                                        # share of the person's usual range, with flat_loudness_db
    flat_loudness_db: float = 3.0       # flat voice: at least this many dB quieter than the person's
                                        # baseline, with a narrow pitch range (flat_range_ratio)
    long_pause_s: float = 2.0           # a flat turn begun this long after the other person stopped
                                        # is described as a slow reply
    merge_gap_s: float = 3.0            # flagged segments of one person this close form one passage
    arousal_window_s: float = 2.0       # the arousal curve's window: each point summarises this much
                                        # of the person's own solo speech
    arousal_step_s: float = 1.0         # the arousal curve's step between points
    heated_window_s: float = 20.0       # heated exchange: the length of the stretch looked at
    heated_step_s: float = 5.0          # heated exchange: the step between stretches looked at
    heated_arousal: float = 0.5         # heated exchange: a person counts as aroused when their mean
                                        # arousal in the stretch is at least this (1 = raised voice)
    heated_min_people: int = 2          # heated exchange: at least this many people aroused at once
    heated_min_turn_changes: int = 4    # heated exchange: at least this many changes of speaker in
                                        # the stretch
    heated_min_interruptions: int = 1   # heated exchange: at least this many interruptions begin in
                                        # the stretch

    def to_dict(self) -> dict:
        return asdict(self)


FRAME_COLUMNS = ["t_s", "loudness_db", "f0_hz", "nucleus"]


def prosody_frames(y: np.ndarray, sr: int, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Frame table :data:`FRAME_COLUMNS` of mono ``y`` at ``sr`` Hz, one row every ``hop_s``
    seconds from 0: ``loudness_db`` (dB of the RMS over ``2 * hop_s``), ``f0_hz`` (Praat's ``To
    Pitch (ac)`` between ``fmin_hz`` and ``fmax_hz``; NaN when unvoiced) and ``nucleus`` (True at
    a syllable nucleus: a voiced peak of Praat's intensity contour, see ``nucleus_*``)."""
    hop = int(round(params.hop_s * sr))
    if len(y) < 2048:
        return pd.DataFrame({"t_s": [], "loudness_db": [], "f0_hz": [], "nucleus": pd.Series([], dtype=bool)})
    rms = _rms(y, hop)
    t = np.arange(len(rms)) * params.hop_s
    f0 = np.full(len(rms), np.nan)
    nucleus = np.zeros(len(rms), bool)
    if len(y) / sr >= 3 / params.fmin_hz:       # Praat needs three periods of the lowest pitch
        f0, db = _praat_tracks(y, sr, t, hop, params)
        nucleus = _nuclei(db, f0, params)
    return pd.DataFrame({"t_s": np.round(t, 3), "loudness_db": 20 * np.log10(rms + 1e-6), "f0_hz": f0,
                         "nucleus": nucleus})


# Praat measures a long recording this many seconds at a time, with PRAAT_MARGIN_S of signal
# either side: its float64 copy of a 50-minute signal alone is 384 MB
PRAAT_BLOCK_S = 600.0
PRAAT_MARGIN_S = 10.0


def _praat_tracks(y: np.ndarray, sr: int, t: np.ndarray, hop: int, params: ToneParams) -> tuple[np.ndarray, np.ndarray]:
    """Praat's F0 (Hz, NaN when unvoiced) and intensity (dB) of mono ``y`` at ``sr`` Hz, read at
    the frame times ``t`` (s, every ``hop`` samples from 0). A recording longer than
    :data:`PRAAT_BLOCK_S` is measured a block at a time, each with :data:`PRAAT_MARGIN_S` of
    signal either side, so that memory does not grow with length. The blocks give what the whole
    signal gives: each starts on a multiple of ``hop`` and ends a multiple of ``hop`` before the
    end, so Praat's frames fall on the same times, and the silence threshold, which Praat takes
    relative to the sound's peak, is rescaled to the whole recording's peak. Only the pitch path
    near a block's edge can differ (tests/test_tone.py measures it)."""
    n, block, margin = len(y), int(PRAAT_BLOCK_S * sr) // hop * hop, int(PRAAT_MARGIN_S * sr) // hop * hop
    if n <= block:
        return _praat_block(y, sr, t, params, params.silence_threshold)
    whole_peak = _abs_peak(y)
    f0, db = np.full(len(t), np.nan), np.full(len(t), np.nan)
    for start in range(0, n, block):
        lo = max(0, start - margin)
        hi = n - (max(0, n - (start + block + margin)) // hop) * hop     # the end less a multiple of hop
        own = (t >= start / sr) & ((t < (start + block) / sr) if start + block < n else True)
        piece = signal_part(y, lo, hi)          # a 16-bit signal stays one: no float32 copy of the block
        peak = _abs_peak(piece)
        threshold = params.silence_threshold * whole_peak / peak if peak > 0 else params.silence_threshold
        f0[own], db[own] = _praat_block(piece, sr, t[own] - lo / sr, params, threshold)
    return f0, db


def _praat_block(y: np.ndarray, sr: int, t: np.ndarray, params: ToneParams, silence_threshold: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, NaN when unvoiced; Praat's ``To Pitch (ac)``) and intensity (dB; ``To
    Intensity``) of ``y`` at the times ``t`` (s from the start of ``y``)."""
    sound = _praat_sound(y, sr)
    pitch = sound.to_pitch_ac(time_step=params.hop_s, pitch_floor=params.fmin_hz, pitch_ceiling=params.fmax_hz,
                              silence_threshold=silence_threshold, voicing_threshold=params.voicing_threshold)
    hz = _at(t, pitch.selected_array["frequency"], pitch.xs()[0], pitch.time_step, fill=0.0)
    intensity = sound.to_intensity(minimum_pitch=params.fmin_hz, time_step=params.hop_s, subtract_mean=False)
    db = _at(t, intensity.values[0], intensity.xs()[0], intensity.time_step, fill=np.nan)
    return np.where(hz > 0, hz, np.nan), db


def _abs_peak(y: np.ndarray) -> float:
    """Praat's peak for its silence threshold: the largest ``|y - mean(y)|``."""
    mean = float(np.mean(y, dtype=np.float64))
    return float(max(abs(float(np.max(y)) - mean), abs(float(np.min(y)) - mean)))


# loudness frames computed at a time (80 s at the 20 ms hop): memory flat in session length
LOUDNESS_BLOCK_FRAMES = 4000
# samples copied into Praat's sound at a time (about 65 s at 16 kHz)
PRAAT_BLOCK_SAMPLES = 2**20


def _rms(y: np.ndarray, hop: int) -> np.ndarray:
    """``librosa.feature.rms(y=y, frame_length=2 * hop, hop_length=hop, center=True)[0]``
    computed :data:`LOUDNESS_BLOCK_FRAMES` frames at a time, with the same output: shape
    ``(1 + len(y) // hop,)``."""
    import librosa

    return np.concatenate([librosa.feature.rms(y=samples, frame_length=2 * hop, hop_length=hop, center=False)[0]
                           for _, samples in centred_frame_blocks(as_signal(y), 2 * hop, hop, LOUDNESS_BLOCK_FRAMES)])


def _praat_sound(y: np.ndarray, sr: int):
    """A ``parselmouth.Sound`` of mono ``y`` at ``sr`` Hz, as ``parselmouth.Sound(np.asarray(y,
    np.float64), sr)`` but filled :data:`PRAAT_BLOCK_SAMPLES` at a time: the only float64 copy
    of the whole signal is Praat's own (the zeros it starts from are never written, so they take
    no memory)."""
    import parselmouth

    sound = parselmouth.Sound(np.zeros(len(y)), sampling_frequency=sr)
    samples = sound.values          # a view of Praat's samples, shape (1, len(y))
    for first in range(0, len(y), PRAAT_BLOCK_SAMPLES):
        samples[0, first:first + PRAAT_BLOCK_SAMPLES] = y[first:first + PRAAT_BLOCK_SAMPLES]
    return sound


def _at(t: np.ndarray, values: np.ndarray, x0: float, dx: float, *, fill: float) -> np.ndarray:
    """``values`` sampled every ``dx`` s from ``x0`` s, read at the times ``t`` (s); ``fill``
    outside them."""
    index = np.round((t - x0) / dx).astype(int)
    inside = (index >= 0) & (index < len(values))
    out = np.full(len(t), fill, float)
    out[inside] = values[index[inside]]
    return out


def _nuclei(db: np.ndarray, f0: np.ndarray, params: ToneParams) -> np.ndarray:
    """Syllable nuclei among the frames: peaks of Praat's intensity ``db`` (dB) that stand
    ``nucleus_dip_db`` above their surroundings, are at most ``nucleus_floor_db`` below the
    track's 99th percentile and are voiced (``f0`` not NaN)."""
    from scipy.signal import find_peaks

    finite = np.isfinite(db)
    if not finite.any():
        return np.zeros(len(db), bool)
    db = np.where(finite, db, np.nanmin(db))
    peaks, _ = find_peaks(db, prominence=params.nucleus_dip_db)
    floor = np.percentile(db, 99) - params.nucleus_floor_db
    nucleus = np.zeros(len(db), bool)
    nucleus[peaks[(db[peaks] >= floor) & ~np.isnan(f0[peaks])]] = True
    return nucleus


def _covered(times: np.ndarray, intervals: pd.DataFrame) -> np.ndarray:
    """Which of the sorted ``times`` (s) fall in any ``[start_s, end_s)`` of ``intervals``."""
    change = np.zeros(len(times) + 1, int)
    np.add.at(change, np.searchsorted(times, intervals.start_s.to_numpy(float), side="left"), 1)
    np.add.at(change, np.searchsorted(times, intervals.end_s.to_numpy(float), side="left"), -1)
    return np.cumsum(change)[:-1] > 0


@dataclass(frozen=True)
class Voice:
    """One person's measurable voice: frame arrays (``t`` s, ``loud`` dB, ``f0`` Hz or NaN,
    ``nucleus`` bool) of the track that carries it, ``heard`` (frames that measure them: their
    speech on their own track, or their solo speech on a shared one), ``overlap`` (someone else
    speaks too) and the baseline medians over ``heard`` (NaN when never heard)."""

    t: np.ndarray
    loud: np.ndarray
    f0: np.ndarray
    nucleus: np.ndarray
    heard: np.ndarray
    overlap: np.ndarray
    base_loud: float
    base_f0: float

    @property
    def voiced(self) -> np.ndarray:
        return self.heard & ~np.isnan(self.f0)


def voice_of(frames: pd.DataFrame, speech: pd.DataFrame, pid: str) -> Voice:
    """``pid``'s :class:`Voice` from the session's prosody frames (sorted by ``t_s``; with a
    ``participant_id`` column, their own track's rows) and speech turns."""
    own_track = "participant_id" in frames.columns
    if own_track:
        frames = frames[frames.participant_id == pid]
    t = frames.t_s.to_numpy(float)
    mine = speech.participant_id == pid
    speaking = _covered(t, speech[mine])
    overlap = speaking & _covered(t, speech[~mine])
    heard = speaking if own_track else speaking & ~overlap
    loud, f0 = frames.loudness_db.to_numpy(float), frames.f0_hz.to_numpy(float)
    nucleus = frames.nucleus.to_numpy(bool) if "nucleus" in frames.columns else np.zeros(len(t), bool)
    voiced = heard & ~np.isnan(f0)
    return Voice(t, loud, f0, nucleus, heard, overlap,
                 float(np.nanmedian(loud[heard])) if heard.any() else np.nan,
                 float(np.median(f0[voiced])) if voiced.any() else np.nan)


def voices(frames: pd.DataFrame, speech: pd.DataFrame) -> dict[str, Voice]:
    """Every speaking person's :class:`Voice` (``participant_id -> Voice``)."""
    frames = frames.sort_values("t_s", kind="stable")
    return {pid: voice_of(frames, speech, pid) for pid in speech.participant_id.unique()}


SEGMENT_COLUMNS = ["start_s", "end_s", "participant_id", "overlap_share", "loudness_db", "f0_hz", "loudness_delta_db",
                   "pitch_delta_st", "pitch_range_st", "pitch_sd_st", "voiced_share", "speech_rate_sps", "pause_before_s",
                   "usual_range_st", "usual_rate_sps", "raised", "fast", "flat"]


def _pauses_before(own: pd.DataFrame, others: pd.DataFrame) -> np.ndarray:
    """For each of ``own``'s segments, seconds since anyone else last stopped speaking (0 when
    someone is still speaking; NaN when nobody else has spoken yet)."""
    others = others.sort_values("start_s")
    last_end = np.maximum.accumulate(others.end_s.to_numpy(float)) if len(others) else np.zeros(0)
    i = np.searchsorted(others.start_s.to_numpy(float), own.start_s.to_numpy(float), side="left") - 1
    pause = np.full(len(own), np.nan)
    has = i >= 0
    pause[has] = np.maximum(0.0, own.start_s.to_numpy(float)[has] - last_end[i[has]])
    return pause


def segment_tone(frames: pd.DataFrame, speech: pd.DataFrame, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """One row per speech segment, :data:`SEGMENT_COLUMNS`: ``overlap_share`` (share of it during
    which someone else speaks too), the segment's loudness (dB) and F0 (Hz), their deltas against
    the person's baseline (dB, semitones), pitch range (10th-90th percentile) and standard
    deviation (semitones), ``voiced_share`` of the heard frames, ``speech_rate_sps`` (syllable
    nuclei per second heard; NaN under ``min_measured_s``), ``pause_before_s``, the person's
    usual range and rate (medians over their measured segments, NaN with fewer than
    ``min_usual_segments``) and the ``raised``/``fast``/``flat``
    flags. Measures are NaN where the segment has too little of the voice heard alone."""
    if speech.empty or frames.empty:
        return pd.DataFrame(columns=SEGMENT_COLUMNS)
    rows = []
    for pid, voice in voices(frames, speech).items():
        own = speech[speech.participant_id == pid].sort_values("start_s")
        pauses = _pauses_before(own, speech[speech.participant_id != pid])
        lows = np.searchsorted(voice.t, own.start_s.to_numpy(float), side="left")
        highs = np.searchsorted(voice.t, own.end_s.to_numpy(float), side="left")
        for seg, lo, hi, pause in zip(own.itertuples(), lows, highs, pauses):
            heard, voiced = voice.heard[lo:hi], voice.voiced[lo:hi]
            enough = voiced.sum() >= params.min_voiced_frames
            heard_s = heard.sum() * params.hop_s
            semitones = 12 * np.log2(voice.f0[lo:hi][voiced] / voice.base_f0) if enough else np.array([np.nan])
            rows.append(dict(
                start_s=seg.start_s, end_s=seg.end_s, participant_id=pid,
                overlap_share=float(voice.overlap[lo:hi].mean()) if hi > lo else 0.0,
                loudness_db=float(np.median(voice.loud[lo:hi][heard])) if heard.any() else np.nan,
                f0_hz=float(np.median(voice.f0[lo:hi][voiced])) if enough else np.nan,
                pitch_delta_st=float(np.median(semitones)),
                pitch_range_st=float(np.subtract(*np.nanpercentile(semitones, [90, 10]))) if enough else np.nan,
                pitch_sd_st=float(np.std(semitones)) if enough else np.nan,
                voiced_share=float(voiced.sum() / heard.sum()) if heard.any() else np.nan,
                speech_rate_sps=float(voice.nucleus[lo:hi][heard].sum() / heard_s)
                if heard_s >= params.min_measured_s else np.nan,
                pause_before_s=pause, heard_s=heard_s, enough=enough,
            ))
            rows[-1]["loudness_delta_db"] = rows[-1]["loudness_db"] - voice.base_loud
    table = pd.DataFrame(rows)
    by_person = table.groupby("participant_id")
    for usual, measure in (("usual_range_st", "pitch_range_st"), ("usual_rate_sps", "speech_rate_sps")):
        enough_segments = by_person[measure].transform("count") >= params.min_usual_segments
        table[usual] = by_person[measure].transform("median").where(enough_segments)
    table["raised"] = (table.enough & (table.heard_s >= params.raised_min_heard_s)
                       & (table.loudness_delta_db >= params.raised_loudness_db)
                       & (table.pitch_delta_st >= params.raised_pitch_st))
    table["fast"] = table.speech_rate_sps >= params.fast_rate_ratio * table.usual_rate_sps
    table["flat"] = (table.enough & (table.heard_s >= params.min_measured_s)
                     & (table.pitch_range_st <= params.flat_range_ratio * table.usual_range_st)
                     & (table.loudness_delta_db <= -params.flat_loudness_db))
    return table[SEGMENT_COLUMNS].sort_values("start_s", ignore_index=True)


def passages(tone: pd.DataFrame, flag: str, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Segments of one person flagged ``flag`` (``raised``, ``fast`` or ``flat``) and at most
    ``merge_gap_s`` apart, merged: ``start_s, end_s, participant_id`` and, over the merged
    segments, the largest ``loudness_delta_db``, ``pitch_delta_st`` and ``speech_rate_sps``, the
    smallest ``loudness_delta_db_min`` and ``pitch_range_st``, the first ``pause_before_s`` and the
    person's ``usual_range_st`` and ``usual_rate_sps``."""
    columns = ["start_s", "end_s", "participant_id", "loudness_delta_db", "pitch_delta_st", "speech_rate_sps",
               "loudness_delta_db_min", "pitch_range_st", "pause_before_s", "usual_range_st", "usual_rate_sps"]
    flagged = tone[tone[flag].astype(bool)].sort_values(["participant_id", "start_s"])
    if flagged.empty:
        return pd.DataFrame(columns=columns)
    same = flagged.participant_id.eq(flagged.participant_id.shift())
    reach = flagged.groupby("participant_id").end_s.cummax().shift()
    group = (~(same & (flagged.start_s - reach <= params.merge_gap_s))).cumsum()
    merged = flagged.groupby(group).agg(
        start_s=("start_s", "min"), end_s=("end_s", "max"), participant_id=("participant_id", "first"),
        loudness_delta_db=("loudness_delta_db", "max"), pitch_delta_st=("pitch_delta_st", "max"),
        speech_rate_sps=("speech_rate_sps", "max"), loudness_delta_db_min=("loudness_delta_db", "min"),
        pitch_range_st=("pitch_range_st", "min"), pause_before_s=("pause_before_s", "first"),
        usual_range_st=("usual_range_st", "first"), usual_rate_sps=("usual_rate_sps", "first"))
    return merged[columns].sort_values("start_s", ignore_index=True)


def raised_passages(tone: pd.DataFrame, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Raised-voice passages (:func:`passages` of ``raised``)."""
    return passages(tone, "raised", params=params)


AROUSAL_COLUMNS = ["participant_id", "t_s", "loudness_delta_db", "pitch_delta_st", "arousal"]


def arousal_curve(frames: pd.DataFrame, speech: pd.DataFrame, *, params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Each person's vocal arousal over time: one row per ``arousal_step_s`` window of
    ``arousal_window_s`` in which their voice is heard alone in at least ``min_voiced_frames``
    voiced frames: ``participant_id, t_s`` (window centre, s), ``loudness_delta_db``,
    ``pitch_delta_st`` (medians against the person's own baseline) and ``arousal``, the mean of
    the two deltas as shares of the raised-voice thresholds (1.0: as loud and as high as a raised
    voice; 0: their usual voice). Windows without enough of their voice have no row (not
    measured, not calm)."""
    if speech.empty or frames.empty:
        return pd.DataFrame(columns=AROUSAL_COLUMNS)
    step = max(1, int(round(params.arousal_step_s / params.hop_s)))
    width = max(1, int(round(params.arousal_window_s / params.hop_s)))
    rows = []
    for pid, v in voices(frames, speech).items():
        if not np.isfinite(v.base_loud) or not np.isfinite(v.base_f0):
            continue
        t, voiced, heard = v.t, v.voiced, v.heard
        counts = np.concatenate([[0], np.cumsum(voiced)])
        for i in np.arange(0, max(len(t) - width + 1, 1), step):
            j = min(i + width, len(t))
            if counts[j] - counts[i] < params.min_voiced_frames:
                continue
            d_loud = float(np.median(v.loud[i:j][heard[i:j]])) - v.base_loud
            d_pitch = float(np.median(12 * np.log2(v.f0[i:j][voiced[i:j]] / v.base_f0)))
            arousal = (d_loud / params.raised_loudness_db + d_pitch / params.raised_pitch_st) / 2
            rows.append((pid, round(float(t[i] + (t[j - 1] - t[i]) / 2), 3), d_loud, d_pitch, arousal))
    return pd.DataFrame(rows, columns=AROUSAL_COLUMNS).sort_values(["participant_id", "t_s"], ignore_index=True)


HEATED_COLUMNS = ["start_s", "end_s", "people", "arousal", "turn_changes", "interruptions"]


def heated_exchanges(arousal: pd.DataFrame, speech: pd.DataFrame, interruption_starts_s: np.ndarray, *,
                     params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Stretches in which at least ``heated_min_people`` people are aroused (mean arousal in a
    ``heated_window_s`` window at least ``heated_arousal``, from two or more curve points each)
    while the speaker changes at least ``heated_min_turn_changes`` times and at least
    ``heated_min_interruptions`` interruptions begin; overlapping windows are merged and cut to
    the first and last curve point at which one of those people is aroused.
    Columns :data:`HEATED_COLUMNS`: ``people`` (participant ids, most aroused first), ``arousal``
    (the highest mean arousal of a person in the stretch), counts of speaker changes and
    interruptions starting inside it."""
    if arousal.empty or speech.empty:
        return pd.DataFrame(columns=HEATED_COLUMNS)
    turns = speech.sort_values("start_s")
    changed = turns.participant_id.ne(turns.participant_id.shift()).to_numpy().copy()
    changed[0] = False
    change_times = turns.start_s.to_numpy(float)[changed]
    interruptions = np.sort(np.asarray(interruption_starts_s, float))
    curves = {pid: (c.t_s.to_numpy(float), c.arousal.to_numpy(float))
              for pid, c in arousal.sort_values("t_s").groupby("participant_id")}
    end = float(speech.end_s.max())

    def count(times, a, b):
        return int(np.searchsorted(times, b, side="left") - np.searchsorted(times, a, side="left"))

    windows = []
    for a in np.arange(0.0, max(end - params.heated_window_s, 0.0) + params.heated_step_s, params.heated_step_s):
        b = a + params.heated_window_s
        aroused = {}
        for pid, (t, values) in curves.items():
            lo, hi = np.searchsorted(t, a, side="left"), np.searchsorted(t, b, side="left")
            if hi - lo >= 2 and values[lo:hi].mean() >= params.heated_arousal:
                aroused[pid] = float(values[lo:hi].mean())
        if (len(aroused) >= params.heated_min_people and count(change_times, a, b) >= params.heated_min_turn_changes
                and count(interruptions, a, b) >= params.heated_min_interruptions):
            windows.append((a, min(b, end), aroused))
    merged = []
    for a, b, aroused in windows:
        if merged and a <= merged[-1][1]:
            last = merged[-1]
            people = {pid: max(x, last[2].get(pid, x)) for pid, x in aroused.items()}
            merged[-1] = (last[0], b, {**last[2], **people})
        else:
            merged.append((a, b, aroused))
    rows = []
    for a, b, people in merged:
        # from the first to the last curve point at which one of them is aroused
        hot = np.concatenate([t[(t >= a) & (t < b) & (values >= params.heated_arousal)]
                              for pid, (t, values) in curves.items() if pid in people])
        a, b = (float(hot.min()), float(hot.max())) if len(hot) else (a, b)
        rows.append((a, b, sorted(people, key=people.get, reverse=True), max(people.values()),
                     count(change_times, a, b), count(interruptions, a, b)))
    return pd.DataFrame(rows, columns=HEATED_COLUMNS)


def tone_events(segments: pd.DataFrame, arousal: pd.DataFrame, speech: pd.DataFrame,
                interruption_starts_s: np.ndarray, names: dict[str, str], *,
                params: ToneParams = ToneParams()) -> pd.DataFrame:
    """Contract events (:data:`analysis.core.events.STAGE_COLUMNS`) from a session's tone
    segments (:func:`segment_tone`) and arousal curves: raised-voice, flat-voice and
    faster-speech passages, and heated exchanges (which also need the speaker turns and the
    interruptions' start times, s). ``names``: participant id -> display name."""
    def named(pid: str) -> str:
        return names.get(pid, pid)

    rows = []
    for r in passages(segments, "raised", params=params).itertuples():
        rows.append(dict(start_s=r.start_s, end_s=r.end_s, kind="raised_voice", participant_id=r.participant_id,
                         label="raised voice", value=r.loudness_delta_db, explanation=ev.explain(
                             "raised_voice", name=named(r.participant_id), loudness_db=r.loudness_delta_db,
                             pitch_st=r.pitch_delta_st, start=r.start_s, end=r.end_s)))
    for r in passages(segments, "flat", params=params).itertuples():
        slow = np.isfinite(r.pause_before_s) and r.pause_before_s >= params.long_pause_s
        rows.append(dict(start_s=r.start_s, end_s=r.end_s, kind="flat_voice", participant_id=r.participant_id,
                         label="flat, quiet voice", value=r.loudness_delta_db_min, explanation=ev.explain(
                             "flat_voice", "after_pause" if slow else "default", name=named(r.participant_id),
                             db=-r.loudness_delta_db_min, range_st=r.pitch_range_st, usual_st=r.usual_range_st,
                             pause=ev.fmt_s(r.pause_before_s) if slow else "", start=r.start_s, end=r.end_s)))
    for r in passages(segments, "fast", params=params).itertuples():
        rows.append(dict(start_s=r.start_s, end_s=r.end_s, kind="speeding_up", participant_id=r.participant_id,
                         label="faster speech", value=r.speech_rate_sps / r.usual_rate_sps, explanation=ev.explain(
                             "speeding_up", name=named(r.participant_id), rate=r.speech_rate_sps,
                             usual=r.usual_rate_sps, start=r.start_s, end=r.end_s)))
    heated = heated_exchanges(arousal, speech, interruption_starts_s, params=params)
    for r in heated.itertuples():
        people = [named(pid) for pid in r.people]
        rows.append(dict(start_s=r.start_s, end_s=r.end_s, kind="heated_exchange", participant_id=r.people[0],
                         target_participant_id=r.people[1], label="heated exchange", value=float(len(r.people)),
                         explanation=ev.explain(
                             "heated_exchange", people=ev.names_list(people), both="both" if len(people) == 2 else "all",
                             changes=r.turn_changes, interruptions=ev.count_words(r.interruptions, "interruption"),
                             start=ev.fmt_s(r.start_s), end=ev.fmt_s(r.end_s))))
    return pd.DataFrame(rows, columns=ev.STAGE_COLUMNS).assign(confidence=1.0)
