"""Decisions -> the events table: one contract row per decision, with its label and a
plain-language explanation written only from :data:`analysis.core.events.TEMPLATES`
(times formatted with :func:`analysis.core.events.fmt_s`, people by display name)."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from analysis.core import events
from analysis.core.events import explain, fmt_s
from analysis.stages.dynamics.decisions import (
    TONE_MEASURED, TONE_NOT_MEASURABLE, Backchannel, Decisions, Interruption, NoAudio, Overlap, Silence, Turn,
)

FLOAT_COLUMNS = ("start_s", "end_s", "value", "confidence")


def _row(start_s: float, end_s: float, kind: str, who: str | None, target: str | None, label: str, value: float,
         explanation: str, confidence: float = 1.0, outcome: str | None = None, style: str | None = None) -> dict:
    """One events row (:data:`analysis.core.events.STAGE_COLUMNS`; ``expression`` always None)."""
    return dict(start_s=start_s, end_s=end_s, kind=kind, participant_id=who, target_participant_id=target,
                label=label, outcome=outcome, style=style, expression=None, value=value, confidence=confidence,
                explanation=explanation)


def turn_event(t: Turn, name: Mapping[str, str]) -> dict:
    """A floor turn; value: its length, s."""
    text = explain("speech_turn", name=name[t.participant_id], start=fmt_s(t.start_s), end=fmt_s(t.end_s),
                   length=fmt_s(t.length_s))
    return _row(t.start_s, t.end_s, "speech_turn", t.participant_id, None, "turn", t.length_s, text)


def overlap_event(o: Overlap, name: Mapping[str, str]) -> dict:
    """Two people at once; value: the overlap's length, s."""
    text = explain("overlap", name=name[o.came_in], target=name[o.was_talking], length=fmt_s(o.length_s),
                   start=fmt_s(o.start_s), end=fmt_s(o.end_s))
    return _row(o.start_s, o.end_s, "overlap", o.came_in, o.was_talking, "overlap", o.length_s, text)


def backchannel_event(b: Backchannel, name: Mapping[str, str]) -> dict:
    """A backchannel; value: its length, s."""
    text = explain("backchannel", name=name[b.listener], target=name[b.speaker], length=fmt_s(b.length_s),
                   start=fmt_s(b.start_s), into=fmt_s(b.into_turn_s))
    return _row(b.start_s, b.end_s, "backchannel", b.listener, b.speaker, "backchannel", b.length_s, text,
                b.confidence)


def tone_sentence(i: Interruption, who: str) -> str | None:
    """The tone sentence of an interruption (``who``: the interrupter's name), None when no
    tone frames were available."""
    if i.tone == TONE_NOT_MEASURABLE:
        return explain("interruption", "tone_not_measurable", name=who)
    if i.tone != TONE_MEASURED:
        return None
    d_loud, d_f0 = i.loudness_delta_db, i.pitch_delta_st
    loudness = (explain("interruption", "louder" if d_loud >= 0 else "quieter", db=abs(d_loud))
                if np.isfinite(d_loud) else None)
    pitch = explain("interruption", "higher" if d_f0 >= 0 else "lower", st=abs(d_f0)) if np.isfinite(d_f0) else None
    change = (explain("interruption", "loudness_and_pitch", loudness=loudness, pitch=pitch)
              if loudness and pitch else loudness or pitch)
    return explain("interruption", "tone", name=who, change=change, style=i.style)


def interruption_event(i: Interruption, name: Mapping[str, str]) -> dict:
    """An interruption (variant by outcome, then the tone sentence); value: seconds both
    talked at once."""
    who, whom = name[i.interrupter], name[i.interrupted]
    text = explain("interruption", i.outcome, name=who, target=whom, start=fmt_s(i.start_s), into=fmt_s(i.into_turn_s),
                   yielded=fmt_s(i.yield_s), talked=fmt_s(i.interrupter_end_s - i.start_s))
    tone = tone_sentence(i, who)
    if tone is not None:
        text = f"{text} {tone}"
    return _row(i.start_s, i.end_s, "interruption", i.interrupter, i.interrupted, i.label, i.value, text,
                i.confidence, outcome=i.outcome, style=i.style)


SILENCE_VARIANTS = {(False, False): "nobody", (False, True): "first", (True, False): "last", (True, True): "between"}


def silence_event(s: Silence, name: Mapping[str, str]) -> dict:
    """A long silence (variant by who spoke before and after it); value: its length, s."""
    variant = SILENCE_VARIANTS[(s.last_speaker is not None, s.next_speaker is not None)]
    text = explain("silence", variant, name=name.get(s.next_speaker), target=name.get(s.last_speaker),
                   length=fmt_s(s.length_s), start=fmt_s(s.start_s), end=fmt_s(s.end_s))
    return _row(s.start_s, s.end_s, "silence", s.next_speaker, s.last_speaker, "silence", s.length_s, text)


def no_audio_event(n: NoAudio) -> dict:
    """Speech not analysed over the whole session; value: session length, s."""
    return _row(0.0, n.end_s, "no_audio", None, None, "no audio", n.end_s, explain("no_audio", n.reason))


def event_rows(d: Decisions, name: Mapping[str, str]) -> list[dict]:
    """Every decision as an events row, in decision order."""
    rows = [backchannel_event(b, name) for b in d.backchannels]
    rows += [interruption_event(i, name) for i in d.interruptions]
    rows += [turn_event(t, name) for t in d.turns]
    rows += [overlap_event(o, name) for o in d.overlaps]
    rows += [no_audio_event(d.no_audio)] if d.no_audio is not None else []
    rows += [silence_event(s, name) for s in d.silences]
    return rows


def events_frame(d: Decisions, name: Mapping[str, str]) -> pd.DataFrame:
    """The stage's events table (the events contract, :func:`analysis.core.events.conform`):
    floats for times (s), value and confidence, Python objects (str or None) for the rest,
    sorted by start_s then end_s (stable)."""
    rows = event_rows(d, name)
    frame = pd.DataFrame({
        c: pd.Series([float(r[c]) if c in FLOAT_COLUMNS else r[c] for r in rows],
                     dtype=float if c in FLOAT_COLUMNS else object)
        for c in events.STAGE_COLUMNS
    })
    frame = frame.sort_values(["start_s", "end_s"], kind="stable").reset_index(drop=True)
    return events.conform(frame)
