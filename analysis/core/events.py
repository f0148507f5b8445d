"""The events contract: one table of everything the stages noticed, used by every stage, the
dashboard and the exports.

An *event* is one row: ``start_s``/``end_s`` (float seconds from session start), a ``kind``
from the closed set :data:`KINDS`, who (``participant_id``) and towards whom
(``target_participant_id``, or None), a short display ``label``, structured fields that
nobody has to parse out of the label (``outcome`` and ``style`` of an interruption, the
``expression`` of a face event), a ``value`` whose unit the kind states, a ``confidence`` in
[0, 1] and a plain-language ``explanation`` written from :data:`TEMPLATES`.

Stages produce :data:`STAGE_COLUMNS`; the events stage adds ``session_id``, ``event_id``,
``source`` and ``source_version`` (:data:`EVENT_COLUMNS`). :func:`check` is applied whenever an
events table is written or read, so a table that breaks the contract never reaches a page.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from capture.errors import PlaybackError


@dataclass(frozen=True)
class Kind:
    """One kind of event: how it is titled, whether it is a candidate moment to walk through,
    whether it has a timeline lane, what ``value`` measures and which stage writes it."""

    title: str
    moment: bool
    timeline: bool
    value_unit: str
    source: str


KINDS: dict[str, Kind] = {
    "speech_turn": Kind("Speech", False, True, "turn length, s", "dynamics"),
    "overlap": Kind("Overlap", False, True, "overlap length, s", "dynamics"),
    "backchannel": Kind("Backchannel", False, True, "its length, s", "dynamics"),
    "interruption": Kind("Interruption", True, True, "seconds both talked at once", "dynamics"),
    "silence": Kind("Long silence", True, False, "its length, s", "dynamics"),
    "no_audio": Kind("Speech not analysed", True, False, "session length, s", "dynamics"),
    "raised_voice": Kind("Raised voice", True, True, "loudness above own baseline, dB", "tone"),
    "heated_exchange": Kind("Heated exchange", True, True, "people with raised arousal", "tone"),
    "flat_voice": Kind("Flat, quiet voice", True, True, "loudness against own baseline, dB", "tone"),
    "speeding_up": Kind("Faster speech", True, True, "speaking rate / own usual rate", "tone"),
    "expression": Kind("Expression", True, True, "score above own neutral face (0-1)", "faces"),
    "face_moment": Kind("Face and talk together", True, True, "score of the face signal (0-1)", "faces"),
}
MOMENT_KINDS = tuple(k for k, kind in KINDS.items() if kind.moment)
TIMELINE_KINDS = tuple(k for k, kind in KINDS.items() if kind.timeline)

INTERRUPTION_OUTCOMES = ("successful", "unsuccessful", "contested")
INTERRUPTION_STYLES = ("competitive", "cooperative")
EXPRESSIONS = ("smile", "one_sided_smile", "frown", "sadness_like", "surprise", "disgust_like", "eye_roll",
               "looking_away", "nodding")
# candidate moments of the faces stage that combine a face with who was speaking (their ``label``)
FACE_MOMENTS = ("one_sided_smile_while_partner_speaks", "eye_roll_after_turn", "withdrawn_silence")

STAGE_COLUMNS = ["start_s", "end_s", "kind", "participant_id", "target_participant_id", "label", "outcome",
                 "style", "expression", "value", "confidence", "explanation"]
EVENT_COLUMNS = ["session_id", "event_id", "start_s", "end_s", "kind", "participant_id", "target_participant_id",
                 "label", "outcome", "style", "expression", "value", "confidence", "source", "source_version",
                 "explanation"]
# the structured fields added by the contract (earlier tables carried them inside ``label``)
STRUCTURED_FIELDS = ("outcome", "style", "expression")

# Explanation templates, by kind and variant; fields are formatted with :func:`explain`.
# Times are pre-formatted strings (``fmt_s``), names are display names.
TEMPLATES: dict[str, dict[str, str]] = {
    # dynamics: ``name`` is the event's participant, ``target`` its target participant
    "speech_turn": {
        "default": "{name} held the floor from {start} to {end} ({length}).",
    },
    "overlap": {
        "default": "{name} and {target} spoke at the same time for {length} (from {start} to {end}); "
                   "{name} came in while {target} was talking.",
    },
    "backchannel": {
        "default": "{name} made a short sound ({length}) at {start} while {target} was {into} into a turn; "
                   "{target} carried on, so it counts as a backchannel, not an interruption.",
    },
    "interruption": {
        # one sentence per outcome; ``into``: how far into their turn the target was
        "successful": "{name} started at {start} while {target} was {into} into a turn; {target} stopped "
                      "{yielded} later and {name} kept the floor.",
        "contested": "{name} started at {start} while {target} was {into} into a turn; both talked at once "
                     "for {yielded} before {target} gave way and {name} kept the floor.",
        "unsuccessful": "{name} started at {start} while {target} was {into} into a turn; {name} stopped "
                        "after {talked} while {target} kept talking.",
        # then, after a space, the tone sentence (when tone frames were available)
        "tone": "{name} started {change} than {name}'s usual voice ({style}).",
        "tone_not_measurable": "Tone not measurable here (too little of {name}'s voice alone).",
        # the parts of ``change`` in the tone sentence (``db``/``st``: size of the change)
        "louder": "{db:.1f} dB louder",
        "quieter": "{db:.1f} dB quieter",
        "higher": "{st:.1f} semitones higher",
        "lower": "{st:.1f} semitones lower",
        "loudness_and_pitch": "{loudness} and {pitch}",
    },
    "silence": {
        # ``name`` broke the silence, ``target`` spoke before it
        "between": "Nobody spoke for {length} (from {start} to {end}), after {target}; {name} spoke next.",
        "first": "Nobody spoke for {length} (from {start} to {end}), before {name} spoke first.",
        "last": "Nobody spoke for {length} (from {start} to {end}), after {target} spoke last.",
        "nobody": "Nobody spoke for {length} (from {start} to {end}), no one spoke at all.",
    },
    "no_audio": {
        "no_audio": "This recording has no audio, so no speech analysis was possible: who spoke when, turns, "
                    "interruptions, silences and tone are not available.",
        "no_consent": "Nobody agreed to voice analysis, so speech was not analysed: who spoke when, turns, "
                      "interruptions, silences and tone are not available.",
    },
    "raised_voice": {
        "default": "{name}'s voice is {loudness_db:.0f} dB louder and {pitch_st:.0f} semitones higher than their "
                   "own usual level ({start:.1f}-{end:.1f} s).",
    },
    "heated_exchange": {
        "default": "Between {start} and {end} {people} {both} spoke with more vocal arousal than usual for them, "
                   "the speaker changed {changes} times and there were {interruptions}: a heated exchange to look "
                   "at together.",
    },
    "flat_voice": {
        "default": "{name}'s voice was quieter ({db:.0f} dB below their usual level) and flatter (pitch range "
                   "{range_st:.1f} semitones, usually {usual_st:.1f}) ({start:.1f}-{end:.1f} s).",
        "after_pause": "{name} replied after a pause of {pause}, in a quieter ({db:.0f} dB below their usual "
                       "level) and flatter voice (pitch range {range_st:.1f} semitones, usually {usual_st:.1f}) "
                       "({start:.1f}-{end:.1f} s).",
    },
    "speeding_up": {
        "default": "{name} spoke faster than their usual pace: about {rate:.1f} syllables a second, usually "
                   "{usual:.1f} ({start:.1f}-{end:.1f} s).",
    },
    "expression": {
        "smile": "{name} smiles ({start:.1f}-{end:.1f} s).",
        "one_sided_smile": "{name} shows a one-sided smile ({start:.1f}-{end:.1f} s): a possible contempt signal "
                           "to look at together, not a verdict.",
        "frown": "{name}'s brows lowered and lips pressed for {length} ({start:.1f}-{end:.1f} s).",
        "sadness_like": "{name}'s inner brows rose, or the mouth corners or chin were pulled as in sadness, for "
                        "{length} ({start:.1f}-{end:.1f} s): worth asking about, not a reading of feelings.",
        "surprise": "{name}'s brows rose, eyes widened and jaw dropped together, as in surprise "
                    "({start:.1f}-{end:.1f} s).",
        "disgust_like": "{name}'s nose wrinkled or upper lip rose, as in distaste, for {length} "
                        "({start:.1f}-{end:.1f} s).",
        "eye_roll": "{name} looked up with both eyes for {length} ({start:.1f}-{end:.1f} s), which can be an "
                    "eye-roll.",
        "looking_away": "{name} looked away from where they usually look (eyes or head turned) for {length} "
                        "({start:.1f}-{end:.1f} s).",
        "nodding": "{name} nodded for {length} ({start:.1f}-{end:.1f} s), often a sign of listening.",
    },
    "face_moment": {
        # ``name`` showed it, ``target`` was speaking (or had just spoken)
        "one_sided_smile_while_partner_speaks": "{name} showed a one-sided smile while {target} was speaking "
                                                "({start:.1f}-{end:.1f} s): possible contempt, a moment to look "
                                                "at together, not a verdict.",
        "eye_roll_after_turn": "{name} looked up with both eyes {when} {target}'s turn "
                               "({start:.1f}-{end:.1f} s): a possible eye-roll to look at together, not a verdict.",
        "withdrawn_silence": "{name} stayed silent for {length} while looking away with a still face "
                             "({start:.1f}-{end:.1f} s){while_target}: possible withdrawal (stonewalling), a "
                             "moment to look at together, not a verdict.",
    },
}


class EventsContractError(PlaybackError, ValueError):
    """An events table does not follow the contract (the message says which rule)."""


def explain(kind: str, variant: str = "default", **fields) -> str:
    """The explanation sentence for ``kind`` (its ``variant`` template) with ``fields``."""
    return TEMPLATES[kind][variant].format(**fields)


def fmt_s(t: float) -> str:
    """Seconds for an explanation: ``"3.2 s"`` (one decimal)."""
    return f"{t:.1f} s"


def names_list(names: list[str]) -> str:
    """``"Alex"``, ``"Alex and Sam"``, ``"Alex, Sam and Jo"``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def count_words(n: int, noun: str) -> str:
    """``"1 interruption"``, ``"3 interruptions"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def empty(columns: list[str] = STAGE_COLUMNS) -> pd.DataFrame:
    """An events table with no rows and the contract's columns."""
    return pd.DataFrame(columns=columns)


