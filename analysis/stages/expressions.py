"""Facial expression signals per person over time, each read against that person's own neutral
baseline, their events, and candidate moments that combine a face with who was speaking.

Input: the faces frame table (:data:`analysis.stages.faces.COLUMNS`; a row with ``detected``
False is missing, never neutral: every signal is NaN there and a run stops at it).

**Baseline rule** (per person, per blendshape). Over the expressive blendshapes (all but
``_neutral``, blinks and eye-look directions), a frame's *activity* is the summed score above the
population-neutral prior :data:`NEUTRAL_PRIOR`, and its *raise* the summed score above the
person's own median face. The person's *neutral frames* are the ``neutral_share`` of their
frames least raised (nothing pulled beyond their usual face) whose activity is at most
``neutral_activity_max`` (a face that smiles all the time has none). The baseline is

    baseline = w * median(neutral frames) + (1 - w) * NEUTRAL_PRIOR,  w = n / (n + prior_frames)

with ``n`` neutral frames and ``prior_frames = baseline_prior_s * sampling rate``: with little
neutral face seen (a short clip, one long expression) the prior decides, with a long session
the person's own face does. A *rise* is a score above the baseline (0 below it). Where a person
usually looks (eye gaze left/right, head yaw and pitch) is their median over the frames with a
face.

**Signals** (columns of :func:`expression_signals`, each 0-1, NaN without a face):

- ``smile``: both mouth corners raised (mean rise of ``mouthSmileLeft``/``Right``), reduced by
  the sadness-like evidence at the same moment (a crying face pulls the corners too: at
  ``sadness_full`` the smile score is 0);
- ``one_sided_smile``: |left - right| corner rise, a *contempt candidate* (MediaPipe's
  Left/Right are the subject's own);
- ``frown`` (anger-like): brows lowered with lips pressed (geometric mean of the
  ``browDown`` and ``mouthPress`` rises);
- ``sadness_like``: inner brows raised (``browInnerUp``) plus mouth corners down
  (``mouthFrown``) plus chin raised (``mouthShrugLower``/``Upper``; FACS AU 1, 15, 17);
- ``surprise``: brows up, eyes wide and jaw open together (geometric mean of the three rises);
- ``disgust_like``: nose sneer, or upper lip raised without a smile;
- ``eye_roll``: both eyes looking up (the smaller of the two ``eyeLookUp`` rises); an event
  only when brief (``eye_roll_max_s``);
- ``looking_away``: the eyes turned from where the person usually looks (left/right or down)
  or the head turned (yaw from its usual angle, ``turn_full_deg`` = 1);
- ``nodding``: peak-to-peak swing of the head's pitch, after removing its slow drift, over
  ``nod_window_s`` with at least ``nod_min_swings`` changes of direction (``nod_full_deg`` = 1);
- ``mouth_activity``: how much the mouth opening (:func:`analysis.stages.faces.mouth_activity`)
  moves over ``mouth_window_s`` (max - min): the visual cue for who is speaking; not an event.

**Events**: runs of a signal at or above its threshold, at least ``min_duration_s`` long
(``look_away_min_s`` for looking away, ``eye_roll_min_s`` to ``eye_roll_max_s`` for an
eye-roll), gaps under ``bridge_gap_s`` joined; ``value`` is the peak score and
``confidence`` the share of frames with a face in the span times a margin term (0.5 at the
threshold, 1 at twice the threshold).

**Candidate moments** (kind ``face_moment``; something to look at together, never a verdict):
``one_sided_smile_while_partner_speaks`` (possible contempt), ``eye_roll_after_turn`` (an
eye-roll during or within ``eye_roll_after_turn_s`` of a partner's turn) and
``withdrawn_silence`` (possible stonewalling: the person silent for ``withdrawn_min_s`` or
more while looking away with a still face). They need who spoke when; without speech there
are none.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.core.events import EXPRESSIONS, FACE_MOMENTS
from analysis.stages.faces import BLENDSHAPES, mouth_activity

# Population-neutral prior for each blendshape: the median, over the neutral frames (the lowest
# fifth by expressive activity) of 11 faces measured with the faces stage at 10 frames/s
# (../shared/data/faces: single_face, WolfgangLanger_Pexels, face_noface, noface_face,
# two_faces x2; ../shared/data/talking: the three GRID clips; sample_data/session.mp4 x2).
# Blendshapes not listed are 0.
NEUTRAL_PRIOR: dict[str, float] = {
    "browDownLeft": 0.010, "browDownRight": 0.010, "browInnerUp": 0.028, "browOuterUpLeft": 0.134,
    "browOuterUpRight": 0.131, "eyeBlinkLeft": 0.094, "eyeBlinkRight": 0.047, "eyeLookDownLeft": 0.105,
    "eyeLookDownRight": 0.113, "eyeLookInLeft": 0.079, "eyeLookInRight": 0.060, "eyeLookOutLeft": 0.060,
    "eyeLookOutRight": 0.073, "eyeLookUpLeft": 0.078, "eyeLookUpRight": 0.077, "eyeSquintLeft": 0.314,
    "eyeSquintRight": 0.222, "eyeWideLeft": 0.011, "eyeWideRight": 0.009, "jawLeft": 0.002, "jawOpen": 0.023,
    "mouthClose": 0.006, "mouthDimpleLeft": 0.003, "mouthDimpleRight": 0.007, "mouthFunnel": 0.004,
    "mouthLeft": 0.002, "mouthLowerDownLeft": 0.003, "mouthLowerDownRight": 0.002, "mouthPressLeft": 0.028,
    "mouthPressRight": 0.023, "mouthPucker": 0.023, "mouthRight": 0.001, "mouthRollLower": 0.015,
    "mouthRollUpper": 0.017, "mouthShrugLower": 0.011, "mouthShrugUpper": 0.015, "mouthSmileLeft": 0.001,
    "mouthSmileRight": 0.001,
}
EXPRESSIVE = [b for b in BLENDSHAPES if b != "_neutral" and not b.startswith(("eyeBlink", "eyeLook"))]
# signals with events (their labels in the events table), then the one without
EVENT_SIGNALS = EXPRESSIONS
SIGNALS = EVENT_SIGNALS + ("mouth_activity",)
MOMENTS = FACE_MOMENTS
COLUMNS = ["start_s", "end_s", "kind", "participant_id", "target_participant_id", "label", "value", "confidence",
           "gap_s"]


@dataclass(frozen=True)
class ExpressionParams:
    # baseline
    neutral_share: float = 0.2           # share of the person's frames, least raised above their usual face, that may be neutral
    neutral_activity_max: float = 3.0    # summed expressive blendshape scores above the prior for a neutral frame
    baseline_prior_s: float = 2.0        # weight of the population prior, in seconds of neutral face
    # signals and their event thresholds (scores are 0-1 rises above own baseline)
    smile_rise: float = 0.35             # smile score (both corners) for a smile
    sadness_full: float = 0.3            # sadness-like evidence that cancels a smile score completely
    one_sided_asymmetry: float = 0.25    # |left - right| corner rise for a one-sided smile
    frown_rise: float = 0.12             # brows lowered with lips pressed (geometric mean of the rises)
    sadness_rise: float = 0.2            # inner brows up + corners down + chin raised (sum of rises)
    surprise_rise: float = 0.3           # brows up, eyes wide, jaw open (geometric mean of the rises)
    disgust_rise: float = 0.3            # nose sneer or upper lip raised without a smile
    eye_roll_rise: float = 0.3           # both eyes' look-up rise
    eye_roll_min_s: float = 0.2          # an eye-roll lasts at least this
    eye_roll_max_s: float = 2.0          # an eye-roll lasts at most this (longer: looking up, not rolling the eyes)
    looking_away_rise: float = 0.4       # eye look away from usual, or head yaw / turn_full_deg
    turn_full_deg: float = 45.0          # head yaw from its usual angle that scores 1 (degrees)
    look_away_min_s: float = 1.5         # looking away counts from this long
    nod_window_s: float = 2.0            # nodding is measured over this window
    nod_drift_s: float = 3.0             # the pitch's slow drift (rolling median over this) is removed first
    nod_full_deg: float = 10.0           # peak-to-peak pitch swing that scores 1 (degrees)
    nodding_rise: float = 0.6            # nodding score for a nod (0.6: a 6-degree swing)
    nod_min_swings: int = 2              # changes of direction of the pitch within the window
    nod_swing_deg: float = 3.0           # a change of direction counts when the pitch moves back this far (degrees)
    nod_smooth_s: float = 0.3            # the pitch is first averaged over this window (tracking jitter)
    mouth_window_s: float = 0.5          # mouth activity: range of the mouth opening over this window
    min_duration_s: float = 0.5          # shorter runs are ignored
    bridge_gap_s: float = 0.3            # runs separated by less than this are joined
    # candidate moments
    partner_speech_share: float = 0.5    # share of a one-sided smile inside a partner's speech
    eye_roll_after_turn_s: float = 2.0   # an eye-roll this soon after a partner's turn ends
    withdrawn_min_s: float = 8.0         # silent, looking away and still for at least this long
    withdrawn_bridge_s: float = 1.0      # breaks shorter than this (s) in such a silence are bridged
    still_window_s: float = 2.0          # a still face is judged over this many seconds
    still_activity_std: float = 0.15     # a still face: std of expressive activity over still_window_s below this
    still_mouth_max: float = 0.1         # a still face: mouth activity below this too

    def to_dict(self) -> dict:
        return asdict(self)


def _runs(times: np.ndarray, active: np.ndarray, *, bridge_s: float, min_s: float, step_s: float,
          max_s: float = np.inf) -> list[tuple[float, float]]:
    """(start_s, end_s) runs of ``active`` over sampled ``times`` (seconds), gaps up to
    ``bridge_s`` joined, kept when ``min_s <= length <= max_s``."""
    out: list[list[float]] = []
    for t, on in zip(times, active):
        if not on:
            continue
        if out and t - out[-1][1] <= bridge_s + 1e-6:
            out[-1][1] = t + step_s
        else:
            out.append([t, t + step_s])
    return [(round(s, 3), round(e, 3)) for s, e in out if min_s - 1e-6 <= e - s <= max_s + 1e-6]


def _step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.1


def baseline(frames: pd.DataFrame, params: ExpressionParams = ExpressionParams()) -> tuple[pd.Series, int]:
    """One person's neutral baseline per blendshape (see the module's rule) from their frames
    with a face, and the number of neutral frames it used."""
    prior = pd.Series({b: NEUTRAL_PRIOR.get(b, 0.0) for b in BLENDSHAPES})
    seen = frames[frames.detected]
    if seen.empty:
        return prior, 0
    activity = (seen[EXPRESSIVE] - prior[EXPRESSIVE]).clip(lower=0).sum(axis=1)
    above_usual = (seen[EXPRESSIVE] - seen[EXPRESSIVE].median()).clip(lower=0).sum(axis=1)
    neutral = seen[(above_usual <= above_usual.quantile(params.neutral_share)) & (activity <= params.neutral_activity_max)]
    n = len(neutral)
    if not n:
        return prior, 0
    prior_frames = params.baseline_prior_s / _step(np.sort(seen.t_s.to_numpy()))
    w = n / (n + prior_frames)
    return w * neutral[BLENDSHAPES].median() + (1 - w) * prior, n


def _rolling(values: np.ndarray, window: int, how: str) -> np.ndarray:
    s = pd.Series(values)
    roll = s.rolling(max(window, 1), center=True, min_periods=1)
    out = getattr(roll, how)().to_numpy(float, copy=True)
    out[np.isnan(values)] = np.nan
    return out


def _reversals(values: np.ndarray, hysteresis: float) -> int:
    """Changes of direction of ``values`` that each move at least ``hysteresis`` back from the
    last extreme (small jitter does not count)."""
    count, direction, low, high, extreme = 0, 0, values[0], values[0], values[0]
    for v in values[1:]:
        if direction == 0:                  # no first move of the full size yet
            low, high = min(low, v), max(high, v)
            if high - low >= hysteresis:
                direction, extreme = (1 if v == high else -1), v
        elif direction * (v - extreme) > 0:
            extreme = v
        elif abs(v - extreme) >= hysteresis:
            count, direction, extreme = count + 1, -direction, v
    return count


def _nodding(pitch: np.ndarray, step_s: float, params: ExpressionParams) -> np.ndarray:
    """Nodding score per frame: peak-to-peak swing of the smoothed pitch (degrees /
    ``nod_full_deg``) over the window after its drift is removed; 0 with fewer than
    ``nod_min_swings`` changes of direction of at least ``nod_swing_deg``."""
    smooth = _rolling(pitch, int(round(params.nod_smooth_s / step_s)), "mean")
    swing = smooth - _rolling(smooth, int(round(params.nod_drift_s / step_s)), "median")
    half = max(int(round(params.nod_window_s / step_s)), 3) // 2
    out = np.full(len(pitch), np.nan)
    for i in np.flatnonzero(~np.isnan(pitch)):
        part = swing[max(0, i - half): i + half + 1]
        part = part[~np.isnan(part)]
        enough = len(part) >= 3 and _reversals(part, params.nod_swing_deg) >= params.nod_min_swings
        out[i] = min(float(part.max() - part.min()) / params.nod_full_deg, 1.0) if enough else 0.0
    return out


def person_signals(frames: pd.DataFrame, params: ExpressionParams = ExpressionParams()) -> pd.DataFrame:
    """One person's signals (:data:`SIGNALS`, 0-1, NaN without a face) per sampled frame, with
    ``t_s`` and ``activity`` (summed expressive rises, for stillness); ``frames`` is their
    part of the faces table in time order."""
    f = frames.sort_values("t_s").reset_index(drop=True)
    seen = f.detected.to_numpy(bool)
    times = f.t_s.to_numpy(float)
    step = _step(times)
    base, _ = baseline(f, params)
    values = f[BLENDSHAPES].astype(float).where(pd.Series(seen, index=f.index), np.nan, axis=0)
    rise = (values - base).clip(lower=0)

    def pair(name: str) -> pd.Series:
        return (rise[name + "Left"] + rise[name + "Right"]) / 2

    corners = pair("mouthSmile")
    sadness = rise.browInnerUp + pair("mouthFrown") + np.minimum(rise.mouthShrugLower, rise.mouthShrugUpper)
    smile = corners * (1 - (sadness / params.sadness_full).clip(upper=1))
    brows_up = np.maximum(rise.browInnerUp, pair("browOuterUp"))
    look_h = (values.eyeLookOutLeft + values.eyeLookInRight - values.eyeLookOutRight - values.eyeLookInLeft) / 2
    look_down = (values.eyeLookDownLeft + values.eyeLookDownRight) / 2
    usual_down = float(np.nanmedian(look_down)) if seen.any() else 0.0
    eyes_away = np.maximum((look_h - (np.nanmedian(look_h) if seen.any() else 0.0)).abs(),
                           (look_down - usual_down).clip(lower=0))
    yaw = f.yaw_deg.where(pd.Series(seen, index=f.index)).astype(float)
    head_away = (yaw - (np.nanmedian(yaw) if seen.any() else 0.0)).abs() / params.turn_full_deg
    mouth = mouth_activity(f.assign(**{c: values[c] for c in ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight")}))
    mouth_open = mouth.mouth_open.to_numpy(float)
    window = max(int(round(params.mouth_window_s / step)), 2)
    activity = rise[EXPRESSIVE].sum(axis=1, min_count=1)
    out = pd.DataFrame({
        "t_s": times,
        "smile": smile,
        "one_sided_smile": (rise.mouthSmileLeft - rise.mouthSmileRight).abs(),
        "frown": np.sqrt(pair("browDown") * pair("mouthPress")),
        "sadness_like": sadness.clip(upper=1),
        "surprise": np.cbrt(brows_up * pair("eyeWide") * rise.jawOpen),
        "disgust_like": np.maximum(pair("noseSneer"), pair("mouthUpperUp") * (1 - (corners / params.smile_rise).clip(upper=1))),
        "eye_roll": np.minimum(rise.eyeLookUpLeft, rise.eyeLookUpRight),
        "looking_away": np.maximum(eyes_away, head_away).clip(upper=1),
        "nodding": _nodding(f.pitch_deg.where(pd.Series(seen, index=f.index)).to_numpy(float), step, params),
        "mouth_activity": (_rolling(mouth_open, window, "max") - _rolling(mouth_open, window, "min")).clip(max=1),
        "activity": activity,
    })
    out.loc[~seen, list(SIGNALS) + ["activity"]] = np.nan
    return out


def signals_by_person(faces: pd.DataFrame, params: ExpressionParams = ExpressionParams()) -> dict[str, pd.DataFrame]:
    """:func:`person_signals` of each participant of the faces table (id -> frame), computed once
    for both :func:`expression_signals` and :func:`expression_events`."""
    return {pid: person_signals(f, params) for pid, f in faces.groupby("participant_id", sort=False)}


def expression_signals(faces: pd.DataFrame, params: ExpressionParams = ExpressionParams(), *,
                       by_person: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Every person's signals over time: ``participant_id, t_s`` and :data:`SIGNALS` (0-1, NaN
    where no face was found); ``by_person``: :func:`signals_by_person` if already computed."""
    columns = ["participant_id", "t_s", *SIGNALS]
    if faces.empty:
        return pd.DataFrame(columns=columns)
    by_person = signals_by_person(faces, params) if by_person is None else by_person
    parts = [sig.assign(participant_id=pid) for pid, sig in by_person.items()]
    return pd.concat(parts, ignore_index=True)[columns]


