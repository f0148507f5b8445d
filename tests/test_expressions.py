"""Known answers for each expression signal and candidate-moment rule on constructed frame tables
(10 frames/s, a neutral face from the population prior plus a little noise, one thing changed)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.core import events as ev
from analysis.stages.expressions import NEUTRAL_PRIOR, ExpressionParams, baseline, expression_events, expression_signals
from analysis.stages.faces import BLENDSHAPES, COLUMNS

FPS = 10.0


def neutral_face(seconds: float, pid: str = "p1", seed: int = 0) -> pd.DataFrame:
    """A face table of :data:`COLUMNS`: every blendshape at its neutral prior (plus noise of
    0.01), head straight (pose noise 0.3 degrees)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * FPS))
    frame = pd.DataFrame({"participant_id": pid, "t_s": np.arange(n) / FPS, "detected": True,
                          "face_x": 0.5, "face_y": 0.5, "face_w": 0.2})
    for pose in ("yaw_deg", "pitch_deg", "roll_deg"):
        frame[pose] = rng.normal(0, 0.3, n)
    for b in BLENDSHAPES:
        frame[b] = np.clip(NEUTRAL_PRIOR.get(b, 0.0) + rng.normal(0, 0.01, n), 0, 1)
    for column in COLUMNS:          # any other column of the table (a face track's id) is not read here
        if column not in frame:
            frame[column] = 0
    return frame[COLUMNS]


def put(frame: pd.DataFrame, start_s: float, end_s: float, **values) -> pd.DataFrame:
    inside = (frame.t_s >= start_s - 1e-9) & (frame.t_s < end_s - 1e-9)
    for column, value in values.items():
        frame.loc[inside, column] = value
    return frame


def labels(events: pd.DataFrame, label: str) -> list[tuple[float, float]]:
    rows = events[events.label == label]
    return list(zip(rows.start_s.round(1), rows.end_s.round(1)))


def test_a_neutral_face_gives_no_events():
    assert expression_events(neutral_face(60)).empty


def test_smile_against_own_baseline():
    f = put(neutral_face(30), 10, 14, mouthSmileLeft=0.8, mouthSmileRight=0.8)
    assert labels(expression_events(f), "smile") == [(10.0, 14.0)]


def test_a_resting_face_high_on_a_blendshape_is_not_an_expression():
    """A person whose resting face scores 0.6 on inner brows up is not sad all session."""
    f = put(neutral_face(60), 0, 60, browInnerUp=0.6)
    base, n = baseline(f)
    assert n >= 100 and base.browInnerUp == pytest.approx(0.6, abs=0.1)
    assert expression_events(f).empty


def test_fallback_baseline_on_a_clip_that_smiles_throughout():
    """No neutral frame is seen: the population prior is the baseline and the smile is found."""
    f = put(neutral_face(8), 0, 8, mouthSmileLeft=0.85, mouthSmileRight=0.85, mouthUpperUpLeft=0.7,
            mouthUpperUpRight=0.7, mouthLowerDownLeft=0.3, mouthLowerDownRight=0.3, eyeSquintLeft=0.6,
            eyeSquintRight=0.6, cheekSquintLeft=0.4, cheekSquintRight=0.4)
    base, n = baseline(f)
    assert n == 0 and base.mouthSmileLeft == pytest.approx(NEUTRAL_PRIOR["mouthSmileLeft"])
    assert labels(expression_events(f), "smile") == [(0.0, 8.0)]
    # with a session median as the baseline (the rule before), the smile would be zero throughout
    assert (f.mouthSmileLeft - f.mouthSmileLeft.median()).abs().max() < 0.1


def test_the_prior_gives_way_to_the_own_face_with_time():
    short = put(neutral_face(4), 0, 4, browInnerUp=0.5)
    long = put(neutral_face(120), 0, 120, browInnerUp=0.5)
    assert baseline(short)[0].browInnerUp < baseline(long)[0].browInnerUp
    assert baseline(long)[0].browInnerUp == pytest.approx(0.5, abs=0.05)


def test_one_sided_smile_is_not_a_smile():
    f = put(neutral_face(30), 5, 8, mouthSmileLeft=0.7, mouthSmileRight=0.05)
    events = expression_events(f)
    assert labels(events, "one_sided_smile") == [(5.0, 8.0)] and not labels(events, "smile")