def conform(events: pd.DataFrame, columns: list[str] = STAGE_COLUMNS) -> pd.DataFrame:
    """``events`` with exactly ``columns`` in order (a missing structured field is None) and
    text columns as Python objects; checked with :func:`check`."""
    out = events.copy()
    for column in columns:
        if column not in out:
            out[column] = None
    out = out[columns]
    for column in ("participant_id", "target_participant_id", *STRUCTURED_FIELDS):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return check(out, columns)


def check(events: pd.DataFrame, columns: list[str] = EVENT_COLUMNS) -> pd.DataFrame:
    """Raise :class:`EventsContractError` unless ``events`` has ``columns``, kinds from
    :data:`KINDS`, interruption outcomes/styles and expressions from their closed sets, and
    ``end_s >= start_s``; returns ``events`` unchanged."""
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise EventsContractError(f"the events table lacks column(s) {', '.join(missing)}; re-run the analysis")
    if not len(events):
        return events
    unknown = set(events.kind) - set(KINDS)
    if unknown:
        raise EventsContractError(f"unknown event kind(s) {', '.join(sorted(map(str, unknown)))}")
    for field_, allowed, kind in (("outcome", INTERRUPTION_OUTCOMES, "interruption"),
                                  ("style", INTERRUPTION_STYLES, "interruption"),
                                  ("expression", EXPRESSIONS, "expression")):
        values = events[field_]
        own = events.kind == kind
        if (own & values.notna() & ~values.isin(allowed)).any() or (~own & values.notna()).any():
            raise EventsContractError(f"'{field_}' must be one of {', '.join(allowed)} on {kind} events, "
                                      "and empty on others")
    if (events.kind == "interruption").any() and events.outcome[events.kind == "interruption"].isna().any():
        raise EventsContractError("every interruption needs an outcome")
    if (events.end_s.astype(float) < events.start_s.astype(float)).any():
        raise EventsContractError("an event ends before it starts")
    return events