def _thresholds(params: ExpressionParams) -> dict[str, float]:
    return {"smile": params.smile_rise, "one_sided_smile": params.one_sided_asymmetry, "frown": params.frown_rise,
            "sadness_like": params.sadness_rise, "surprise": params.surprise_rise, "disgust_like": params.disgust_rise,
            "eye_roll": params.eye_roll_rise, "looking_away": params.looking_away_rise,
            "nodding": params.nodding_rise}


def _person_events(pid: str, sig: pd.DataFrame, params: ExpressionParams) -> list[tuple]:
    times = sig.t_s.to_numpy(float)
    step = _step(times)
    seen = ~np.isnan(sig.smile.to_numpy(float))
    threshold = _thresholds(params)
    corners_left_right = sig.one_sided_smile.to_numpy(float)
    active = {label: seen & (np.nan_to_num(sig[label].to_numpy(float)) >= threshold[label]) for label in EVENT_SIGNALS}
    # a one-sided smile is not a smile too; it needs a corner clearly up
    active["smile"] &= ~active["one_sided_smile"]
    active["one_sided_smile"] &= np.nan_to_num(sig.smile.to_numpy(float) + corners_left_right / 2) >= params.smile_rise / 2
    rows = []
    for label in EVENT_SIGNALS:
        lengths = {"eye_roll": (params.eye_roll_min_s, params.eye_roll_max_s),
                   "looking_away": (params.look_away_min_s, np.inf)}.get(label, (params.min_duration_s, np.inf))
        score = sig[label].to_numpy(float)
        for start, end in _runs(times, active[label], bridge_s=params.bridge_gap_s, min_s=lengths[0],
                                max_s=lengths[1], step_s=step):
            span = (times >= start - 1e-9) & (times < end - 1e-9)
            peak = float(np.nanmax(score[span]))
            margin = 0.5 + 0.5 * min(max((peak - threshold[label]) / threshold[label], 0.0), 1.0)
            rows.append((start, end, "expression", pid, None, label, round(peak, 6),
                         round(float(seen[span].mean()) * margin, 6), np.nan))
    return rows


