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
``"successful, competitive"``, ``"unsuccessful, cooperative"``, ``"contested"``; the events'
``outcome`` and ``style`` columns hold the same as structured fields (``style`` None when tone
was not measurable or no tone frames were given).

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

Structure (each step reads only the one before it): :mod:`.classify` (stretches, context
speaker, onsets, turns, overlaps, silences) -> :mod:`.decisions` (frozen dataclasses) ->
:mod:`.explain` (the events table, explanations from ``analysis.core.events.TEMPLATES``) ->
:mod:`.metrics` (participants, who-interrupts-whom, turn changes); :mod:`.stage` runs them.
"""
from __future__ import annotations

from analysis.stages.dynamics.decisions import (
    Backchannel,
    Decisions,
    Interruption,
    NoAudio,
    Overlap,
    Silence,
    Turn,
)
from analysis.stages.dynamics.model import (
    PARTICIPANT_COLUMNS,
    TURN_CHANGE_COLUMNS,
    DynamicsInputError,
    DynamicsParams,
    DynamicsResult,
)
from analysis.stages.dynamics.stage import analyse_dynamics
from analysis.stages.dynamics.synthetic import synthetic_session

__all__ = [
    "analyse_dynamics", "DynamicsParams", "DynamicsResult", "DynamicsInputError", "synthetic_session",
    "TURN_CHANGE_COLUMNS", "PARTICIPANT_COLUMNS",
    "Turn", "Backchannel", "Interruption", "Overlap", "Silence", "NoAudio", "Decisions",
]