# ---- reading -------------------------------------------------------------------------------
# Tables written before the structured fields existed (13 columns) carried an interruption's
# outcome and style only in its label ("successful, competitive"); they are upgraded once, here,
# when read, so that nothing else ever parses a label.
LEGACY_COLUMNS = [c for c in EVENT_COLUMNS if c not in STRUCTURED_FIELDS]
EVENTS_TABLE = "derived/events.parquet"


def upgrade_legacy(events: pd.DataFrame) -> pd.DataFrame:
    """A pre-contract events table with the structured fields filled from its labels; a
    current table is returned as it is."""
    if all(c in events.columns for c in STRUCTURED_FIELDS):
        return events
    out = events.copy()
    inter = out.kind == "interruption"
    parts = out.label.where(inter, "").fillna("").astype(str).str.split(", ")
    out["outcome"] = [p[0] if i and p[0] in INTERRUPTION_OUTCOMES else None for p, i in zip(parts, inter)]
    out["style"] = [p[1] if i and len(p) > 1 and p[1] in INTERRUPTION_STYLES else None for p, i in zip(parts, inter)]
    out["expression"] = out.label.where((out.kind == "expression") & out.label.isin(EXPRESSIONS), None)
    return out


def read(store, session_id: str) -> pd.DataFrame:
    """The session's events table (:data:`EVENT_COLUMNS`), checked against the contract;
    raises :class:`EventsContractError` for a table that breaks it."""
    events, _ = store.read_table(session_id, EVENTS_TABLE)
    return conform(upgrade_legacy(events), EVENT_COLUMNS)