def test_brows_lowered_with_pressed_lips():
    f = put(neutral_face(30), 12, 15, browDownLeft=0.4, browDownRight=0.4, mouthPressLeft=0.35, mouthPressRight=0.35)
    assert labels(expression_events(f), "frown") == [(12.0, 15.0)]
    # brows lowered alone (concentration) is not it
    assert not labels(expression_events(put(neutral_face(30), 12, 15, browDownLeft=0.4, browDownRight=0.4)), "frown")


def test_sadness_like_and_it_cancels_a_smile():
    f = put(neutral_face(30), 6, 10, browInnerUp=0.45, mouthFrownLeft=0.2, mouthFrownRight=0.2)
    put(f, 6, 10, mouthSmileLeft=0.7, mouthSmileRight=0.7)       # corners pulled while crying
    events = expression_events(f)
    assert labels(events, "sadness_like") == [(6.0, 10.0)] and not labels(events, "smile")


def test_surprise_needs_brows_eyes_and_jaw():
    f = put(neutral_face(30), 3, 4.5, browInnerUp=0.6, browOuterUpLeft=0.7, browOuterUpRight=0.7,
            eyeWideLeft=0.5, eyeWideRight=0.5, jawOpen=0.5)
    assert labels(expression_events(f), "surprise") == [(3.0, 4.5)]
    assert not labels(expression_events(put(neutral_face(30), 3, 4.5, jawOpen=0.6)), "surprise")   # talking


def test_disgust_like_not_in_a_toothy_smile():
    sneer = put(neutral_face(30), 20, 22, noseSneerLeft=0.5, noseSneerRight=0.5)
    assert labels(expression_events(sneer), "disgust_like") == [(20.0, 22.0)]
    toothy = put(neutral_face(30), 20, 22, mouthUpperUpLeft=0.8, mouthUpperUpRight=0.8, mouthSmileLeft=0.85,
                 mouthSmileRight=0.85)
    events = expression_events(toothy)
    assert not labels(events, "disgust_like") and labels(events, "smile") == [(20.0, 22.0)]


def test_eye_roll_is_brief_and_both_eyes():
    f = put(neutral_face(30), 10, 10.8, eyeLookUpLeft=0.7, eyeLookUpRight=0.7)
    assert labels(expression_events(f), "eye_roll") == [(10.0, 10.8)]
    one_eye = put(neutral_face(30), 10, 10.8, eyeLookUpLeft=0.7)
    assert not labels(expression_events(one_eye), "eye_roll")
    long_look = put(neutral_face(30), 10, 15, eyeLookUpLeft=0.7, eyeLookUpRight=0.7)   # looking at the ceiling
    assert not labels(expression_events(long_look), "eye_roll")


def test_looking_away_by_eyes_or_head():
    eyes = put(neutral_face(60), 20, 24, eyeLookOutLeft=0.8, eyeLookInRight=0.8)
    assert labels(expression_events(eyes), "looking_away") == [(20.0, 24.0)]
    head = put(neutral_face(60), 30, 33, yaw_deg=35.0)
    assert labels(expression_events(head), "looking_away") == [(30.0, 33.0)]
    glance = put(neutral_face(60), 30, 30.8, yaw_deg=35.0)          # shorter than look_away_min_s
    assert not labels(expression_events(glance), "looking_away")


def test_nodding_is_a_pitch_oscillation():
    f = neutral_face(30)
    t = f.t_s.to_numpy()
    nod = (t >= 10) & (t < 14)
    f.loc[nod, "pitch_deg"] += 5 * np.sin(2 * np.pi * 1.5 * (t[nod] - 10))     # 1.5 Hz, 10 degrees peak to peak
    (start, end), = labels(expression_events(f), "nodding")
    assert 9.0 <= start <= 10.5 and 13.5 <= end <= 15.0
    tilt = neutral_face(30)
    tilt.loc[tilt.t_s >= 10, "pitch_deg"] += 10                       # one tilt of the head is not a nod
    assert not labels(expression_events(tilt), "nodding")


def test_missing_face_is_missing_not_neutral():
    f = put(neutral_face(30), 10, 14, mouthSmileLeft=0.8, mouthSmileRight=0.8)
    gone = (f.t_s >= 11) & (f.t_s < 13)
    f.loc[gone, "detected"] = False
    f.loc[gone, COLUMNS[3:]] = np.nan
    signals = expression_signals(f)
    assert signals.smile[gone.to_numpy()].isna().all()
    assert labels(expression_events(f), "smile") == [(10.0, 11.0), (13.0, 14.0)]


