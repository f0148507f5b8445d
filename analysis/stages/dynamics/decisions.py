"""What the dynamics stage decided, as typed values: one frozen dataclass per kind of event.

Classification (:mod:`.classify`) produces these; explanations (:mod:`.explain`) and metrics
(:mod:`.metrics`) only read them. Times are float seconds from session start; people are
``participant_id`` strings.
"""
from __future__ import annotations

from dataclasses import dataclass

# Interruption.tone: whether the interrupter's tone could be compared with their usual voice
TONE_MEASURED = "measured"              # style is "competitive" or "cooperative"
TONE_NOT_MEASURABLE = "not_measurable"  # tone frames given, too few usable ones here
TONE_NOT_AVAILABLE = "not_available"    # no tone frames at all


@dataclass(frozen=True)
class Turn:
    """A floor turn: ``participant_id`` holds the floor from ``start_s`` to ``end_s`` (s)."""

    start_s: float
    end_s: float
    participant_id: str

    @property
    def length_s(self) -> float:
        """Turn length, s."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Backchannel:
    """A short vocalisation of ``listener`` while ``speaker`` carried on (``start_s``-``end_s``,
    ``length_s`` long); ``into_turn_s``: how long ``speaker`` had been in their turn (s, >= 0);
    ``confidence`` in [0.5, 1]."""

    start_s: float
    end_s: float
    listener: str
    speaker: str
    length_s: float
    confidence: float
    into_turn_s: float


@dataclass(frozen=True)
class Interruption:
    """``interrupter`` came in at ``start_s`` on ``interrupted``, ``into_turn_s`` seconds into
    their turn. ``outcome`` is one of :data:`analysis.core.events.INTERRUPTION_OUTCOMES`.

    end_s: when the interrupted person yielded (successful/contested) or the interrupter
        dropped out (unsuccessful), s. ``value``: seconds both talked at once.
    yield_s: seconds from ``start_s`` until the interrupted person yielded (NaN when unsuccessful).
    interrupter_end_s: end of the interrupter's stretch, s.
    tone: :data:`TONE_MEASURED`, :data:`TONE_NOT_MEASURABLE` or :data:`TONE_NOT_AVAILABLE`;
        ``style`` ("competitive"/"cooperative") only when measured, else None.
    loudness_delta_db / pitch_delta_st: the interrupter's start against their usual voice, dB
        and semitones (NaN when not measured).
    """

    start_s: float
    end_s: float
    interrupter: str
    interrupted: str
    outcome: str
    style: str | None
    value: float
    confidence: float
    into_turn_s: float
    yield_s: float
    interrupter_end_s: float
    tone: str
    loudness_delta_db: float
    pitch_delta_st: float

    @property
    def label(self) -> str:
        """Display label: ``"<outcome>"`` or ``"<outcome>, <style>"``."""
        return self.outcome if self.style is None else f"{self.outcome}, {self.style}"


@dataclass(frozen=True)
class Overlap:
    """``came_in`` and ``was_talking`` spoke at once from ``start_s`` to ``end_s`` (``length_s``)."""

    start_s: float
    end_s: float
    came_in: str
    was_talking: str
    length_s: float


@dataclass(frozen=True)
class Silence:
    """Nobody spoke from ``start_s`` to ``end_s`` (``length_s``); ``last_speaker`` spoke before
    it and ``next_speaker`` broke it (None at the session's edges)."""

    start_s: float
    end_s: float
    last_speaker: str | None
    next_speaker: str | None
    length_s: float


@dataclass(frozen=True)
class NoAudio:
    """Speech could not be analysed over the whole session (``end_s`` s long): ``reason`` is
    "no_audio" (the recording has no sound) or "no_consent" (nobody agreed to voice analysis)."""

    end_s: float
    reason: str


@dataclass(frozen=True)
class Decisions:
    """Everything classification decided for one session, each in event order (before the final
    sort by time), plus ``overlap_s``: seconds each person spent talking at once with anyone
    (every coinciding interval, including those too short to list as an overlap event)."""

    backchannels: tuple[Backchannel, ...]
    interruptions: tuple[Interruption, ...]
    turns: tuple[Turn, ...]
    overlaps: tuple[Overlap, ...]
    silences: tuple[Silence, ...]
    no_audio: NoAudio | None
    overlap_s: dict