def _speech_mask(times: np.ndarray, speech: pd.DataFrame) -> np.ndarray:
    mask = np.zeros(len(times), bool)
    for row in speech.itertuples():
        mask |= (times >= row.start_s) & (times < row.end_s)
    return mask


def _main_speaker(speech: pd.DataFrame, start: float, end: float) -> str | None:
    """Who spoke most within ``[start, end]`` (s) among ``speech``, None when nobody did."""
    spoken = (speech.end_s.clip(upper=end) - speech.start_s.clip(lower=start)).clip(lower=0)
    if not len(spoken) or spoken.max() <= 0:
        return None
    return str(spoken.groupby(speech.participant_id).sum().idxmax())


def candidate_moments(events: pd.DataFrame, signals: pd.DataFrame, speech: pd.DataFrame,
                      params: ExpressionParams = ExpressionParams(),
                      unattributed: pd.DataFrame | None = None) -> list[tuple]:
    """Rows (:data:`COLUMNS`, kind ``face_moment``) combining each person's face events and
    signals with who spoke when (``speech``: ``start_s, end_s, participant_id``).
    ``unattributed`` (``start_s, end_s``): speech of no one in particular (someone without voice
    analysis, say): it could be anyone's, so no one counts as silent during it."""
    if speech is None or speech.empty:
        return []
    anyone = unattributed[["start_s", "end_s"]] if unattributed is not None else speech.iloc[:0][["start_s", "end_s"]]
    rows = []
    for row in events.itertuples():
        others = speech[speech.participant_id != row.participant_id]
        if row.label == "one_sided_smile":
            overlap = (others.end_s.clip(upper=row.end_s) - others.start_s.clip(lower=row.start_s)).clip(lower=0)
            if len(others) and overlap.sum() >= params.partner_speech_share * (row.end_s - row.start_s):
                rows.append((row.start_s, row.end_s, "face_moment", row.participant_id,
                             _main_speaker(others, row.start_s, row.end_s), MOMENTS[0], row.value, row.confidence,
                             np.nan))
        elif row.label == "eye_roll":
            during = others[(others.start_s <= row.start_s) & (others.end_s >= row.start_s)]
            after = others[(others.end_s <= row.start_s) & (others.end_s >= row.start_s - params.eye_roll_after_turn_s)]
            if len(during) or len(after):
                turn = (during if len(during) else after).sort_values("end_s").iloc[-1]
                rows.append((row.start_s, row.end_s, "face_moment", row.participant_id, str(turn.participant_id),
                             MOMENTS[1], row.value, row.confidence, round(max(row.start_s - turn.end_s, 0.0), 3)))
    for pid, sig in signals.groupby("participant_id", sort=False):
        times = sig.t_s.to_numpy(float)
        step = _step(times)
        own = pd.concat([speech[speech.participant_id == pid][["start_s", "end_s"]], anyone], ignore_index=True)
        silent = ~_speech_mask(times, own)
        activity_std = _rolling(sig.activity.to_numpy(float), int(round(params.still_window_s / step)), "std")
        still = (np.nan_to_num(activity_std, nan=np.inf) <= params.still_activity_std) & \
                (np.nan_to_num(sig.mouth_activity.to_numpy(float), nan=np.inf) <= params.still_mouth_max) & \
                (np.nan_to_num(sig.nodding.to_numpy(float)) < params.nodding_rise)
        away = np.nan_to_num(sig.looking_away.to_numpy(float)) >= params.looking_away_rise
        for start, end in _runs(times, silent & still & away, bridge_s=params.withdrawn_bridge_s,
                                min_s=params.withdrawn_min_s, step_s=step):
            span = (times >= start) & (times < end)
            rows.append((start, end, "face_moment", pid, _main_speaker(speech[speech.participant_id != pid], start, end),
                         MOMENTS[2], round(float(np.nanmean(sig.looking_away.to_numpy(float)[span])), 6),
                         round(float((~np.isnan(sig.smile.to_numpy(float)[span])).mean()), 6), np.nan))
    return rows