def two_people(seconds: float) -> pd.DataFrame:
    return pd.concat([neutral_face(seconds, "p1", 1), neutral_face(seconds, "p2", 2)], ignore_index=True)


def test_one_sided_smile_while_the_partner_speaks():
    f = two_people(60)
    put(f.loc[f.participant_id == "p1"], 0, 0)
    inside = (f.participant_id == "p1") & (f.t_s >= 20) & (f.t_s < 22)
    f.loc[inside, ["mouthSmileLeft", "mouthSmileRight"]] = [0.7, 0.05]
    speech = pd.DataFrame({"start_s": [15.0], "end_s": [25.0], "participant_id": ["p2"]})
    moments = expression_events(f, speech=speech)
    moment = moments[moments.kind == "face_moment"]
    assert list(moment.label) == ["one_sided_smile_while_partner_speaks"]
    assert moment.iloc[0][["participant_id", "target_participant_id", "start_s", "end_s"]].tolist() == ["p1", "p2", 20.0, 22.0]
    # while p1 speaks themself, it is not that moment
    own = pd.DataFrame({"start_s": [15.0], "end_s": [25.0], "participant_id": ["p1"]})
    assert not (expression_events(f, speech=own).kind == "face_moment").any()


def test_eye_roll_right_after_the_partners_turn():
    f = two_people(60)
    roll = (f.participant_id == "p1") & (f.t_s >= 31) & (f.t_s < 31.6)
    f.loc[roll, ["eyeLookUpLeft", "eyeLookUpRight"]] = 0.7
    turn = pd.DataFrame({"start_s": [20.0], "end_s": [30.0], "participant_id": ["p2"]})
    moment = expression_events(f, speech=turn).query("kind == 'face_moment'")
    assert list(moment.label) == ["eye_roll_after_turn"] and moment.gap_s.iloc[0] == pytest.approx(1.0)
    long_ago = pd.DataFrame({"start_s": [10.0], "end_s": [20.0], "participant_id": ["p2"]})
    assert not (expression_events(f, speech=long_ago).kind == "face_moment").any()


def test_long_silence_looking_away_with_a_still_face():
    f = two_people(120)
    away = (f.participant_id == "p1") & (f.t_s >= 40) & (f.t_s < 60)
    f.loc[away, "yaw_deg"] = 40.0
    speech = pd.DataFrame({"start_s": [0.0, 35.0], "end_s": [30.0, 70.0], "participant_id": ["p1", "p2"]})
    moment = expression_events(f, speech=speech).query("kind == 'face_moment'")
    assert list(moment.label) == ["withdrawn_silence"]
    assert moment.iloc[0][["participant_id", "target_participant_id", "start_s", "end_s"]].tolist() == ["p1", "p2", 40.0, 60.0]
    # the same while talking is not silence; with a lively face it is not still
    talking = pd.DataFrame({"start_s": [35.0], "end_s": [70.0], "participant_id": ["p1"]})
    assert not (expression_events(f, speech=talking).kind == "face_moment").any()
    lively = f.copy()
    lively.loc[away, "jawOpen"] = np.tile([0.05, 0.6], int(away.sum()) // 2)
    assert not (expression_events(lively, speech=speech).label == "withdrawn_silence").any()
    # speech of no one in particular (p1 without voice analysis, say) could be theirs: not silence
    nobody = pd.DataFrame({"start_s": [38.0], "end_s": [62.0], "participant_id": [None]})
    assert not (expression_events(f, speech=speech, unattributed=nobody).label == "withdrawn_silence").any()


def test_no_speech_no_moments():
    f = put(neutral_face(30), 10, 12, mouthSmileLeft=0.7, mouthSmileRight=0.05)
    assert not (expression_events(f, speech=pd.DataFrame(columns=["start_s", "end_s", "participant_id"])).kind
                == "face_moment").any()


def test_every_label_has_its_explanation_and_every_threshold_its_documentation():
    from analysis.core.params import describe_recorded

    for label in ev.EXPRESSIONS:
        assert label in ev.TEMPLATES["expression"]
    for label in ev.FACE_MOMENTS:
        assert label in ev.TEMPLATES["face_moment"]
    docs = describe_recorded(ExpressionParams, ExpressionParams().to_dict(), "expressions.")
    assert len(docs) == len(ExpressionParams().to_dict()) and all(d.meaning for d in docs)
