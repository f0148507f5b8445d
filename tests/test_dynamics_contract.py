"""The dynamics stage's events follow the events contract (analysis.core.events): structured
``outcome``/``style`` on interruptions, labels unchanged, explanations from TEMPLATES."""
from __future__ import annotations

import pandas as pd

from analysis.core import events
from analysis.stages.dynamics import Interruption, analyse_dynamics

NAMES = {"A": "Alex", "B": "Sam"}
# Sam tries to come in at 4 s and drops out at 6 s while Alex carries on (unsuccessful); after a
# silence, Sam comes in at 26 s, Alex stops at 26.8 s and Sam keeps the floor (successful).
SPEECH = pd.DataFrame([(0.0, 10.0, "A"), (4.0, 6.0, "B"), (20.0, 26.8, "A"), (26.0, 35.0, "B")],
                      columns=["start_s", "end_s", "participant_id"])


def interruptions(res):
    return res.events[res.events.kind == "interruption"].reset_index(drop=True)


def test_interruptions_carry_outcome_and_no_style_without_tone():
    res = analyse_dynamics(SPEECH, names=NAMES, session_end_s=40.0)
    assert list(res.events.columns) == events.STAGE_COLUMNS
    events.check(res.events, events.STAGE_COLUMNS)
    inter = interruptions(res)
    assert inter[["start_s", "participant_id", "target_participant_id"]].values.tolist() == [
        [4.0, "B", "A"], [26.0, "B", "A"]]
    assert inter.outcome.tolist() == ["unsuccessful", "successful"]
    assert inter.label.tolist() == ["unsuccessful", "successful"]
    assert inter["style"].tolist() == [None, None]
    others = res.events[res.events.kind != "interruption"]
    assert others[["outcome", "style", "expression"]].isna().all().all()
    assert res.events.expression.isna().all()
    assert set(others.kind) == {"speech_turn", "overlap", "silence"}
    assert set(others.label) == {"turn", "overlap", "silence"}
    # metrics count by outcome
    part = res.participants.set_index("participant_id")
    assert part.loc["B", "successful_interruptions_made"] == 1 and part.loc["B", "unsuccessful_interruptions_made"] == 1
    assert res.matrices["successful"].loc["B", "A"] == 1 and res.matrices["unsuccessful"].loc["B", "A"] == 1
    counts = res.counts()
    assert (counts["interruption_successful"], counts["interruption_unsuccessful"], counts["interruption_competitive"]) == (1, 1, 0)


def test_explanations_come_from_the_templates():
    res = analyse_dynamics(SPEECH, names=NAMES, session_end_s=40.0)
    inter = interruptions(res)
    assert inter.explanation.tolist() == [
        events.explain("interruption", "unsuccessful", name="Sam", target="Alex", start="4.0 s", into="4.0 s",
                       talked="2.0 s"),
        events.explain("interruption", "successful", name="Sam", target="Alex", start="26.0 s", into="6.0 s",
                       yielded="0.8 s"),
    ]
    silence = res.events[res.events.kind == "silence"].iloc[0]
    assert silence.explanation == events.explain("silence", "between", name="Alex", target="Alex",
                                                 length="10.0 s", start="10.0 s", end="20.0 s")


def test_style_is_filled_when_tone_is_measured_and_none_when_not_measurable():
    t = pd.Series([round(0.01 * i, 2) for i in range(4000)])
    onset = (t >= 26.0) & (t < 27.0)
    frames = pd.DataFrame({"t_s": t, "loudness_db": (-30.0 + 10.0 * onset).astype(float), "f0_hz": 120.0,
                           "participant_id": "B"})
    res = analyse_dynamics(SPEECH, names=NAMES, tone_frames=frames)
    inter = interruptions(res)
    assert inter.label.tolist() == ["unsuccessful, cooperative", "successful, competitive"]
    assert inter["style"].tolist() == ["cooperative", "competitive"]
    assert inter.outcome.tolist() == ["unsuccessful", "successful"]
    events.check(res.events, events.STAGE_COLUMNS)
    # Alex has no tone track here: nothing to compare, so no style (and the label has no tone)
    res = analyse_dynamics(SPEECH.assign(participant_id=SPEECH.participant_id.map({"A": "B", "B": "A"})),
                           names=NAMES, tone_frames=frames)
    inter = interruptions(res)
    assert inter["style"].tolist() == [None, None] and inter.label.tolist() == ["unsuccessful", "successful"]
    assert all("Tone not measurable" in text for text in inter.explanation)


def test_interruption_label_is_outcome_then_style():
    base = dict(start_s=0.0, end_s=1.0, interrupter="B", interrupted="A", value=1.0, confidence=1.0,
                into_turn_s=1.0, yield_s=1.0, interrupter_end_s=2.0, tone="measured", loudness_delta_db=0.0,
                pitch_delta_st=0.0)
    assert Interruption(outcome="contested", style="competitive", **base).label == "contested, competitive"
    assert Interruption(outcome="unsuccessful", style=None, **base).label == "unsuccessful"


def test_every_stage_parameter_has_its_own_meaning():
    """The review page's thresholds list reads each field's meaning from its comment: every field
    of every stage's parameters has one, and none is the tail of its neighbour's sentence."""
    from analysis.core.params import describe
    from analysis.pipeline import Params

    docs = describe(Params())
    assert len(docs) > 40
    missing = [d.name for d in docs if not d.meaning or d.meaning.startswith(("...", "least", "and ", "or "))
               or d.meaning.endswith("...")]
    assert missing == []