def expression_events(faces: pd.DataFrame, *, params: ExpressionParams = ExpressionParams(),
                      speech: pd.DataFrame | None = None, unattributed: pd.DataFrame | None = None,
                      by_person: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Events (:data:`COLUMNS`): each signal's runs (kind ``expression``, ``label`` the signal,
    ``value`` its peak score 0-1, ``confidence`` face share times margin) and, with ``speech``
    (``start_s, end_s, participant_id``), the candidate moments (kind ``face_moment``, ``label``
    one of :data:`MOMENTS`, ``target_participant_id`` the partner, ``gap_s`` the seconds from the
    partner's turn end to an eye-roll); ``unattributed``: speech of no one in particular
    (:func:`candidate_moments`); ``by_person``: :func:`signals_by_person` if already computed."""
    if faces.empty or not faces.detected.any():
        return pd.DataFrame(columns=COLUMNS)
    full = signals_by_person(faces, params) if by_person is None else by_person
    rows = [r for pid, sig in full.items() for r in _person_events(pid, sig, params)]
    events = pd.DataFrame(rows, columns=COLUMNS)
    if speech is not None and len(speech):
        with_activity = pd.concat([sig.assign(participant_id=pid) for pid, sig in full.items()], ignore_index=True)
        rows += candidate_moments(events, with_activity, speech, params, unattributed)
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["start_s", "kind", "label"], ignore_index=True)
