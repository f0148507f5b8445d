"""The dynamics stage's parameters, result and input error, and the columns of its tables."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from analysis.core import events
from capture.errors import PlaybackError

TURN_CHANGE_COLUMNS = [
    "from_participant_id", "to_participant_id", "prev_turn_end_s", "next_turn_start_s", "latency_s",
]
PARTICIPANT_COLUMNS = [
    "participant_id", "name", "talk_s", "talk_share", "floor_s", "floor_share", "turn_count",
    "mean_turn_s", "longest_turn_s", "interruptions_made", "interruptions_received",
    "successful_interruptions_made", "unsuccessful_interruptions_made", "backchannels_given",
    "overlap_s", "mean_latency_s",
]
COUNTED_KINDS = ("speech_turn", "overlap", "backchannel", "interruption", "silence")


class DynamicsInputError(PlaybackError, ValueError):
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
    """An interruption starting at least this many semitones higher than the interrupter's own
    median pitch is competitive (or louder by competitive_loudness_db): a raised pitch that
    listeners notice, a whole tone."""

    tone_min_frames: int = 5
    """Fewer usable prosody frames than this (onset or baseline) means tone is not measurable."""

    def to_dict(self) -> dict:
        """Plain dict of all parameters (JSON-serialisable), for provenance and the dashboard."""
        return asdict(self)


@dataclass
class DynamicsResult:
    """Output of :func:`analyse_dynamics`.

    events: one row per event, columns :data:`analysis.core.events.STAGE_COLUMNS` (the events
        contract: ``outcome``/``style`` filled on interruptions), sorted by ``start_s``.
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
        """Event counts by kind and, for interruptions, by outcome and competitive style (for
        dashboards)."""
        ev = self.events
        out = {k: int((ev["kind"] == k).sum()) for k in COUNTED_KINDS}
        inter = ev[ev["kind"] == "interruption"]
        for outcome in events.INTERRUPTION_OUTCOMES:
            out[f"interruption_{outcome}"] = int((inter["outcome"] == outcome).sum())
        out["interruption_competitive"] = int((inter["style"] == "competitive").sum())
        return out
