"""Conversation dynamics from speaker turns: turns, overlaps, backchannels, interruptions, silences.

Pure functions over a table of speech segments; no I/O, no models. Every threshold is a named
field of :class:`DynamicsParams` (seconds, decibels or semitones, as the name says), recorded in
``DynamicsResult.params`` so the dashboard can show it next to the counts.

Definitions (all times in float seconds from session start; see ``DOMAIN.md``)
-------------------------------------------------------------------------------
*Stretch.*  One person's speech segments joined across their own pauses shorter than
``turn_gap_s``.  Everything below works on stretches, so a fragmented turn (a speaker who pauses
briefly mid-sentence) is one unit.

*Context speaker.*  When listener L starts a stretch at time t, the context speaker S is another
person who is talking at t (a stretch of S covers t) or who paused less than ``turn_gap_s``
before t (L came in during S's short pause).  If several people qualify, the one talking longest
(earliest stretch start) is chosen.  Stretches already classified as backchannels are never a
context.  A stretch with no context speaker simply starts a turn.

*Who gave way.*  From L's onset, S's speech is followed across S's own pauses shorter than
``floor_hold_s`` (S pausing briefly while L talks has not given way).  S *yields* at the end of
that speech, time y.  L *keeps the floor* when L talks alone for at least ``floor_hold_s``
after y (``y + floor_hold_s <= end of L's stretch``).  S *carries on* when S is still talking when
L stops, or resumes within ``turn_gap_s`` after L stops.

*Backchannel.*  L's stretch is at most ``backchannel_max_s`` long and S carries on.  Not an
interruption, whatever its overlap (it may also fall in S's short pause, with no overlap).

*Interruption.*  S was mid-turn (S's stretch started at least ``min_elapsed_s`` before L's
onset), and either
  - **successful**: S kept talking at least ``min_overlap_s`` after L's onset, then yielded
    within ``interruption_window_s`` of it, and L kept the floor;
  - **contested**: as successful, but S yielded only after ``interruption_window_s`` (both talked
    at once longer than the window before S gave way);
  - **unsuccessful**: L's stretch is longer than ``backchannel_max_s`` and S carries on
    (L dropped out).
An overlapped start shorter than ``min_overlap_s`` after which S stops is an ordinary early
start of the next turn (negative response latency), not an interruption.  Silent interruptions
(coming in during a mid-sentence pause without overlap) are not detected: without words a pause
before a completed sentence and one inside a sentence look the same.

*Competitive / cooperative* (only with ``tone_frames``).  The interrupter's median loudness or
pitch over the first ``tone_window_s`` of their speech in the event, compared with their own
median over the session: at least ``competitive_loudness_db`` louder or
``competitive_f0_semitones`` higher is competitive, otherwise cooperative.  With a mixture track
(no ``participant_id`` column in ``tone_frames``) only frames where the interrupter talks alone
are used, on both sides of the comparison, because overlapped audio is louder simply because two
people talk; if too few such frames exist the tone is reported as not measurable.
The interruption ``label`` is ``"<outcome>"`` or ``"<outcome>, <tone>"``, e.g.
``"successful, competitive"``, ``"unsuccessful, cooperative"``, ``"contested"``.

*Turn (floor turn).*  A stretch that is not a backchannel, not an unsuccessful interruption and
not a short overlap inside someone's turn takes the floor.  Consecutive floor stretches of the
same person form one turn when no one else took the floor in between and no silence of
``turn_gap_s`` or more separates them (a backchannel can fill a pause).  A person holds the floor
from their turn's start until it ends or the next turn starts.

*Response latency.*  At each change of turn holder: next turn start minus previous turn end
(negative when they overlap).

*Overlap.*  Any time two people's speech segments (raw, not stretches) coincide for at least
``min_overlap_event_s``; one event per pair and overlapping interval; ``participant_id`` is the
person who came in, ``target_participant_id`` the person already talking.

*Silence.*  No one speaks for at least ``silence_min_s`` (including the start of the session and,
when ``session_end_s`` is given, its end).  ``participant_id`` is who broke the silence,
``target_participant_id`` who spoke before it (``None`` at the edges).

Event ``value`` by kind: speech_turn: turn length s; overlap: overlap length s; backchannel:
its length s; interruption: seconds both talked at once (successful/contested: until the
interrupted person yielded; unsuccessful: until the interrupter dropped out); silence: its
length s.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

try:  # the project's error hierarchy (capture/errors.py); plain ValueError if run standalone
    from capture.errors import PlaybackError as _BaseError
except Exception:  # pragma: no cover
    _BaseError = Exception

EVENT_COLUMNS = [
    "start_s", "end_s", "kind", "participant_id", "target_participant_id",
    "label", "value", "confidence", "explanation",
]
TURN_CHANGE_COLUMNS = [
    "from_participant_id", "to_participant_id", "prev_turn_end_s", "next_turn_start_s", "latency_s",
]
PARTICIPANT_COLUMNS = [
    "participant_id", "name", "talk_s", "talk_share", "floor_s", "floor_share", "turn_count",
    "mean_turn_s", "longest_turn_s", "interruptions_made", "interruptions_received",
    "successful_interruptions_made", "unsuccessful_interruptions_made", "backchannels_given",
    "overlap_s", "mean_latency_s",
]
INTERRUPTION_OUTCOMES = ("successful", "unsuccessful", "contested")


class DynamicsInputError(_BaseError, ValueError):
    """The speech table handed to :func:`analyse_dynamics` is not usable (message says why)."""


@dataclass(frozen=True)
class DynamicsParams:
    """Every threshold of the dynamics stage. Units are in the names (s = seconds)."""

    turn_gap_s: float = 0.5
    """A person's pause shorter than this does not end their turn. 0.5 s: conversational gaps
    between speakers are typically 0.1-0.2 s and within-turn hesitations longer than ~0.5 s are
    heard as pauses (DOMAIN.md's example value)."""

    backchannel_max_s: float = 1.0
    """Longest listener vocalisation still counted as a backchannel ("mm-hm", "yeah", "right"):
    continuers are typically well under 1 s (DOMAIN.md)."""

    min_overlap_s: float = 0.3
    """The interrupted person must keep talking at least this long after the interrupter's onset.
    Shorter overlaps at the end of a turn are ordinary early starts: overlapping turn
    transitions are mostly within 0.1-0.3 s."""

    interruption_window_s: float = 2.0
    """A successful interruption: the interrupted person stops within this time of the onset.
    Stopping later is reported as 'contested' (both talked at once for longer)."""

    floor_hold_s: float = 1.0
    """Keeping the floor means talking alone at least this long after the other person stopped;
    a pause of the interrupted person shorter than this while the interrupter talks is not
    giving way. 1 s is about a short phrase."""

    min_elapsed_s: float = 0.5
    """The interrupted person must have been talking at least this long when the interrupter
    started; otherwise it is a simultaneous start, not an interruption of someone mid-turn."""

    min_overlap_event_s: float = 0.1
    """Overlap events shorter than this are not listed (frame jitter of speech detection)."""

    silence_min_s: float = 3.0
    """Silences at least this long are listed. ~3 s is a pause people notice in a session."""

    tone_window_s: float = 1.0
    """Length of the interrupter's speech, from their start, compared with their baseline."""

    competitive_loudness_db: float = 3.0
    """An interruption starting at least this many dB louder than the interrupter's own median
    is competitive. 3 dB is a clearly audible rise (loudness JND is about 1 dB)."""

    competitive_f0_semitones: float = 2.0
    """...or at least this many semitones higher than their own median pitch (a raised pitch
    that listeners notice; a whole tone)."""

    tone_min_frames: int = 5
    """Fewer usable prosody frames than this (onset or baseline) means tone is not measurable."""

    def to_dict(self) -> dict:
        """Plain dict of all parameters (JSON-serialisable), for provenance and the dashboard."""
        return asdict(self)


@dataclass
class DynamicsResult:
    """Output of :func:`analyse_dynamics`.

    events: one row per event, columns :data:`EVENT_COLUMNS`, sorted by ``start_s``.
    turn_changes: one row per change of turn holder, columns :data:`TURN_CHANGE_COLUMNS`.
    participants: one row per participant, columns :data:`PARTICIPANT_COLUMNS` (seconds,
        shares in [0, 1], counts; ``mean_latency_s`` NaN when they never took a turn after
        someone else).
    matrix: who interrupts whom, all outcomes; rows interrupter, columns interrupted, every
        participant present (zeros included). ``matrices`` has one per outcome.
    params: the :class:`DynamicsParams` used, as a dict.
    """

    events: pd.DataFrame
    turn_changes: pd.DataFrame
    participants: pd.DataFrame
    matrix: pd.DataFrame
    params: dict
    matrices: dict = field(default_factory=dict)
    runtime_s: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        """The events table (the stage's main artifact)."""
        return self.events

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """All tables by name; the matrix with the interrupter as a column."""
        matrix = self.matrix.copy()
        matrix.index.name = "interrupter"
        return {
            "events": self.events,
            "turn_changes": self.turn_changes,
            "participants": self.participants,
            "matrix": matrix.reset_index(),
        }

    def counts(self) -> dict[str, int]:
        """Event counts by kind and, for interruptions, by outcome (for dashboards)."""
        ev = self.events
        out = {k: int((ev["kind"] == k).sum()) for k in ("speech_turn", "overlap", "backchannel", "interruption", "silence")}
        inter = ev[ev["kind"] == "interruption"]
        for outcome in INTERRUPTION_OUTCOMES:
            out[f"interruption_{outcome}"] = int(inter["label"].str.startswith(outcome).sum())
        out["interruption_competitive"] = int(inter["label"].str.endswith("competitive").sum())
        return out


# ----------------------------------------------------------------------------- helpers


def _fmt(t: float) -> str:
    """Seconds to one decimal, e.g. '12.4 s'."""
    return f"{t:.1f} s"


def _merge(starts: np.ndarray, ends: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted intervals whose gap is < ``gap`` (or that overlap/touch when gap <= 0)."""
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, bool)
    if gap > 0:
        new[1:] = s[1:] - run_end[:-1] >= gap
    else:
        new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    out_s = s[idx]
    last = np.r_[idx[1:] - 1, s.size - 1]
    return out_s, run_end[last]


def _intersect(a_s, a_e, b_s, b_e) -> tuple[np.ndarray, np.ndarray]:
    """Intersection of two sorted lists of disjoint intervals (two-pointer, linear)."""
    out_s, out_e = [], []
    i = j = 0
    while i < len(a_s) and j < len(b_s):
        lo, hi = max(a_s[i], b_s[j]), min(a_e[i], b_e[j])
        if hi > lo:
            out_s.append(lo)
            out_e.append(hi)
        if a_e[i] < b_e[j]:
            i += 1
        else:
            j += 1
    return np.asarray(out_s, float), np.asarray(out_e, float)


def _margin(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


def _confidence(*margins: float) -> float:
    """0.5 for an event on a threshold, rising to 1.0 when every criterion is met with room."""
    if not margins:
        return 1.0
    return round(0.5 + 0.5 * min(_margin(m) for m in margins), 3)


def _normalise(speech: pd.DataFrame) -> pd.DataFrame:
    if speech is None:
        raise DynamicsInputError("speech is None: pass a DataFrame with columns start_s, end_s, participant_id.")
    missing = {"start_s", "end_s", "participant_id"} - set(speech.columns)
    if missing:
        raise DynamicsInputError(
            f"speech table lacks column(s) {sorted(missing)}; expected start_s, end_s (float seconds) "
            "and participant_id, one row per speech segment."
        )
    df = speech[["start_s", "end_s", "participant_id"]].copy()
    df["start_s"] = pd.to_numeric(df["start_s"], errors="coerce").astype(float)
    df["end_s"] = pd.to_numeric(df["end_s"], errors="coerce").astype(float)
    df = df.dropna()
    df = df[df["end_s"] > df["start_s"]]
    df["participant_id"] = df["participant_id"].astype(str)
    return df.sort_values(["start_s", "end_s"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- tone


def _tone_tracks(tone_frames: pd.DataFrame | None):
    if tone_frames is None or len(tone_frames) == 0:
        return None
    need = {"t_s", "loudness_db", "f0_hz"}
    if not need <= set(tone_frames.columns):
        raise DynamicsInputError(
            f"tone_frames lacks column(s) {sorted(need - set(tone_frames.columns))}; expected t_s, loudness_db, f0_hz "
            "(and optionally participant_id)."
        )
    tf = tone_frames.sort_values("t_s", kind="stable")
    if "participant_id" in tf.columns:
        return {
            str(pid): (g["t_s"].to_numpy(float), g["loudness_db"].to_numpy(float), g["f0_hz"].to_numpy(float))
            for pid, g in tf.groupby(tf["participant_id"].astype(str), sort=False)
        }
    return {None: (tf["t_s"].to_numpy(float), tf["loudness_db"].to_numpy(float), tf["f0_hz"].to_numpy(float))}


def _in_intervals(t: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Mask of times t inside any of the sorted disjoint intervals [s, e)."""
    if s.size == 0:
        return np.zeros(t.shape, bool)
    k = np.searchsorted(s, t, side="right") - 1
    ok = k >= 0
    out = np.zeros(t.shape, bool)
    out[ok] = t[ok] < e[k[ok]]
    return out


class _Tone:
    """Per-participant prosody baseline and onset comparison (internal)."""

    def __init__(self, tracks, raw, stretch, params: DynamicsParams):
        self.p = params
        self.mixture = None in tracks
        self.frames = {}   # pid -> (t, loud, f0) restricted to usable frames of their speech
        self.base = {}     # pid -> (median loudness dB, median f0 Hz)
        if self.mixture:
            t, loud, f0 = tracks[None]
            counts = np.zeros(t.shape, int)
            masks = {}
            for pid, (s, e) in raw.items():
                masks[pid] = _in_intervals(t, s, e)
                counts += masks[pid]
            for pid, m in masks.items():
                solo = m & (counts == 1)
                self.frames[pid] = (t[solo], loud[solo], f0[solo])
        else:
            for pid, (s, e) in raw.items():
                if pid not in tracks:
                    continue
                t, loud, f0 = tracks[pid]
                m = _in_intervals(t, s, e)
                self.frames[pid] = (t[m], loud[m], f0[m])
        # baseline: the person's typical start, i.e. the median over all their stretches of the
        # same measure taken at each stretch's start (starts are louder than tails: compare like
        # with like); with fewer than 3 measurable starts, the median over all their frames
        for pid, (t, loud, f0) in self.frames.items():
            starts_loud, starts_f0 = [], []
            for st in stretch.get(pid, (np.zeros(0), np.zeros(0)))[0]:
                lo, hi = self._window(t, st)
                if hi - lo >= params.tone_min_frames:
                    starts_loud.append(float(np.nanmedian(loud[lo:hi])))
                    v = f0[lo:hi]
                    v = v[np.isfinite(v) & (v > 0)]
                    if v.size >= params.tone_min_frames:
                        starts_f0.append(float(np.median(v)))
            voiced = f0[np.isfinite(f0) & (f0 > 0)]
            base_loud = (np.median(starts_loud) if len(starts_loud) >= 3 else
                         float(np.nanmedian(loud)) if loud.size >= params.tone_min_frames else np.nan)
            base_f0 = (np.median(starts_f0) if len(starts_f0) >= 3 else
                       float(np.median(voiced)) if voiced.size >= params.tone_min_frames else np.nan)
            self.base[pid] = (float(base_loud), float(base_f0))

    def _window(self, t: np.ndarray, start: float, end: float = np.inf) -> tuple[int, int]:
        """Index range of the first tone_window_s of usable frames from ``start`` (before ``end``)."""
        lo = int(np.searchsorted(t, start, side="left"))
        hi = int(np.searchsorted(t, end, side="left"))
        if lo >= hi:
            return lo, lo
        return lo, min(hi, int(np.searchsorted(t, t[lo] + self.p.tone_window_s, side="left")))

    def compare(self, pid: str, start: float, end: float):
        """(loudness delta dB, f0 delta semitones, tone label or None) for pid's speech in [start, end)."""
        if pid not in self.frames:
            return np.nan, np.nan, None
        t, loud, f0 = self.frames[pid]
        lo, hi = self._window(t, start, end)
        if hi - lo < self.p.tone_min_frames:
            return np.nan, np.nan, None
        base_loud, base_f0 = self.base[pid]
        d_loud = float(np.nanmedian(loud[lo:hi])) - base_loud if np.isfinite(base_loud) else np.nan
        seg_f0 = f0[lo:hi]
        seg_f0 = seg_f0[np.isfinite(seg_f0) & (seg_f0 > 0)]
        d_f0 = (
            float(12 * np.log2(np.median(seg_f0) / base_f0))
            if seg_f0.size >= self.p.tone_min_frames and np.isfinite(base_f0) else np.nan
        )
        if not (np.isfinite(d_loud) or np.isfinite(d_f0)):
            return d_loud, d_f0, None
        competitive = (np.isfinite(d_loud) and d_loud >= self.p.competitive_loudness_db) or (
            np.isfinite(d_f0) and d_f0 >= self.p.competitive_f0_semitones
        )
        return d_loud, d_f0, "competitive" if competitive else "cooperative"


# ----------------------------------------------------------------------------- main


def analyse_dynamics(
    speech: pd.DataFrame,
    *,
    params: DynamicsParams = DynamicsParams(),
    names: Mapping[str, str] | None = None,
    tone_frames: pd.DataFrame | None = None,
    session_end_s: float | None = None,
    audio: bool = True,
    voice_analysed: bool = True,
) -> DynamicsResult:
    """Turns, overlaps, backchannels, interruptions, latencies and silences of a conversation.

    Parameters
    ----------
    speech : DataFrame, one row per speech segment, columns ``start_s``, ``end_s`` (float
        seconds from session start) and ``participant_id``. Segments of different people may
        overlap; one person's segments may be fragmented by short pauses.
    params : thresholds (see :class:`DynamicsParams`), recorded in the result.
    names : participant_id -> display name used in explanations (default: the id). Every key is
        also listed as a participant, so someone who never spoke appears with zeros.
    tone_frames : optional frame-level prosody, columns ``t_s`` (s), ``loudness_db`` (dB),
        ``f0_hz`` (Hz, NaN when unvoiced), optionally ``participant_id`` (per-person tracks;
        without it, the single mixture). Enables the competitive/cooperative attribute.
    session_end_s : session length in seconds, to report a trailing silence.
    audio : False when the recording has no sound at all: instead of a silence, one ``no_audio``
        event spans the session saying that speech could not be analysed.
    voice_analysed : False when nobody agreed to voice analysis: the same ``no_audio`` event says
        so instead of reporting a silence.

    Returns
    -------
    DynamicsResult. Runs in O(n log n) in the number of segments (a 50-minute four-person
    session takes a few tens of milliseconds).
    """
    t_start = time.perf_counter()
    p = params
    names = dict(names or {})
    df = _normalise(speech)

    # participants: order of first speech, then silent people from ``names``
    pids: list[str] = list(dict.fromkeys(df["participant_id"].tolist()))
    pids += [str(k) for k in names if str(k) not in pids]
    name = {pid: str(names.get(pid, pid)) for pid in pids}

    # raw (touching/overlapping merged) and stretches (pauses < turn_gap_s merged), per person
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    stretch: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for pid, g in df.groupby("participant_id", sort=False):
        s, e = g["start_s"].to_numpy(float), g["end_s"].to_numpy(float)
        raw[pid] = _merge(s, e, 0.0)
        stretch[pid] = _merge(*raw[pid], p.turn_gap_s)
    for pid in pids:
        raw.setdefault(pid, (np.zeros(0), np.zeros(0)))
        stretch.setdefault(pid, (np.zeros(0), np.zeros(0)))

    # global list of stretches in start order
    g_pid, g_k, g_s, g_e = [], [], [], []
    for pid in pids:
        s, e = stretch[pid]
        g_pid += [pid] * len(s)
        g_k += list(range(len(s)))
        g_s.append(s)
        g_e.append(e)
    g_s = np.concatenate(g_s) if g_s else np.zeros(0)
    g_e = np.concatenate(g_e) if g_e else np.zeros(0)
    order = np.lexsort((g_e, g_s))

    # classification state per stretch, keyed (pid, k)
    is_bc: dict[tuple[str, int], bool] = {}
    floor_taking: dict[tuple[str, int], bool] = {}
    # S's stretches that resumed while L talked and were followed across as S's own speech:
    # not new events (value: whether they still take the floor)
    absorbed: dict[tuple[str, int], bool] = {}
    events: list[tuple] = []
    pending_inter: list[dict] = []

    for gi in order:
        L, k = g_pid[gi], g_k[gi]
        ls, le = float(g_s[gi]), float(g_e[gi])
        ctx = _context(L, ls, pids, stretch, is_bc, p)
        floor_taking[(L, k)] = absorbed.get((L, k), True)
        is_bc[(L, k)] = False
        if ctx is None or (L, k) in absorbed:
            continue
        S, j, covering = ctx
        s_s, s_e = stretch[S]
        ss = float(s_s[j])
        elapsed = ls - ss
        # follow S across pauses shorter than floor_hold_s while L is talking, unless S was
        # finishing anyway (stopped less than min_overlap_s after L's onset: an early start)
        y = float(s_e[j])
        nxt = j + 1
        while y - ls >= p.min_overlap_s and nxt < len(s_s) and s_s[nxt] < min(y + p.floor_hold_s, le):
            y = max(y, float(s_e[nxt]))
            nxt += 1
        keeps_floor = y + p.floor_hold_s <= le
        s_carries_on = y >= le or (nxt < len(s_s) and s_s[nxt] <= le + p.turn_gap_s)
        dur = le - ls
        for jj in range(j + 1, nxt):
            absorbed[(S, jj)] = not keeps_floor
        if keeps_floor:
            overlap = y - ls
            if overlap >= p.min_overlap_s and elapsed >= p.min_elapsed_s:
                yield_s = y - ls
                outcome = "successful" if yield_s <= p.interruption_window_s else "contested"
                conf = _confidence(
                    (overlap - p.min_overlap_s) / p.min_overlap_s,
                    (elapsed - p.min_elapsed_s) / p.min_elapsed_s,
                    ((le - y) - p.floor_hold_s) / p.floor_hold_s,
                    (p.interruption_window_s - yield_s) / p.interruption_window_s if outcome == "successful"
                    else (yield_s - p.interruption_window_s) / p.interruption_window_s,
                )
                pending_inter.append(dict(
                    start=ls, end=y, L=L, S=S, outcome=outcome, value=overlap, conf=conf,
                    elapsed_stretch=elapsed, s_start=ss, yield_s=yield_s, hold=le - y, l_end=le,
                ))
            continue
        if s_carries_on:
            floor_taking[(L, k)] = False
            if dur <= p.backchannel_max_s:
                is_bc[(L, k)] = True
                conf = _confidence((p.backchannel_max_s - dur) / p.backchannel_max_s * 2.0)
                events.append(dict(
                    start=ls, end=le, kind="backchannel", L=L, S=S, label="backchannel", value=dur,
                    conf=conf, s_start=ss,
                ))
            elif elapsed >= p.min_elapsed_s:
                ov = _overlap_len(raw[L], raw[S], ls, le)
                conf = _confidence(
                    (dur - p.backchannel_max_s) / p.backchannel_max_s,
                    (elapsed - p.min_elapsed_s) / p.min_elapsed_s,
                )
                pending_inter.append(dict(
                    start=ls, end=le, L=L, S=S, outcome="unsuccessful", value=ov if ov > 0 else dur, conf=conf,
                    elapsed_stretch=elapsed, s_start=ss, yield_s=np.nan, hold=np.nan, l_end=le,
                ))
        # otherwise: L came in near the end of S's turn and both stopped: L's short turn

    # ---- floor turns
    fl = [(float(g_s[gi]), float(g_e[gi]), g_pid[gi]) for gi in order if floor_taking[(g_pid[gi], g_k[gi])]]
    all_s, all_e = _merge(df["start_s"].to_numpy(float), df["end_s"].to_numpy(float), 0.0)
    gap_s = all_s[1:] if all_s.size else np.zeros(0)
    gap_e_start = all_e[:-1] if all_e.size else np.zeros(0)
    long_gap = (gap_s - gap_e_start) >= p.turn_gap_s
    lg_s, lg_e = gap_e_start[long_gap], gap_s[long_gap]   # silences >= turn_gap_s, sorted
    turns: list[list] = []
    for s, e, pid in fl:
        if turns and turns[-1][2] == pid:
            prev_end = turns[-1][1]
            # any silence >= turn_gap_s between prev_end and s ends the turn
            i = np.searchsorted(lg_e, prev_end, side="right")
            silent_break = i < len(lg_s) and lg_s[i] < s
            if not silent_break:
                turns[-1][1] = max(prev_end, e)
                continue
        turns.append([s, e, pid])
    turns.sort(key=lambda r: (r[0], r[1]))
    turn_starts = np.asarray([t[0] for t in turns], float)

    def turn_start_of(pid: str, t: float) -> float:
        """Start of pid's floor turn in progress at time t (or the latest before it)."""
        i = int(np.searchsorted(turn_starts, t, side="right")) - 1
        while i >= 0:
            if turns[i][2] == pid:
                return turns[i][0]
            i -= 1
        return np.nan

    # ---- tone
    tone = _Tone(_tone_tracks(tone_frames), raw, stretch, p) if tone_frames is not None and len(tone_frames) else None

    # ---- interruption events with explanations
    for d in pending_inter:
        L, S = d["L"], d["S"]
        ts = turn_start_of(S, d["start"])
        into = d["start"] - (ts if np.isfinite(ts) and ts <= d["s_start"] else d["s_start"])
        head = f"{name[L]} started at {_fmt(d['start'])} while {name[S]} was {_fmt(into)} into a turn"
        if d["outcome"] == "successful":
            text = f"{head}; {name[S]} stopped {_fmt(d['yield_s'])} later and {name[L]} kept the floor"
        elif d["outcome"] == "contested":
            text = (f"{head}; both talked at once for {_fmt(d['yield_s'])} before {name[S]} gave way "
                    f"and {name[L]} kept the floor")
        else:
            text = f"{head}; {name[L]} stopped after {_fmt(d['l_end'] - d['start'])} while {name[S]} kept talking"
        label = d["outcome"]
        if tone is not None:
            d_loud, d_f0, tlab = tone.compare(L, d["start"], d["l_end"])
            if tlab is not None:
                label = f"{label}, {tlab}"
                parts = []
                if np.isfinite(d_loud):
                    parts.append(f"{abs(d_loud):.1f} dB {'louder' if d_loud >= 0 else 'quieter'}")
                if np.isfinite(d_f0):
                    parts.append(f"{abs(d_f0):.1f} semitones {'higher' if d_f0 >= 0 else 'lower'}")
                text += (f". {name[L]} started {' and '.join(parts)} than {name[L]}'s usual voice "
                         f"({tlab})")
            else:
                text += f". Tone not measurable here (too little of {name[L]}'s voice alone)"
        events.append(dict(start=d["start"], end=d["end"], kind="interruption", L=L, S=S, label=label,
                           value=d["value"], conf=d["conf"], text=text + "."))

    # backchannel explanations (need turn starts)
    for ev in events:
        if ev["kind"] == "backchannel":
            L, S = ev["L"], ev["S"]
            ts = turn_start_of(S, ev["start"])
            into = ev["start"] - (ts if np.isfinite(ts) and ts <= ev["s_start"] else ev["s_start"])
            ev["text"] = (f"{name[L]} made a short sound ({_fmt(ev['value'])}) at {_fmt(ev['start'])} while "
                          f"{name[S]} was {_fmt(max(into, 0.0))} into a turn; {name[S]} carried on, so it counts as "
                          f"a backchannel, not an interruption.")

    # ---- speech turn events
    for s, e, pid in turns:
        events.append(dict(start=s, end=e, kind="speech_turn", L=pid, S=None, label="turn", value=e - s, conf=1.0,
                           text=f"{name[pid]} held the floor from {_fmt(s)} to {_fmt(e)} ({_fmt(e - s)})."))

    # ---- overlaps, per pair
    overlap_total = {pid: 0.0 for pid in pids}
    for a_i, a in enumerate(pids):
        for b in pids[a_i + 1:]:
            os_, oe = _intersect(*raw[a], *raw[b])
            if os_.size == 0:
                continue
            os_, oe = _merge(os_, oe, 0.0)
            for s, e in zip(os_, oe):
                overlap_total[a] += e - s
                overlap_total[b] += e - s
                if e - s < p.min_overlap_event_s:
                    continue
                sa = _seg_start_at(raw[a], s)
                sb = _seg_start_at(raw[b], s)
                came_in, was = (b, a) if sb > sa else (a, b)
                events.append(dict(
                    start=s, end=e, kind="overlap", L=came_in, S=was, label="overlap", value=e - s, conf=1.0,
                    text=(f"{name[came_in]} and {name[was]} spoke at the same time for {_fmt(e - s)} "
                          f"(from {_fmt(s)} to {_fmt(e)}); {name[came_in]} came in while {name[was]} was talking."),
                ))

    # ---- silences
    bounds_s, bounds_e, before, after = [], [], [], []
    if all_s.size:
        cand_s = np.r_[0.0, all_e]
        cand_e = np.r_[all_s, session_end_s if session_end_s is not None else all_e[-1]]
        for i in np.flatnonzero(cand_e - cand_s >= p.silence_min_s):
            s, e = float(cand_s[i]), float(cand_e[i])
            prev = _last_speaker_before(raw, s) if i > 0 else None
            nxt = _first_speaker_after(raw, e) if i < len(all_s) else None
            bounds_s.append(s)
            bounds_e.append(e)
            before.append(prev)
            after.append(nxt)
    elif not audio or not voice_analysed:
        end = float(session_end_s or 0.0)
        why = ("This recording has no audio, so no speech analysis was possible" if not audio else
               "Nobody agreed to voice analysis, so speech was not analysed")
        events.append(dict(start=0.0, end=end, kind="no_audio", L=None, S=None, label="no audio", value=end,
                           conf=1.0, text=f"{why}: who spoke when, turns, interruptions, silences and tone "
                                          "are not available."))
    elif session_end_s is not None and session_end_s >= p.silence_min_s:
        bounds_s, bounds_e, before, after = [0.0], [float(session_end_s)], [None], [None]
    for s, e, prev, nxt in zip(bounds_s, bounds_e, before, after):
        if prev is None and nxt is None:
            ctx = "no one spoke at all"
        elif prev is None:
            ctx = f"before {name[nxt]} spoke first"
        elif nxt is None:
            ctx = f"after {name[prev]} spoke last"
        else:
            ctx = f"after {name[prev]}; {name[nxt]} spoke next"
        events.append(dict(start=s, end=e, kind="silence", L=nxt, S=prev, label="silence", value=e - s, conf=1.0,
                           text=f"Nobody spoke for {_fmt(e - s)} (from {_fmt(s)} to {_fmt(e)}), {ctx}."))

    ev_df = _events_frame(events)

    # ---- turn changes and participant table
    tc_rows = []
    for a, b in zip(turns[:-1], turns[1:]):
        if a[2] != b[2]:
            tc_rows.append((a[2], b[2], a[1], b[0], b[0] - a[1]))
    tc = pd.DataFrame(tc_rows, columns=TURN_CHANGE_COLUMNS).astype(
        {"prev_turn_end_s": float, "next_turn_start_s": float, "latency_s": float})

    inter = ev_df[ev_df["kind"] == "interruption"]
    matrices = {"all": _matrix(inter, pids)}
    for outcome in INTERRUPTION_OUTCOMES:
        matrices[outcome] = _matrix(inter[inter["label"].str.startswith(outcome)], pids)

    floor = {pid: 0.0 for pid in pids}
    turn_len: dict[str, list[float]] = {pid: [] for pid in pids}
    for i, (s, e, pid) in enumerate(turns):
        end = min(e, turns[i + 1][0]) if i + 1 < len(turns) else e
        floor[pid] += max(0.0, end - s)
        turn_len[pid].append(e - s)
    talk = {pid: float(np.sum(raw[pid][1] - raw[pid][0])) for pid in pids}
    tot_talk, tot_floor = sum(talk.values()), sum(floor.values())
    bc = ev_df[ev_df["kind"] == "backchannel"]
    rows = []
    for pid in pids:
        lat = tc.loc[tc["to_participant_id"] == pid, "latency_s"]
        made = inter[inter["participant_id"] == pid]
        rows.append(dict(
            participant_id=pid, name=name[pid], talk_s=talk[pid],
            talk_share=talk[pid] / tot_talk if tot_talk > 0 else 0.0,
            floor_s=floor[pid], floor_share=floor[pid] / tot_floor if tot_floor > 0 else 0.0,
            turn_count=len(turn_len[pid]),
            mean_turn_s=float(np.mean(turn_len[pid])) if turn_len[pid] else 0.0,
            longest_turn_s=float(np.max(turn_len[pid])) if turn_len[pid] else 0.0,
            interruptions_made=len(made),
            interruptions_received=int((inter["target_participant_id"] == pid).sum()),
            successful_interruptions_made=int(made["label"].str.startswith("successful").sum()),
            unsuccessful_interruptions_made=int(made["label"].str.startswith("unsuccessful").sum()),
            backchannels_given=int((bc["participant_id"] == pid).sum()),
            overlap_s=overlap_total[pid],
            mean_latency_s=float(lat.mean()) if len(lat) else np.nan,
        ))
    part = pd.DataFrame(rows, columns=PARTICIPANT_COLUMNS)

    return DynamicsResult(
        events=ev_df, turn_changes=tc, participants=part, matrix=matrices["all"], params=p.to_dict(),
        matrices=matrices, runtime_s=time.perf_counter() - t_start,
    )


def _context(L, t, pids, stretch, is_bc, p):
    """(S, stretch index, covering?) of the person L came in on at time t, or None."""
    best = None
    for S in pids:
        if S == L:
            continue
        s_s, s_e = stretch[S]
        j = int(np.searchsorted(s_s, t, side="left")) - 1   # last stretch starting strictly before t
        # skip S's backchannels: step back to the latest non-backchannel stretch
        while j >= 0 and is_bc.get((S, j), False):
            j -= 1
        if j < 0:
            continue
        if s_e[j] > t:
            key = (0, s_s[j])                    # covering: prefer, earliest start first
        elif t - s_e[j] < p.turn_gap_s:
            key = (1, -s_e[j])                   # in S's short pause: latest end first
        else:
            continue
        if best is None or key < best[0]:
            best = (key, S, j)
    if best is None:
        return None
    return best[1], best[2], best[0][0] == 0


def _overlap_len(a, b, lo, hi) -> float:
    """Seconds during [lo, hi) when both a and b (sorted disjoint interval lists) speak."""
    def crop(iv):
        s, e = iv
        i0 = max(int(np.searchsorted(e, lo, side="right")), 0)
        i1 = int(np.searchsorted(s, hi, side="left"))
        return np.clip(s[i0:i1], lo, hi), np.clip(e[i0:i1], lo, hi)
    os_, oe = _intersect(*crop(a), *crop(b))
    return float(np.sum(oe - os_))


def _seg_start_at(iv, t) -> float:
    s, _ = iv
    i = int(np.searchsorted(s, t, side="right")) - 1
    return float(s[i]) if i >= 0 else t


def _last_speaker_before(raw, t):
    best, best_e = None, -np.inf
    for pid, (s, e) in raw.items():
        i = int(np.searchsorted(e, t, side="right")) - 1
        if i >= 0 and e[i] > best_e:
            best, best_e = pid, e[i]
    return best


def _first_speaker_after(raw, t):
    best, best_s = None, np.inf
    for pid, (s, e) in raw.items():
        i = int(np.searchsorted(s, t, side="left"))
        if i < len(s) and s[i] < best_s:
            best, best_s = pid, s[i]
    return best


def _matrix(inter: pd.DataFrame, pids: list[str]) -> pd.DataFrame:
    m = pd.DataFrame(0, index=pd.Index(pids, name="interrupter"), columns=pd.Index(pids, name="interrupted"), dtype=int)
    for (a, b), c in inter.groupby(["participant_id", "target_participant_id"]).size().items():
        m.loc[a, b] = int(c)
    return m


def _events_frame(events: list[dict]) -> pd.DataFrame:
    """Events as a DataFrame with :data:`EVENT_COLUMNS`: floats for times/value/confidence, Python
    objects (str or None) for the rest, sorted by start_s."""
    cols = {
        "start_s": [float(d["start"]) for d in events],
        "end_s": [float(d["end"]) for d in events],
        "kind": [d["kind"] for d in events],
        "participant_id": [d["L"] for d in events],
        "target_participant_id": [d["S"] for d in events],
        "label": [d["label"] for d in events],
        "value": [float(d["value"]) for d in events],
        "confidence": [float(d["conf"]) for d in events],
        "explanation": [d["text"] for d in events],
    }
    ev = pd.DataFrame({
        c: pd.Series(v, dtype=float if c in ("start_s", "end_s", "value", "confidence") else object)
        for c, v in cols.items()
    })
    return ev.sort_values(["start_s", "end_s"], kind="stable").reset_index(drop=True)


def synthetic_session(*, duration_s: float = 3000.0, n_speakers: int = 4, seed: int = 0) -> pd.DataFrame:
    """A random speech table (start_s, end_s, participant_id) for timing checks, no audio.

    Turns of 1-15 s with gaps of -0.5..1.5 s, short backchannels and occasional overlapping
    starts; about ``duration_s`` seconds long.
    """
    rng = np.random.default_rng(seed)
    rows, t, cur = [], 0.0, 0
    while t < duration_s:
        dur = float(rng.uniform(1.0, 15.0))
        # fragment the turn with short pauses
        u = t
        while u < t + dur:
            seg = float(rng.uniform(0.5, 3.0))
            rows.append((u, min(u + seg, t + dur), f"P{cur}"))
            u += seg + float(rng.uniform(0.05, 0.4))
        for _ in range(int(rng.integers(0, 3))):
            who = int(rng.integers(n_speakers))
            if who != cur:
                bs = t + float(rng.uniform(0, dur))
                rows.append((bs, bs + float(rng.uniform(0.2, 2.0)), f"P{who}"))
        nxt = int(rng.integers(n_speakers - 1))
        cur = nxt if nxt < cur else nxt + 1
        t = t + dur + float(rng.uniform(-0.5, 1.5))
    return pd.DataFrame(rows, columns=["start_s", "end_s", "participant_id"])


if __name__ == "__main__":  # timing check: python -m analysis.stages.dynamics
    sess = synthetic_session()
    t0 = time.perf_counter()
    res = analyse_dynamics(sess, session_end_s=3000.0)
    dt = time.perf_counter() - t0
    print(f"50-minute 4-person session: {len(sess)} segments -> {len(res.events)} events in {dt * 1000:.0f} ms")
    print(res.counts())
    print(res.participants.round(2).to_string(index=False))
    print(res.matrix)
