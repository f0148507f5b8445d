"""The dynamics stage's entry point: classify -> decisions -> explanations -> metrics."""
from __future__ import annotations

import time
from typing import Mapping

import pandas as pd

from analysis.stages.dynamics import explain, metrics
from analysis.stages.dynamics.classify import classify, normalise, speech_of
from analysis.stages.dynamics.model import DynamicsParams, DynamicsResult
from analysis.stages.dynamics.prosody import onset_tone


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
    DynamicsResult (events follow the events contract,
    :data:`analysis.core.events.STAGE_COLUMNS`). Runs in O(n log n) in the number of segments (a 50-minute four-person
    session takes a few tens of milliseconds).
    """
    t_start = time.perf_counter()
    names = dict(names or {})
    sp = speech_of(normalise(speech), names, params)
    name = {pid: str(names.get(pid, pid)) for pid in sp.pids}
    tone = onset_tone(tone_frames, sp.raw, sp.stretches, params)
    decisions = classify(sp, params, tone, session_end_s=session_end_s, audio=audio, voice_analysed=voice_analysed)
    events = explain.events_frame(decisions, name)
    changes = metrics.turn_changes(decisions.turns)
    matrices = metrics.interruption_matrices(events, sp.pids)
    table = metrics.participants(sp.pids, name, sp.raw, decisions.turns, decisions.overlap_s, events, changes)
    return DynamicsResult(
        events=events, turn_changes=changes, participants=table, matrix=matrices["all"], params=params.to_dict(),
        matrices=matrices, runtime_s=time.perf_counter() - t_start,
    )
