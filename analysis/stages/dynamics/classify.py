"""Classification: stretches, the context speaker, and what each listener onset was (a
backchannel, an interruption, a turn), then floor turns, overlaps and silences, as the typed
decisions of :mod:`.decisions`. Definitions in the package docstring; all times in seconds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from analysis.stages.dynamics.decisions import (
    TONE_MEASURED, TONE_NOT_AVAILABLE, TONE_NOT_MEASURABLE, Backchannel, Decisions, Interruption, NoAudio, Overlap,
    Silence, Turn,
)
from analysis.stages.dynamics.intervals import (
    first_speaker_after, intersect, last_speaker_before, merge, overlap_len, start_at,
)
from analysis.stages.dynamics.model import DynamicsInputError, DynamicsParams
from analysis.stages.dynamics.prosody import OnsetTone

EMPTY = (np.zeros(0), np.zeros(0))


# ----------------------------------------------------------------------------- speech


@dataclass(frozen=True, eq=False)
class Speech:
    """One session's speech. ``pids``: participants in order of first speech, then silent ones
    from the names. Per person (``pid -> (starts, ends)`` s, sorted): ``raw`` segments with
    touching/overlapping ones merged, ``stretches`` also merged across own pauses shorter than
    ``turn_gap_s``. ``everyone``: all speech merged."""

    pids: list[str]
    raw: dict
    stretches: dict
    everyone: tuple[np.ndarray, np.ndarray]


def normalise(speech: pd.DataFrame) -> pd.DataFrame:
    """``start_s, end_s`` (float s), ``participant_id`` (str) rows with a positive length,
    sorted by time; raises :class:`DynamicsInputError` when the table is unusable."""
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


def speech_of(df: pd.DataFrame, names: Mapping[str, str], p: DynamicsParams) -> Speech:
    """The :class:`Speech` of a normalised table; everyone in ``names`` is a participant."""
    pids: list[str] = list(dict.fromkeys(df["participant_id"].tolist()))
    pids += [str(k) for k in names if str(k) not in pids]
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    stretches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for pid, g in df.groupby("participant_id", sort=False):
        raw[pid] = merge(g["start_s"].to_numpy(float), g["end_s"].to_numpy(float), 0.0)
        stretches[pid] = merge(*raw[pid], p.turn_gap_s)
    for pid in pids:
        raw.setdefault(pid, EMPTY)
        stretches.setdefault(pid, EMPTY)
    everyone = merge(df["start_s"].to_numpy(float), df["end_s"].to_numpy(float), 0.0)
    return Speech(pids, raw, stretches, everyone)


def stretch_order(sp: Speech) -> list[tuple[str, int, float, float]]:
    """Every stretch as ``(pid, index among pid's stretches, start_s, end_s)``, by start then end
    (ties in participant order)."""
    g_pid, g_k, g_s, g_e = [], [], [], []
    for pid in sp.pids:
        s, e = sp.stretches[pid]
        g_pid += [pid] * len(s)
        g_k += list(range(len(s)))
        g_s.append(s)
        g_e.append(e)
    g_s = np.concatenate(g_s) if g_s else np.zeros(0)
    g_e = np.concatenate(g_e) if g_e else np.zeros(0)
    return [(g_pid[i], g_k[i], float(g_s[i]), float(g_e[i])) for i in np.lexsort((g_e, g_s))]


# ----------------------------------------------------------------------------- listener onsets


def context(L: str, t: float, pids, stretch: dict, is_bc: dict, p: DynamicsParams):
    """(S, S's stretch index, covering?) of the context speaker L came in on at ``t`` s, or None."""
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


@dataclass(frozen=True)
class Reply:
    """What context speaker S did after L's onset: S's speech, followed across S's pauses
    shorter than floor_hold_s, ends at ``yield_at_s`` (s); ``next_j`` is S's first stretch after
    that; ``keeps_floor``: L talked alone >= floor_hold_s after it; ``carries_on``: S was still
    talking when L stopped or resumed within turn_gap_s."""

    yield_at_s: float
    next_j: int
    keeps_floor: bool
    carries_on: bool


def follow(s_s: np.ndarray, s_e: np.ndarray, j: int, ls: float, le: float, p: DynamicsParams) -> Reply:
    """Follow S (stretches ``s_s``/``s_e``, from index ``j``) while L talks [ls, le) s, unless S
    was finishing anyway (stopped less than min_overlap_s after L's onset: an early start)."""
    y = float(s_e[j])
    nxt = j + 1
    while y - ls >= p.min_overlap_s and nxt < len(s_s) and s_s[nxt] < min(y + p.floor_hold_s, le):
        y = max(y, float(s_e[nxt]))
        nxt += 1
    carries_on = y >= le or (nxt < len(s_s) and s_s[nxt] <= le + p.turn_gap_s)
    return Reply(y, nxt, y + p.floor_hold_s <= le, carries_on)


@dataclass(frozen=True)
class CameIn:
    """A listener onset classified against its context speaker, before turns are known: ``kind``
    "backchannel" or an interruption outcome; times s; ``yield_s`` NaN when unsuccessful."""

    kind: str
    listener: str
    speaker: str
    start_s: float
    end_s: float
    value: float
    confidence: float
    speaker_stretch_start_s: float
    yield_s: float
    listener_end_s: float


def _margin(x: float) -> float:
    return float(min(max(x, 0.0), 1.0))


def confidence(*margins: float) -> float:
    """0.5 for an event on a threshold, rising to 1.0 when every criterion is met with room
    (each margin is the relative room above its threshold, 1 = a full threshold's worth)."""
    if not margins:
        return 1.0
    return round(0.5 + 0.5 * min(_margin(m) for m in margins), 3)


def took_floor(L: str, S: str, ls: float, le: float, ss: float, y: float, p: DynamicsParams) -> CameIn | None:
    """L kept the floor after S yielded at ``y`` s: a successful or contested interruption when
    S was mid-turn and kept talking min_overlap_s after L's onset at ``ls``; else None (a turn)."""
    overlap, elapsed = y - ls, ls - ss
    if not (overlap >= p.min_overlap_s and elapsed >= p.min_elapsed_s):
        return None
    yield_s = y - ls
    outcome = "successful" if yield_s <= p.interruption_window_s else "contested"
    conf = confidence(
        (overlap - p.min_overlap_s) / p.min_overlap_s,
        (elapsed - p.min_elapsed_s) / p.min_elapsed_s,
        ((le - y) - p.floor_hold_s) / p.floor_hold_s,
        (p.interruption_window_s - yield_s) / p.interruption_window_s if outcome == "successful"
        else (yield_s - p.interruption_window_s) / p.interruption_window_s,
    )
    return CameIn(outcome, L, S, ls, y, overlap, conf, ss, yield_s, le)


def s_carried_on(L: str, S: str, ls: float, le: float, ss: float, raw: dict, p: DynamicsParams) -> CameIn | None:
    """S carried on over L's stretch [ls, le) s: a backchannel when short, an unsuccessful
    interruption when longer and S was mid-turn, else None."""
    dur, elapsed = le - ls, ls - ss
    if dur <= p.backchannel_max_s:
        conf = confidence((p.backchannel_max_s - dur) / p.backchannel_max_s * 2.0)
        return CameIn("backchannel", L, S, ls, le, dur, conf, ss, np.nan, le)
    if elapsed >= p.min_elapsed_s:
        ov = overlap_len(raw[L], raw[S], ls, le)
        conf = confidence(
            (dur - p.backchannel_max_s) / p.backchannel_max_s,
            (elapsed - p.min_elapsed_s) / p.min_elapsed_s,
        )
        return CameIn("unsuccessful", L, S, ls, le, ov if ov > 0 else dur, conf, ss, np.nan, le)
    return None


def classify_onsets(sp: Speech, p: DynamicsParams) -> tuple[list[CameIn], list[tuple[float, float, str]]]:
    """Walk every stretch in time order: the classified onsets (backchannels and interruptions,
    in that order of discovery) and the floor-taking stretches ``(start_s, end_s, pid)``."""
    is_bc: dict[tuple[str, int], bool] = {}
    floor_taking: dict[tuple[str, int], bool] = {}
    # S's stretches that resumed while L talked and were followed across as S's own speech:
    # not new events (value: whether they still take the floor)
    absorbed: dict[tuple[str, int], bool] = {}
    found: list[CameIn] = []
    order = stretch_order(sp)
    for L, k, ls, le in order:
        ctx = context(L, ls, sp.pids, sp.stretches, is_bc, p)
        floor_taking[(L, k)] = absorbed.get((L, k), True)
        is_bc[(L, k)] = False
        if ctx is None or (L, k) in absorbed:
            continue
        S, j, _ = ctx
        s_s, s_e = sp.stretches[S]
        reply = follow(s_s, s_e, j, ls, le, p)
        for jj in range(j + 1, reply.next_j):
            absorbed[(S, jj)] = not reply.keeps_floor
        if reply.keeps_floor:
            came_in = took_floor(L, S, ls, le, float(s_s[j]), reply.yield_at_s, p)
        elif reply.carries_on:
            floor_taking[(L, k)] = False
            came_in = s_carried_on(L, S, ls, le, float(s_s[j]), sp.raw, p)
        else:   # L came in near the end of S's turn and both stopped: L's short turn
            came_in = None
        if came_in is not None:
            is_bc[(L, k)] = came_in.kind == "backchannel"
            found.append(came_in)
    return found, [(ls, le, L) for L, k, ls, le in order if floor_taking[(L, k)]]


# ----------------------------------------------------------------------------- turns


def floor_turns(floor: list[tuple[float, float, str]], everyone, p: DynamicsParams) -> list[Turn]:
    """Floor turns from the floor-taking stretches: consecutive ones of one person join unless
    a silence of at least turn_gap_s (in ``everyone``'s speech) separates them."""
    all_s, all_e = everyone
    gap_s = all_s[1:] if all_s.size else np.zeros(0)
    gap_e_start = all_e[:-1] if all_e.size else np.zeros(0)
    long_gap = (gap_s - gap_e_start) >= p.turn_gap_s
    lg_s, lg_e = gap_e_start[long_gap], gap_s[long_gap]   # silences >= turn_gap_s, sorted
    turns: list[list] = []
    for s, e, pid in floor:
        if turns and turns[-1][2] == pid:
            prev_end = turns[-1][1]
            i = np.searchsorted(lg_e, prev_end, side="right")
            silent_break = i < len(lg_s) and lg_s[i] < s
            if not silent_break:
                turns[-1][1] = max(prev_end, e)
                continue
        turns.append([s, e, pid])
    turns.sort(key=lambda r: (r[0], r[1]))
    return [Turn(s, e, pid) for s, e, pid in turns]


@dataclass(frozen=True, eq=False)
class TurnIndex:
    """Turns by start, to ask how far into a turn someone was."""

    turns: list[Turn]
    starts: np.ndarray

    @classmethod
    def of(cls, turns: list[Turn]) -> TurnIndex:
        return cls(turns, np.asarray([t.start_s for t in turns], float))

    def start_of(self, pid: str, t: float) -> float:
        """Start (s) of pid's floor turn in progress at ``t`` s (or the latest before it), NaN if none."""
        i = int(np.searchsorted(self.starts, t, side="right")) - 1
        while i >= 0:
            if self.turns[i].participant_id == pid:
                return self.turns[i].start_s
            i -= 1
        return np.nan

    def into_turn_s(self, c: CameIn) -> float:
        """How long (s) the speaker had been in their turn at the listener's onset: from their
        turn's start, or from their stretch's start when that turn started later or never."""
        ts = self.start_of(c.speaker, c.start_s)
        return c.start_s - (ts if np.isfinite(ts) and ts <= c.speaker_stretch_start_s else c.speaker_stretch_start_s)


# ----------------------------------------------------------------------------- decisions


def backchannel(c: CameIn, turns: TurnIndex) -> Backchannel:
    """The :class:`Backchannel` of a classified onset."""
    return Backchannel(c.start_s, c.end_s, c.listener, c.speaker, c.value, c.confidence,
                       max(turns.into_turn_s(c), 0.0))


def interruption(c: CameIn, turns: TurnIndex, tone: OnsetTone | None) -> Interruption:
    """The :class:`Interruption` of a classified onset, with the interrupter's tone when
    ``tone`` is given (compared over their stretch from the onset)."""
    d_loud, d_f0, style = (np.nan, np.nan, None) if tone is None else tone.compare(c.listener, c.start_s,
                                                                                   c.listener_end_s)
    status = TONE_NOT_AVAILABLE if tone is None else TONE_MEASURED if style is not None else TONE_NOT_MEASURABLE
    return Interruption(
        start_s=c.start_s, end_s=c.end_s, interrupter=c.listener, interrupted=c.speaker, outcome=c.kind,
        style=style, value=c.value, confidence=c.confidence, into_turn_s=turns.into_turn_s(c), yield_s=c.yield_s,
        interrupter_end_s=c.listener_end_s, tone=status, loudness_delta_db=d_loud, pitch_delta_st=d_f0,
    )


def overlaps(sp: Speech, p: DynamicsParams) -> tuple[list[Overlap], dict[str, float]]:
    """Overlaps of at least min_overlap_event_s, per pair of people and coinciding interval of
    their raw speech, and each person's total overlap seconds (every interval counted)."""
    total = {pid: 0.0 for pid in sp.pids}
    found = []
    for a_i, a in enumerate(sp.pids):
        for b in sp.pids[a_i + 1:]:
            os_, oe = intersect(*sp.raw[a], *sp.raw[b])
            if os_.size == 0:
                continue
            for s, e in zip(*merge(os_, oe, 0.0)):
                total[a] += e - s
                total[b] += e - s
                if e - s < p.min_overlap_event_s:
                    continue
                came_in, was = (b, a) if start_at(sp.raw[b], s) > start_at(sp.raw[a], s) else (a, b)
                found.append(Overlap(float(s), float(e), came_in, was, float(e - s)))
    return found, total


def silences(sp: Speech, session_end_s: float | None, p: DynamicsParams) -> list[Silence]:
    """Stretches of at least silence_min_s with nobody speaking, including the session's start
    and (when ``session_end_s`` is given) its end; a silent session is one silence."""
    all_s, all_e = sp.everyone
    if not all_s.size:
        if session_end_s is not None and session_end_s >= p.silence_min_s:
            return [Silence(0.0, float(session_end_s), None, None, float(session_end_s) - 0.0)]
        return []
    cand_s = np.r_[0.0, all_e]
    cand_e = np.r_[all_s, session_end_s if session_end_s is not None else all_e[-1]]
    found = []
    for i in np.flatnonzero(cand_e - cand_s >= p.silence_min_s):
        s, e = float(cand_s[i]), float(cand_e[i])
        prev = last_speaker_before(sp.raw, s) if i > 0 else None
        nxt = first_speaker_after(sp.raw, e) if i < len(all_s) else None
        found.append(Silence(s, e, prev, nxt, e - s))
    return found


def classify(sp: Speech, p: DynamicsParams, tone: OnsetTone | None, *, session_end_s: float | None,
             audio: bool, voice_analysed: bool) -> Decisions:
    """Every decision for one session (see :class:`Decisions`); without any speech and without
    audio or voice consent, one :class:`NoAudio` instead of a silence."""
    found, floor = classify_onsets(sp, p)
    turns = floor_turns(floor, sp.everyone, p)
    index = TurnIndex.of(turns)
    listed, overlap_s = overlaps(sp, p)
    no_audio = None
    if not sp.everyone[0].size and (not audio or not voice_analysed):
        no_audio = NoAudio(float(session_end_s or 0.0), "no_audio" if not audio else "no_consent")
    return Decisions(
        backchannels=tuple(backchannel(c, index) for c in found if c.kind == "backchannel"),
        interruptions=tuple(interruption(c, index, tone) for c in found if c.kind != "backchannel"),
        turns=tuple(turns), overlaps=tuple(listed),
        silences=() if no_audio else tuple(silences(sp, session_end_s, p)),
        no_audio=no_audio, overlap_s=overlap_s,
    )
