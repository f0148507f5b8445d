"""Synthetic two-person session with exact ground truth (the project's own sample data).

Run it from the repository root (it needs ``/usr/bin/espeak-ng``, numpy, scipy and PyAV)::

    .venv/bin/python sample_data/generate.py            # writes next to this file
    .venv/bin/python sample_data/generate.py --out /tmp/x --seed 7

or from Python: ``generate(out_dir: Path, seed: int = 7) -> dict`` (returns a summary).
The output is deterministic for a given seed and espeak-ng version.

What it makes
-------------
A ~84 s session of a couple, "Alex" (seated LEFT in the video, low male espeak voice
``en+m3``) and "Sam" (seated RIGHT, higher female voice ``en+f4``), having a mild
disagreement about weekend chores and plans. Every utterance is rendered with espeak-ng,
resampled to 16 kHz mono float, trimmed of leading/trailing silence and placed at its scripted
time on that person's own track; the mixture is the sum of the two tracks (one global gain, so
relative loudness is preserved, plus a faint noise floor).

The script contains
- ordinary turns with gaps of 0.1-0.8 s;
- 3 backchannels ("yeah", "right" by Sam, "mm-hm" by Alex; each at most 0.65 s of trimmed
  audio, espeak speed 190) by the listener while the speaker keeps talking through them, with
  at least 1.5 s of the speaker's speech region before and after each;
- 2 successful interruptions (Alex of Sam, Sam of Alex): the listener starts mid-utterance,
  the speaker's audio is cut off (short fade) 0.4-1.0 s later and the interrupter holds the
  floor for more than 2 s;
- 2 unsuccessful interruptions (Alex of Sam): the listener says a few words ("But that is not
  what I said at all", "Of course it does, I promise"; 1.4-2.0 s, all of it overlapped) after
  at least 1 s of the speaker's speech, then drops out while the speaker talks on for at least
  2 s. These are clearly longer than a backchannel (by the project's definition a listener
  vocalisation of at most 1.0 s after which the speaker continues is a backchannel);
- one raised-voice passage by Sam (three consecutive utterances, ~10 s): espeak amplitude 185
  instead of 90, pitch +18 and speed +20 words/min over Sam's normal voice.

The video (640x360, 25 fps, H.264 yuv420p, AAC audio of the mixture) shows two drawn faces side
by side on a plain background. Each mouth opens in proportion to that person's own track's
loudness in the 40 ms window of each video frame (lightly smoothed), so mouths move exactly
while that person speaks and are closed while they are silent. Scripted expressions: a
two-corner smile for each person, a one-sided smile by Alex while Sam speaks (a "contempt
candidate"), and a brow-down frown by Sam during the raised-voice passage. Small head sway and
blinks are added (seeded).

One-sided smile: Alex raises the mouth corner on the IMAGE-LEFT side, which is the SUBJECT's
RIGHT corner (and pulls the other corner slightly down). MediaPipe's blendshapes name sides
from the subject's point of view, so ``mouthSmileRight`` is the score that rises (checked in
``sample_data/check_faces.py``: about 0.80 vs 0.39 for ``mouthSmileLeft``). Measured with the
real Face Landmarker at 5 fps: both faces found in every sampled frame, ``jawOpen`` about
0.39-0.45 while a person speaks vs under 0.01 while silent, ``mouthSmile*`` above 0.9 in the
two-corner smiles. The frown is visible but MediaPipe's ``browDown*`` barely registers it
(about 0.01), so treat the frown as a visual cue only, not as a detector test.

Outputs (in ``out_dir``)
------------------------
- ``session.mp4``   video + AAC audio of the 16 kHz mixture (the session a user would import;
  the truth describes the mixture before AAC encoding). No WAV is written any more (an old
  ``session.wav`` in ``out_dir`` is deleted);
- ``truth/speech.rttm``  one line per contiguous speech region of each person's track
  (``SPEAKER session 1 <start> <dur> <NA> <NA> <Alex|Sam> <NA> <NA>``), derived from the
  placed audio: 10 ms frames whose peak exceeds ``ACTIVITY_THRESHOLD``, pauses shorter than
  0.3 s merged;
- ``truth/events.csv``  ``kind,start_s,end_s,participant,target,label`` with kinds
  ``interruption`` (participant = interrupter, target = interrupted, label
  ``successful``/``unsuccessful``, start = interrupter's onset, end = end of the overlap: the
  cut-off of the speaker for a successful one, the end of the interrupter's whole utterance
  for an unsuccessful one),
  ``backchannel`` (participant = listener, target = speaker), ``raised_voice`` (start/end of
  the passage) and ``expression`` (label ``smile``/``one_sided_smile``/``frown``; the time the
  expression is fully on, ramps of ``EXPRESSION_RAMP_S`` lie outside);
- ``truth/script.json``  the full script (speaker, text, espeak parameters, placed start/end,
  cuts) and the generator's parameters and summary figures.

All times are float seconds from the session start, written with 3 decimals.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import tempfile
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

SR = 16_000
FPS = 25
WIDTH, HEIGHT = 640, 360
ESPEAK = "espeak-ng"

PEOPLE = ("Alex", "Sam")
SEATS = {"Alex": "left", "Sam": "right"}
VOICES = {
    "Alex": {"voice": "en+m3", "pitch": 35, "speed": 165, "amplitude": 90},
    "Sam": {"voice": "en+f4", "pitch": 70, "speed": 170, "amplitude": 90},
}
RAISED = {"amplitude": 185, "pitch_delta": 18, "speed_delta": 20}
BACKCHANNEL_SPEED = 190          # backchannels are quick (each <= BACKCHANNEL_MAX_S of audio)
BACKCHANNEL_MAX_S = 0.65         # longest backchannel (trimmed audio)
BACKCHANNEL_CONTEXT_S = 1.5      # the speaker's speech region spans >= this before and after
UNSUCCESSFUL_RANGE_S = (1.4, 2.0)  # an unsuccessful interrupter's whole (overlapped) utterance
UNSUCCESSFUL_BEFORE_S = 1.0      # the speaker has talked >= this long before it starts
SPEAKER_CONTINUES_S = 2.0        # the speaker keeps talking >= this long after it ends

ACTIVITY_THRESHOLD = 0.005       # peak |x| per 10 ms frame that counts as speech
ACTIVITY_HOP_S = 0.010
MERGE_GAP_S = 0.3                # pauses shorter than this inside a person's speech are merged
MIN_REGION_S = 0.05
LEAD_IN_S = 0.8
TAIL_S = 1.0
CUT_FADE_S = 0.03                # fade applied where an utterance is cut off
NOISE_DBFS = -62.0               # faint noise floor in the mixture
MIX_PEAK = 0.9
EXPRESSION_RAMP_S = 0.25
ONE_SIDED_RAISE = 1.3           # corner raise of a one-sided smile (a two-corner smile is 1)
ONE_SIDED_OTHER_CORNER = 0.2     # how far the other corner is pulled down in a one-sided smile
CRF = 28

# ---------------------------------------------------------------------------------------------
# The script. Items are placed in order:
#   turn        starts `gap` s after the end of everything placed so far; becomes the floor;
#   backchannel by the listener, `at` = fraction into the current floor utterance (snapped
#               forward to the first place where the speaker's speech region spans
#               BACKCHANNEL_CONTEXT_S before and after it); the speaker talks through it;
#   interrupt   the listener starts at `at` (fraction, snapped likewise). successful: the floor
#               utterance is cut `overlap` s later and the interrupter becomes the floor.
#               unsuccessful: the interrupter says the whole (short, 1.4-2.0 s) utterance while
#               the speaker keeps talking, then drops out; the speaker's speech region covers
#               it and continues >= SPEAKER_CONTINUES_S after it.
# ---------------------------------------------------------------------------------------------
SCRIPT: list[dict] = [
    {"id": "u01", "kind": "turn", "speaker": "Alex", "gap": 0.0,
     "text": "So, I wanted to talk about the weekend, because I think we need a plan "
             "before Saturday gets away from us again."},
    {"id": "u02", "kind": "turn", "speaker": "Sam", "gap": 0.45,
     "text": "Okay. What kind of plan are you thinking about?"},
    {"id": "u03", "kind": "turn", "speaker": "Alex", "gap": 0.3,
     "text": "Well, the garage is still full of boxes, and I promised my brother we would "
             "help him move on Sunday morning."},
    {"id": "b01", "kind": "backchannel", "speaker": "Sam", "text": "yeah", "at": 0.42},
    {"id": "u04", "kind": "turn", "speaker": "Sam", "gap": 0.5,
     "text": "Right, but you also said we would finally have one quiet day together, "
             "just the two of us, without any chores at all."},
    {"id": "i01", "kind": "interrupt", "outcome": "unsuccessful", "speaker": "Alex",
     "text": "But that is not what I said at all", "at": 0.30},
    {"id": "u05", "kind": "turn", "speaker": "Alex", "gap": 0.2,
     "text": "I know, and I meant it. Maybe we do the garage on Saturday morning and keep "
             "the afternoon free for us."},
    {"id": "u06", "kind": "turn", "speaker": "Sam", "gap": 0.6,
     "text": "That sounds nice, but last time the garage took the whole day, and then you "
             "were too tired to do anything else."},
    {"id": "i02", "kind": "interrupt", "outcome": "successful", "speaker": "Alex",
     "text": "That is not fair, the garage was only half the day, the rest was the "
             "hardware store trip you asked for.", "at": 0.62, "overlap": 0.7},
    {"id": "u07", "kind": "turn", "speaker": "Sam", "gap": 0.25, "raised": True,
     "text": "Because you kept adding things to the list!"},
    {"id": "u08", "kind": "turn", "speaker": "Sam", "gap": 0.35, "raised": True,
     "text": "Every single time we plan something for us, it turns into another errand!"},
    {"id": "u09", "kind": "turn", "speaker": "Sam", "gap": 0.35, "raised": True,
     "text": "I am tired of being the one who always has to ask!"},
    {"id": "u10", "kind": "turn", "speaker": "Alex", "gap": 0.8,
     "text": "Okay. I hear you. I did not realise it felt like that, and I do not want "
             "every weekend to become a job."},
    {"id": "b02", "kind": "backchannel", "speaker": "Sam", "text": "right", "at": 0.55},
    {"id": "u11", "kind": "turn", "speaker": "Sam", "gap": 0.4,
     "text": "Thank you. I just want to know that our time matters as much as the garage "
             "does, and that you will protect it."},
    {"id": "i03", "kind": "interrupt", "outcome": "unsuccessful", "speaker": "Alex",
     "text": "Of course it does, I promise", "at": 0.30},
    {"id": "u12", "kind": "turn", "speaker": "Alex", "gap": 0.3,
     "text": "It does matter. Garage on Saturday until noon, lunch out, and then the "
             "phone goes in the drawer."},
    {"id": "i04", "kind": "interrupt", "outcome": "successful", "speaker": "Sam",
     "text": "And on Sunday we help your brother, but only in the morning, and we are "
             "home by three.", "at": 0.68, "overlap": 0.6},
    {"id": "b03", "kind": "backchannel", "speaker": "Alex", "text": "mm-hm", "at": 0.5},
    {"id": "u13", "kind": "turn", "speaker": "Alex", "gap": 0.4,
     "text": "Deal, home by three. I will call him tonight so he knows the plan before "
             "anything else gets added."},
    {"id": "u14", "kind": "turn", "speaker": "Sam", "gap": 0.35,
     "text": "Good. I like this plan. Let us put it on the calendar right now."},
]

# Expressions: anchored to an utterance's placed start (+offset), lasting `duration` s, or
# until the end of the utterance `until` (+end_offset). Fully on within [start, end].
EXPRESSIONS: list[dict] = [
    {"participant": "Sam", "label": "smile", "anchor": "u05", "offset": 2.0, "duration": 3.0},
    {"participant": "Alex", "label": "one_sided_smile", "anchor": "u06", "offset": 0.8,
     "duration": 2.8},
    {"participant": "Sam", "label": "frown", "anchor": "u07", "offset": 0.1, "until": "u09",
     "end_offset": -0.1},
    {"participant": "Alex", "label": "smile", "anchor": "u14", "offset": 0.6, "duration": 3.0},
    {"participant": "Sam", "label": "smile", "anchor": "u14", "offset": -2.4, "duration": 2.0},
]


# ----------------------------------------------------------------------------- audio
def _espeak_params(speaker: str, raised: bool, kind: str) -> dict:
    p = dict(VOICES[speaker])
    if raised:
        p["amplitude"] = RAISED["amplitude"]
        p["pitch"] = p["pitch"] + RAISED["pitch_delta"]
        p["speed"] = p["speed"] + RAISED["speed_delta"]
    if kind == "backchannel":
        p["speed"] = BACKCHANNEL_SPEED
    return p


def _render(text: str, params: dict, tmp: Path) -> np.ndarray:
    """espeak-ng -> 16 kHz mono float32, leading/trailing silence trimmed."""
    from scipy.signal import resample_poly

    wav_path = tmp / "utt.wav"
    cmd = [ESPEAK, "-v", params["voice"], "-p", str(params["pitch"]), "-s", str(params["speed"]),
           "-a", str(params["amplitude"]), "-w", str(wav_path), text]
    subprocess.run(cmd, check=True, capture_output=True)
    with wave.open(str(wav_path), "rb") as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        if w.getnchannels() > 1:
            x = x.reshape(-1, w.getnchannels()).mean(axis=1)
    ratio = Fraction(SR, sr).limit_denominator(1000)
    y = resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)
    idx = np.flatnonzero(np.abs(y) > ACTIVITY_THRESHOLD)
    if idx.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    return y[idx[0]: idx[-1] + 1].copy()


def _fade_cut(y: np.ndarray, n_keep: int) -> np.ndarray:
    y = y[:n_keep].copy()
    nf = min(int(CUT_FADE_S * SR), len(y))
    y[len(y) - nf:] *= np.linspace(1.0, 0.0, nf, dtype=np.float32)
    return y


def _frame_activity(y: np.ndarray) -> np.ndarray:
    hop = int(ACTIVITY_HOP_S * SR)
    n = int(math.ceil(len(y) / hop))
    pad = np.zeros(n * hop, dtype=np.float32)
    pad[: len(y)] = np.abs(y)
    return pad.reshape(n, hop).max(axis=1) > ACTIVITY_THRESHOLD


def _snap_active(y: np.ndarray, t_rel: float, length: float, min_frac: float = 0.92) -> float:
    """First time >= t_rel (s, relative to y) where y is audibly active over [t, t+length]."""
    act = _frame_activity(y)
    n = int(round(length / ACTIVITY_HOP_S))
    i = int(round(t_rel / ACTIVITY_HOP_S))
    while i + n <= len(act):
        if act[i] and act[i: i + n].mean() >= min_frac:
            return i * ACTIVITY_HOP_S
        i += 1
    raise RuntimeError("no active stretch found to place an overlap; adjust the script")


def _snap_in_region(y: np.ndarray, t_rel: float, length: float, before: float, after: float,
                    min_frac: float = 0.9) -> float:
    """First time t >= t_rel (s, relative to y) such that y is audibly active over most of
    [t, t+length] and one speech region of y (pauses < MERGE_GAP_S merged) covers
    [t - before, t + length + after]."""
    act = _frame_activity(y)
    regs = _regions(y)
    n = max(1, int(round(length / ACTIVITY_HOP_S)))
    i = int(round(t_rel / ACTIVITY_HOP_S))
    while i + n <= len(act):
        t = i * ACTIVITY_HOP_S
        if (act[i] and act[i: i + n].mean() >= min_frac
                and any(s <= t - before and t + length + after <= e for s, e in regs)):
            return t
        i += 1
    raise RuntimeError("no speech region long enough to place an overlap; adjust the script")


def _regions(track: np.ndarray) -> list[tuple[float, float]]:
    act = _frame_activity(track)
    regions: list[list[float]] = []
    i, n = 0, len(act)
    while i < n:
        if act[i]:
            j = i
            while j < n and act[j]:
                j += 1
            s, e = i * ACTIVITY_HOP_S, min(j * ACTIVITY_HOP_S, len(track) / SR)
            if regions and s - regions[-1][1] < MERGE_GAP_S:
                regions[-1][1] = e
            else:
                regions.append([s, e])
            i = j
        else:
            i += 1
    # refine the frame-quantised boundaries to the exact first/last audible sample
    hop = int(ACTIVITY_HOP_S * SR)
    out = []
    for s, e in regions:
        if e - s < MIN_REGION_S:
            continue
        i0, i1 = int(round(s * SR)), int(round(e * SR))
        first = np.flatnonzero(np.abs(track[i0: i0 + hop]) > ACTIVITY_THRESHOLD)
        last = np.flatnonzero(np.abs(track[max(i0, i1 - hop): i1]) > ACTIVITY_THRESHOLD)
        s2 = (i0 + first[0]) / SR if first.size else s
        e2 = (max(i0, i1 - hop) + last[-1] + 1) / SR if last.size else e
        out.append((s2, e2))
    return out


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]):
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _place_script(tmp: Path) -> tuple[list[dict], list[dict]]:
    """Render and place every script item. Returns (utterances, events)."""
    utts: list[dict] = []
    events: list[dict] = []
    floor: dict | None = None

    def end_all() -> float:
        return max((u["end"] for u in utts), default=0.0)

    for item in SCRIPT:
        kind, spk = item["kind"], item["speaker"]
        params = _espeak_params(spk, item.get("raised", False), kind)
        y = _render(item["text"], params, tmp)
        u = {"id": item["id"], "kind": kind, "speaker": spk, "text": item["text"],
             "espeak": params, "raised": bool(item.get("raised", False)),
             "rendered_duration": round(len(y) / SR, 3)}
        if kind == "turn":
            start = LEAD_IN_S if not utts else end_all() + item["gap"]
            u.update(start=start, audio=y, gap_before=item["gap"] if utts else None)
            floor = u
        else:
            assert floor is not None and floor["speaker"] != spk, item["id"]
            at_rel = item["at"] * len(floor["audio"]) / SR
            if kind == "backchannel":
                t_rel = _snap_in_region(floor["audio"], at_rel, len(y) / SR,
                                        BACKCHANNEL_CONTEXT_S, BACKCHANNEL_CONTEXT_S)
            elif item["outcome"] == "unsuccessful":
                t_rel = _snap_in_region(floor["audio"], at_rel, len(y) / SR,
                                        UNSUCCESSFUL_BEFORE_S, SPEAKER_CONTINUES_S)
            else:
                t_rel = _snap_active(floor["audio"], at_rel, item["overlap"])
            start = floor["start"] + t_rel
            u.update(start=start, target=floor["speaker"], target_utterance=floor["id"])
            if kind == "backchannel":
                u["audio"] = y
                events.append({"kind": "backchannel", "start_s": start,
                               "end_s": start + len(y) / SR, "participant": spk,
                               "target": floor["speaker"], "label": ""})
            elif item["outcome"] == "successful":
                cut_rel = t_rel + item["overlap"]
                floor["audio"] = _fade_cut(floor["audio"], int(round(cut_rel * SR)))
                floor["end"] = floor["start"] + len(floor["audio"]) / SR
                floor["cut_off_by"] = item["id"]
                u["audio"] = y
                u["outcome"] = "successful"
                events.append({"kind": "interruption", "start_s": start,
                               "end_s": floor["end"], "participant": spk,
                               "target": floor["speaker"], "label": "successful"})
                floor = u
            else:
                u["audio"] = y           # the whole short utterance, under the speaker
                u["outcome"] = "unsuccessful"
                events.append({"kind": "interruption", "start_s": start,
                               "end_s": start + len(u["audio"]) / SR, "participant": spk,
                               "target": floor["speaker"], "label": "unsuccessful"})
        u["end"] = u["start"] + len(u["audio"]) / SR
        utts.append(u)
        # re-sync the end of the utterance that may have been cut above
        for v in utts:
            v["end"] = v["start"] + len(v["audio"]) / SR
    raised = [u for u in utts if u["raised"]]
    if raised:
        events.append({"kind": "raised_voice", "start_s": raised[0]["start"],
                       "end_s": raised[-1]["end"], "participant": raised[0]["speaker"],
                       "target": "", "label": "raised"})
    return utts, events


def _expression_events(utts: list[dict]) -> list[dict]:
    by_id = {u["id"]: u for u in utts}
    out = []
    for ex in EXPRESSIONS:
        start = by_id[ex["anchor"]]["start"] + ex["offset"]
        if "until" in ex:
            end = by_id[ex["until"]]["end"] + ex.get("end_offset", 0.0)
        else:
            end = start + ex["duration"]
        out.append({"kind": "expression", "start_s": start, "end_s": end,
                    "participant": ex["participant"], "target": "", "label": ex["label"]})
    return out


# ----------------------------------------------------------------------------- drawing
S = 2                                # supersampling factor for anti-aliased drawing
HALF_W = WIDTH // 2                  # each person gets one half of the frame

STYLES = {
    "Alex": {"skin": (214, 168, 132), "hair": (58, 40, 28), "shirt": (52, 86, 140),
             "iris": (86, 60, 40), "lips": (168, 96, 90), "long_hair": False,
             "face_a": 70, "face_b_up": 86, "face_b_low": 96},
    "Sam": {"skin": (236, 196, 170), "hair": (120, 58, 32), "shirt": (140, 58, 72),
            "iris": (60, 100, 70), "lips": (190, 88, 98), "long_hair": True,
            "face_a": 66, "face_b_up": 84, "face_b_low": 92},
}
FACE_CY = 160                        # face centre y in the frame (1x pixels)
BG_TOP, BG_BOTTOM = np.array([222, 226, 220]), np.array([188, 194, 190])


_BG_CACHE: list = []


def _background() -> np.ndarray:
    if not _BG_CACHE:
        g = np.linspace(0.0, 1.0, HEIGHT * S)[:, None, None]
        bg = (BG_TOP * (1 - g) + BG_BOTTOM * g).astype(np.float32)
        _BG_CACHE.append(np.broadcast_to(bg, (HEIGHT * S, HALF_W * S, 3)).copy())
    return _BG_CACHE[0].copy()


def _pts(xs, ys) -> np.ndarray:
    return np.round(np.stack([xs, ys], axis=1) * S).astype(np.int32)


def _ell(cx, cy, a, b, t0=0.0, t1=2 * math.pi, n=90):
    t = np.linspace(t0, t1, n)
    return cx + a * np.cos(t), cy + b * np.sin(t)


def _bbox(pts, shape, pad=2):
    x0, y0 = np.maximum(pts.min(axis=0) - pad, 0)
    x1 = min(int(pts[:, 0].max()) + pad + 1, shape[1])
    y1 = min(int(pts[:, 1].max()) + pad + 1, shape[0])
    return int(x0), int(y0), x1, y1


def _poly_mask(pts, shape):
    """(mask in [0,1] of the polygon's bounding box, (x0, y0, x1, y1))."""
    import cv2
    x0, y0, x1, y1 = _bbox(pts, shape)
    mask = np.zeros((max(1, y1 - y0), max(1, x1 - x0)), np.uint8)
    cv2.fillPoly(mask, [pts - np.array([x0, y0], np.int32)], 255, cv2.LINE_AA)
    return (mask.astype(np.float32) / 255.0)[..., None], (x0, y0, x1, y1)


def _blend_poly(img, pts, color, alpha):
    m, (x0, y0, x1, y1) = _poly_mask(pts, img.shape)
    m = m * alpha
    roi = img[y0:y1, x0:x1]
    roi *= 1 - m
    roi += m * np.asarray(color, np.float32)


def _draw_person(name: str, st: dict) -> np.ndarray:
    """Draw one person into a (HEIGHT, HALF_W) RGB canvas. `st` holds the frame's state:
    jaw (0..1.2), smile_il / smile_ir (image-left / image-right mouth corner raise, 0..1),
    frown (0..1), blink (0..1), dx, dy (head sway, px)."""
    import cv2
    sty = STYLES[name]
    img = _background()
    cx, cy = HALF_W / 2 + st["dx"], FACE_CY + st["dy"]
    a, bu, bl = sty["face_a"], sty["face_b_up"], sty["face_b_low"]
    skin = np.array(sty["skin"], np.float32)
    hair = np.array(sty["hair"], np.float32)
    jaw = st["jaw"]
    smile = 0.5 * (st["smile_il"] + st["smile_ir"])
    aa = cv2.LINE_AA

    def fill(xs, ys, color):
        cv2.fillPoly(img, [_pts(xs, ys)], tuple(float(c) for c in color), aa)

    # long hair behind the head
    if sty["long_hair"]:
        xs, ys = _ell(cx, cy + 10, a + 24, bu + 30, math.pi, 2 * math.pi)
        xs = np.concatenate([[cx - a - 26], xs, [cx + a + 26, cx + a + 30, cx - a - 30]])
        ys = np.concatenate([[cy + 20], ys, [cy + 20, cy + 125, cy + 125]])
        fill(xs, ys, hair * 0.85)
    # shoulders and shirt
    xs, ys = _ell(HALF_W / 2, cy + 200, 135, 95, math.pi, 2 * math.pi)
    fill(np.concatenate([xs, [HALF_W / 2 + 135, HALF_W / 2 - 135]]),
         np.concatenate([ys, [HEIGHT + 5, HEIGHT + 5]]), sty["shirt"])
    # neck (shadowed under the jaw)
    fill(np.array([cx - 30, cx + 30, cx + 34, cx - 34]),
         np.array([cy + 50, cy + 50, cy + 122, cy + 122]), skin * 0.86)
    xs, ys = _ell(cx, cy + 118, 34, 16, 0, math.pi)
    fill(xs, ys, skin * 0.86)
    _blend_poly(img, _pts(*_ell(cx, cy + bl * 0.98 + 6, 36, 10)), skin * 0.55, 0.35)
    # ears
    for side in (-1, 1):
        fill(*_ell(cx + side * (a - 2), cy + 4, 12, 21), skin * 0.92)
        fill(*_ell(cx + side * (a + 1), cy + 5, 5, 12), skin * 0.75)

    # face: upper half ellipse + a jaw that drops with the mouth
    t_up = np.linspace(math.pi, 2 * math.pi, 60)
    t_lo = np.linspace(0, math.pi, 60)
    chin = bl * (1 + 0.07 * jaw)
    xs = np.concatenate([cx + a * np.cos(t_up), cx + a * np.cos(t_lo) * (0.86 + 0.14 * np.abs(np.cos(t_lo)))])
    ys = np.concatenate([cy + bu * np.sin(t_up), cy + chin * np.sin(t_lo) ** 1.15])
    m, (x0, y0, x1, y1) = _poly_mask(_pts(xs, ys), img.shape)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) / S
    r2 = ((xx - (cx - 14)) / (a * 1.15)) ** 2 + ((yy - (cy - 20)) / (bl * 1.2)) ** 2
    shade = np.clip(1.06 - 0.32 * r2, 0.62, 1.08)[..., None]
    roi = img[y0:y1, x0:x1]
    roi[:] = roi * (1 - m) + m * np.clip(skin * shade, 0, 255)

    # cheeks (rise with a smile), nose shading, smile folds
    for side, s_corner in ((-1, st["smile_il"]), (1, st["smile_ir"])):
        _blend_poly(img, _pts(*_ell(cx + side * 38, cy + 24 - 5 * s_corner, 17, 11)),
                    (220, 120, 120), 0.18 + 0.12 * s_corner)
        if s_corner > 0.05:
            t = np.linspace(0, 1, 20)
            fx = cx + side * (17 + 14 * t + 6 * t ** 2)
            fy = cy + 20 + 30 * t - 6 * s_corner * t
            cv2.polylines(img, [_pts(fx, fy)], False,
                          tuple(float(c) for c in skin * (1 - 0.22 * s_corner)), 2 * S, aa)
    _blend_poly(img, _pts(np.array([cx + 3, cx + 9, cx + 12, cx + 3]),
                          np.array([cy - 14, cy - 14, cy + 22, cy + 22])), skin * 0.7, 0.35)

    # hair on top
    if sty["long_hair"]:
        xs, ys = _ell(cx, cy - 4, a + 8, bu + 10, math.pi * 0.95, math.pi * 2.05)
        fx = np.linspace(cx + a + 6, cx - a - 6, 40)
        fy = cy - 52 + 10 * np.abs(np.linspace(-1, 1, 40)) ** 1.5 + 4 * np.sin(np.linspace(0, 9, 40))
        fill(np.concatenate([xs, fx]), np.concatenate([ys, fy]), hair)
        for side in (-1, 1):   # side locks framing the face
            fill(np.array([cx + side * (a + 8), cx + side * (a - 8), cx + side * (a - 2), cx + side * (a + 14)]),
                 np.array([cy - 40, cy - 40, cy + 40, cy + 60]), hair)
    else:
        xs, ys = _ell(cx, cy - 4, a + 4, bu + 8, math.pi * 0.96, math.pi * 2.04)
        u = np.linspace(-1, 1, 40)
        fx = cx - u * (a - 8)                       # hairline, right to left
        fy = cy - 52 + 10 * np.abs(u) ** 2
        fx = np.concatenate([[cx + a + 2, cx + a - 5], fx, [cx - a + 5, cx - a - 2]])
        fy = np.concatenate([[cy - 6, cy - 6], fy, [cy - 6, cy - 6]])   # short sideburns
        fill(np.concatenate([xs, fx]), np.concatenate([ys, fy]), hair)

    # eyebrows
    for side in (-1, 1):
        t = np.linspace(0, 1, 16)                  # 0 = inner end, 1 = outer end
        bx = cx + side * (9 + 31 * t)
        by = cy - 31 - 6 * np.sin(t * math.pi * 0.85) + st["frown"] * (12 * (1 - t) ** 1.5 + 6)
        bx = bx - side * st["frown"] * 5 * (1 - t)
        thick = (4.5 - 1.5 * t)
        upper, lower = by - thick / 2, by + thick / 2
        fill(np.concatenate([bx, bx[::-1]]), np.concatenate([upper, lower[::-1]]), hair * 0.9)

    if st["frown"] > 0.05:                      # vertical lines between the brows
        for side in (-1, 1):
            cv2.polylines(img, [_pts(np.array([cx + side * 4, cx + side * 3]),
                                     np.array([cy - 30, cy - 20]))], False,
                          tuple(float(c) for c in skin * (1 - 0.25 * st["frown"])), S, aa)

    # eyes
    for side in (-1, 1):
        ex, ey = cx + side * 25, cy - 12
        openness = max(0.0, 1.0 - st["blink"]) * (1 - 0.25 * smile) * (1 - 0.2 * st["frown"])
        if openness > 0.08:
            t = np.linspace(0, math.pi, 30)
            upx = ex - 14 * np.cos(t)
            upy = ey - 7.5 * openness * np.sin(t)
            lox = ex + 14 * np.cos(t)
            loy = ey + 4.5 * openness * np.sin(t)
            eye_pts = _pts(np.concatenate([upx, lox]), np.concatenate([upy, loy]))
            em, (x0, y0, x1, y1) = _poly_mask(eye_pts, img.shape)
            roi = img[y0:y1, x0:x1]
            layer = roi.copy()
            off = np.array([x0, y0])
            cv2.fillPoly(layer, [eye_pts - off.astype(np.int32)], (242, 238, 232), aa)
            ix, iy = ex - side * 1.0, ey - 1

            def ctr(px, py):
                return tuple(int(v) for v in np.round(np.array([px, py]) * S) - off)
            cv2.circle(layer, ctr(ix, iy), int(6.2 * S), tuple(float(c) for c in sty["iris"]),
                       -1, aa)
            cv2.circle(layer, ctr(ix, iy), int(2.8 * S), (15, 12, 12), -1, aa)
            cv2.circle(layer, ctr(ix + 1.8, iy - 1.8), int(1.2 * S), (250, 250, 250), -1, aa)
            roi[:] = roi * (1 - em) + layer * em
            cv2.polylines(img, [_pts(upx, upy)], False, (40, 28, 24), int(1.6 * S), aa)
            cv2.polylines(img, [_pts(lox, loy)], False, tuple(float(c) for c in skin * 0.7), S, aa)
            # lid crease
            cv2.polylines(img, [_pts(upx, upy - 4)], False, tuple(float(c) for c in skin * 0.8), S, aa)
        else:
            t = np.linspace(0, math.pi, 30)
            cv2.polylines(img, [_pts(ex - 14 * np.cos(t), ey + 1.5 * np.sin(t))], False,
                          (40, 28, 24), int(1.8 * S), aa)

    # nose
    t = np.linspace(0, 1, 12)
    cv2.polylines(img, [_pts(cx + 4 + 3 * t, cy - 10 + 28 * t)], False,
                  tuple(float(c) for c in skin * 0.78), int(1.5 * S), aa)
    fill(*_ell(cx, cy + 21, 9, 6), skin * 0.97)
    for side in (-1, 1):
        fill(*_ell(cx + side * 6, cy + 24, 3.2, 1.8), (90, 50, 45))
        xs, ys = _ell(cx + side * 10, cy + 20, 5, 6, math.pi * (0.5 - 0.5 * side), math.pi * (1.5 - 0.5 * side), 20)
        cv2.polylines(img, [_pts(xs, ys)], False, tuple(float(c) for c in skin * 0.72), int(1.4 * S), aa)

    _draw_mouth(img, cx, cy + 46, sty, jaw, st["smile_il"], st["smile_ir"], skin)
    out = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (HALF_W, HEIGHT),
                     interpolation=cv2.INTER_AREA)
    return out


def _draw_mouth(img, mx, my, sty, jaw, s_l, s_r, skin):
    import cv2
    aa = cv2.LINE_AA
    n = 41
    t = np.linspace(-1, 1, n)
    side = np.where(t < 0, s_l, s_r)
    o = 26.0 * min(jaw, 1.25)
    w = 25.0 - 0.12 * o                          # an open jaw narrows the mouth a little
    x = mx + t * (w + 4 * side * np.abs(t))
    base = (my - 11.0 * side * np.abs(t) ** 2.2 + 1.5 * (1 - side) * np.abs(t) ** 2
            + 0.15 * o * np.abs(t) ** 2)         # corners follow the jaw down a little
    env = (1 - t ** 2) ** 0.65
    in_up = base - o * 0.28 * env
    in_lo = base + o * 0.72 * env
    out_up = in_up - (5.5 * (1 - t ** 2) ** 0.45) + 2.2 * np.exp(-(t / 0.13) ** 2)
    out_lo = in_lo + 8.5 * (1 - t ** 2) ** 0.55
    lips = np.array(sty["lips"], np.float32)

    def poly(xa, ya, xb, yb):
        return _pts(np.concatenate([xa, xb[::-1]]), np.concatenate([ya, yb[::-1]]))

    # upper and lower lip
    cv2.fillPoly(img, [poly(x, out_up, x, in_up)], tuple(float(c) for c in lips * 0.9), aa)
    cv2.fillPoly(img, [poly(x, in_lo, x, out_lo)], tuple(float(c) for c in lips), aa)
    # lower-lip highlight and shadow under it
    k = np.abs(t) < 0.5
    cv2.polylines(img, [_pts(x[k], (in_lo + 0.45 * (out_lo - in_lo))[k])], False,
                  tuple(float(c) for c in np.minimum(lips * 1.18, 255)), int(1.5 * S), aa)
    _blend_poly(img, _pts(*_ell(mx, my + 12 + o * 0.72, 14, 4)), skin * 0.6, 0.35)
    if o > 0.8:
        cv2.fillPoly(img, [poly(x, in_up, x, in_lo)], (58, 18, 24), aa)
        k = np.abs(t) < 0.78
        teeth_lo = np.minimum(in_up + min(6.5, 0.45 * o + 1), in_lo)
        cv2.fillPoly(img, [poly(x[k], in_up[k], x[k], teeth_lo[k])], (236, 232, 222), aa)
        k = np.abs(t) < 0.6
        tongue_up = np.maximum(in_lo - 0.3 * o * env, in_up)
        if o > 5:
            cv2.fillPoly(img, [poly(x[k], tongue_up[k], x[k], in_lo[k])], (168, 70, 80), aa)
    # seam / inner lip line
    cv2.polylines(img, [_pts(x, in_up)], False, (70, 30, 32), int(1.3 * S), aa)
    if o > 0.8:
        cv2.polylines(img, [_pts(x, in_lo)], False, (70, 30, 32), S, aa)
    # corner dimples
    for i, s_c in ((0, s_l), (n - 1, s_r)):
        cv2.circle(img, (int(round(x[i] * S)), int(round(base[i] * S))), int(1.6 * S),
                   tuple(float(c) for c in skin * (0.7 - 0.1 * s_c)), -1, aa)


# ----------------------------------------------------------------------------- timelines
def _mouth_open(track: np.ndarray, n_frames: int, ref_track_normal: np.ndarray) -> np.ndarray:
    """Mouth opening per video frame from the 40 ms loudness of the frame's own window."""
    spf = SR // FPS
    pad = np.zeros(n_frames * spf, np.float32)
    m = min(len(track), len(pad))
    pad[:m] = track[:m]
    frames = pad.reshape(n_frames, spf)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    peak = np.abs(frames).max(axis=1)
    db = 20 * np.log10(rms + 1e-9)
    # reference level: this person's loud frames in their normal voice
    ref_frames = ref_track_normal[: (len(ref_track_normal) // spf) * spf].reshape(-1, spf)
    ref_rms = np.sqrt((ref_frames.astype(np.float64) ** 2).mean(axis=1))
    ref_db = 20 * np.log10(np.percentile(ref_rms[ref_rms > 0.01], 90) + 1e-9)
    floor_db = ref_db - 28.0
    raw = np.clip((db - floor_db) / (ref_db - floor_db), 0.0, 1.25)
    raw[peak <= ACTIVITY_THRESHOLD] = 0.0
    sm = raw.copy()
    sm[1:-1] = 0.25 * raw[:-2] + 0.5 * raw[1:-1] + 0.25 * raw[2:]
    sm[raw == 0] *= 0.5            # close promptly when the person is silent
    return sm ** 0.8


def _ramp_level(t: np.ndarray, start: float, end: float) -> np.ndarray:
    r = EXPRESSION_RAMP_S
    up = np.clip((t - (start - r)) / r, 0, 1)
    down = np.clip(((end + r) - t) / r, 0, 1)
    return np.minimum(up, down)


def _face_states(n_frames: int, mouth: dict, expr_events: list[dict], rng) -> dict:
    t = np.arange(n_frames) / FPS
    states = {}
    for k, name in enumerate(PEOPLE):
        smile_il = np.zeros(n_frames)
        smile_ir = np.zeros(n_frames)
        frown = np.zeros(n_frames)
        for ev in expr_events:
            if ev["participant"] != name:
                continue
            lv = _ramp_level(t, ev["start_s"], ev["end_s"])
            if ev["label"] == "smile":
                smile_il = np.maximum(smile_il, lv)
                smile_ir = np.maximum(smile_ir, lv)
            elif ev["label"] == "one_sided_smile":
                # image-left corner = the subject's RIGHT corner goes up, the other corner
                # is pulled slightly down and in (a smirk), which MediaPipe reads clearly
                smile_il = np.maximum(smile_il, ONE_SIDED_RAISE * lv)
                smile_ir = np.minimum(smile_ir, -ONE_SIDED_OTHER_CORNER * lv)
            elif ev["label"] == "frown":
                frown = np.maximum(frown, lv)
        blink = np.zeros(n_frames)
        tb = rng.uniform(1.0, 3.0)
        while tb < t[-1]:
            i = int(tb * FPS)
            for j, v in enumerate((0.6, 1.0, 0.6)):
                if i + j < n_frames:
                    blink[i + j] = v
            tb += rng.uniform(2.5, 5.5)
        ph = rng.uniform(0, 2 * math.pi, 2)
        dx = 2.0 * np.sin(2 * math.pi * t / 7.3 + ph[0])
        dy = 1.2 * np.sin(2 * math.pi * t / 4.9 + ph[1]) + 0.8 * mouth[name]
        states[name] = {"jaw": mouth[name], "smile_il": smile_il, "smile_ir": smile_ir,
                        "frown": frown, "blink": blink, "dx": dx, "dy": dy}
    return states


# ----------------------------------------------------------------------------- writing
def _write_video(path: Path, mix: np.ndarray, states: dict, n_frames: int) -> None:
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.options = {"crf": str(CRF), "preset": "medium"}
        a_s = out.add_stream("aac", rate=SR, layout="mono")
        a_s.bit_rate = 48_000
        spf = SR // FPS
        chunk = 1024
        a_pos = 0
        for i in range(n_frames):
            halves = []
            for name in PEOPLE:
                st = {k: float(v[i]) for k, v in states[name].items()}
                halves.append(_draw_person(name, st))
            rgb = np.ascontiguousarray(np.hstack(halves))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for pkt in vs.encode(frame):
                out.mux(pkt)
            # audio up to the end of this video frame
            target = min(len(mix), (i + 1) * spf)
            while a_pos + chunk <= target or (i == n_frames - 1 and a_pos < len(mix)):
                seg = mix[a_pos: a_pos + chunk]
                af = av.AudioFrame.from_ndarray(seg[None, :].astype(np.float32), format="fltp",
                                                layout="mono")
                af.sample_rate = SR
                af.pts = a_pos
                for pkt in a_s.encode(af):
                    out.mux(pkt)
                a_pos += len(seg)
        for pkt in vs.encode():
            out.mux(pkt)
        for pkt in a_s.encode():
            out.mux(pkt)


def _r(x: float) -> float:
    return round(float(x) + 0.0, 3)


def generate(out_dir: Path, seed: int = 7, *, video: bool = True) -> dict:
    """Generate the sample session into `out_dir` (see the module docstring). Returns a summary
    dict: duration_s, speech_s per person, overlap_s, paths."""
    if shutil.which(ESPEAK) is None:
        raise RuntimeError("espeak-ng not found: install it (apt-get install -y espeak-ng)")
    out_dir = Path(out_dir)
    truth = out_dir / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    with tempfile.TemporaryDirectory() as tmp:
        utts, events = _place_script(Path(tmp))
    duration = max(u["end"] for u in utts) + TAIL_S
    n = int(round(duration * SR))
    n_frames = int(math.ceil(duration * FPS))
    n = n_frames * (SR // FPS)
    duration = n / SR
    tracks = {p: np.zeros(n, np.float32) for p in PEOPLE}
    normal = {p: np.zeros(n, np.float32) for p in PEOPLE}
    for u in utts:
        i0 = int(round(u["start"] * SR))
        tracks[u["speaker"]][i0: i0 + len(u["audio"])] += u["audio"]
        if not u["raised"]:
            normal[u["speaker"]][i0: i0 + len(u["audio"])] += u["audio"]
        u["start"] = i0 / SR
        u["end"] = (i0 + len(u["audio"])) / SR

    regions = {p: _regions(tracks[p]) for p in PEOPLE}
    mix = tracks["Alex"] + tracks["Sam"]
    gain = MIX_PEAK / float(np.abs(mix).max())
    noise = rng.standard_normal(n).astype(np.float32) * (10 ** (NOISE_DBFS / 20))
    mix = (mix * gain + noise).astype(np.float32)

    expr = _expression_events(utts)
    all_events = sorted(events + expr, key=lambda e: (e["start_s"], e["kind"]))

    # ground truth files
    with open(truth / "speech.rttm", "w") as f:
        rows = sorted((s, e, p) for p in PEOPLE for s, e in regions[p])
        for s, e, p in rows:
            f.write(f"SPEAKER session 1 {s:.3f} {e - s:.3f} <NA> <NA> {p} <NA> <NA>\n")
    with open(truth / "events.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "start_s", "end_s", "participant", "target", "label"])
        for e in all_events:
            w.writerow([e["kind"], f"{e['start_s']:.3f}", f"{e['end_s']:.3f}", e["participant"],
                        e["target"], e["label"]])

    speech = {p: sum(e - s for s, e in regions[p]) for p in PEOPLE}
    overlaps = _intersect(regions["Alex"], regions["Sam"])
    overlap_s = sum(e - s for s, e in overlaps)
    summary = {
        "duration_s": _r(duration),
        "speech_s": {p: _r(v) for p, v in speech.items()},
        "speech_share": {p: _r(v / sum(speech.values())) for p, v in speech.items()},
        "speech_fraction_of_session": {p: _r(v / duration) for p, v in speech.items()},
        "overlap_s": _r(overlap_s),
        "overlaps": [[_r(s), _r(e)] for s, e in overlaps],
        "n_events": {k: sum(1 for e in all_events if e["kind"] == k)
                     for k in sorted({e["kind"] for e in all_events})},
    }
    _validate(utts, events, regions, overlaps, duration)

    script_doc = {
        "session": "session",
        "participants": [{"name": p, "seat": SEATS[p], "voice": VOICES[p],
                          "style": {k: v for k, v in STYLES[p].items()}} for p in PEOPLE],
        "parameters": {
            "seed": seed, "sample_rate": SR, "fps": FPS, "width": WIDTH, "height": HEIGHT,
            "raised_voice": RAISED, "backchannel_speed": BACKCHANNEL_SPEED,
            "backchannel_max_s": BACKCHANNEL_MAX_S,
            "backchannel_context_s": BACKCHANNEL_CONTEXT_S,
            "unsuccessful_range_s": list(UNSUCCESSFUL_RANGE_S),
            "unsuccessful_before_s": UNSUCCESSFUL_BEFORE_S,
            "speaker_continues_s": SPEAKER_CONTINUES_S,
            "activity_threshold": ACTIVITY_THRESHOLD, "activity_hop_s": ACTIVITY_HOP_S,
            "merge_gap_s": MERGE_GAP_S, "min_region_s": MIN_REGION_S, "lead_in_s": LEAD_IN_S,
            "tail_s": TAIL_S, "cut_fade_s": CUT_FADE_S, "noise_dbfs": NOISE_DBFS,
            "mix_gain": round(gain, 6), "expression_ramp_s": EXPRESSION_RAMP_S, "crf": CRF,
            "espeak_version": subprocess.run([ESPEAK, "--version"], capture_output=True,
                                             text=True).stdout.strip(),
            "one_sided_smile_corner": "image-left corner of Alex's mouth = subject's right "
                                      "(MediaPipe mouthSmileRight)",
        },
        "utterances": [
            {k: (_r(v) if k in ("start", "end") else v) for k, v in u.items() if k != "audio"}
            for u in utts
        ],
        "expressions": [{**e, "start_s": _r(e["start_s"]), "end_s": _r(e["end_s"])}
                        for e in expr],
        "script": SCRIPT,
        "expression_script": EXPRESSIONS,
        "summary": summary,
    }
    (truth / "script.json").write_text(json.dumps(script_doc, indent=2) + "\n")
    stale_wav = out_dir / "session.wav"          # no longer an output (the mp4 carries the audio)
    if stale_wav.exists():
        stale_wav.unlink()

    if video:
        mouth = {p: _mouth_open(tracks[p], n_frames, normal[p]) for p in PEOPLE}
        states = _face_states(n_frames, mouth, expr, rng)
        _write_video(out_dir / "session.mp4", mix, states, n_frames)
    summary["paths"] = {"video": str(out_dir / "session.mp4"), "truth": str(truth)}
    return summary


def _validate(utts, events, regions, overlaps, duration) -> None:
    """Check the script's promises against the placed audio; raise if one is broken."""
    problems = []
    if not 60.0 <= duration <= 90.0:
        problems.append(f"duration {duration:.1f} s outside 60-90 s")
    by_id = {u["id"]: u for u in utts}
    for e in events:
        if e["kind"] not in ("interruption", "backchannel"):
            continue
        ov = sum(max(0.0, min(oe, e["end_s"] + 0.05) - max(os_, e["start_s"] - 0.05))
                 for os_, oe in overlaps)
        dur = e["end_s"] - e["start_s"]
        tgt_regions = regions[e["target"]]
        if e["kind"] == "interruption" and e["label"] == "successful" and not 0.4 <= ov <= 1.0:
            problems.append(f"interruption at {e['start_s']:.2f}: overlap {ov:.2f} s")
        if e["kind"] == "interruption" and e["label"] == "unsuccessful":
            lo, hi = UNSUCCESSFUL_RANGE_S
            if not (lo <= dur <= hi and dur - 0.05 <= ov <= dur + 0.1):
                problems.append(f"unsuccessful interruption at {e['start_s']:.2f}: lasts "
                                f"{dur:.2f} s, overlap {ov:.2f} s")
            if not any(s <= e["start_s"] and e["end_s"] + SPEAKER_CONTINUES_S <= t
                       for s, t in tgt_regions):
                problems.append(f"unsuccessful interruption at {e['start_s']:.2f}: the "
                                "speaker does not talk through it and on")
        if e["kind"] == "backchannel":
            if not 0.2 <= dur <= BACKCHANNEL_MAX_S:
                problems.append(f"backchannel at {e['start_s']:.2f} lasts {dur:.2f}")
            if not any(s <= e["start_s"] - BACKCHANNEL_CONTEXT_S
                       and e["end_s"] + BACKCHANNEL_CONTEXT_S <= t for s, t in tgt_regions):
                problems.append(f"backchannel at {e['start_s']:.2f}: not inside "
                                f"{BACKCHANNEL_CONTEXT_S} s of the speaker's speech each side")
    inter = [e for e in events if e["kind"] == "interruption"]
    bcs = [e for e in events if e["kind"] == "backchannel"]
    for lab in ("successful", "unsuccessful"):
        if sum(e["label"] == lab for e in inter) < 2:
            problems.append(f"fewer than 2 {lab} interruptions")
    for p in PEOPLE:
        if not any(e["participant"] == p for e in inter):
            problems.append(f"no interruption by {p}")
        if not any(e["participant"] == p for e in bcs):
            problems.append(f"no backchannel by {p}")
    for u in utts:
        if u["kind"] != "interrupt":
            continue
        tgt = by_id[u["target_utterance"]]
        if u["outcome"] == "successful":
            if u["end"] - tgt["end"] < 2.0:
                problems.append(f"{u['id']}: interrupter holds the floor only {u['end'] - tgt['end']:.2f} s")
        else:
            if u["start"] < tgt["start"] or tgt["end"] - u["end"] < SPEAKER_CONTINUES_S:
                problems.append(f"{u['id']}: unsuccessful interruption shape broken")
    total = sum(sum(e - s for s, e in r) for r in regions.values())
    for p, r in regions.items():
        share = sum(e - s for s, e in r) / total
        if not 0.3 <= share <= 0.6:
            problems.append(f"{p} speech share {share:.2f}")
    gaps = [u["gap_before"] for u in utts if u["kind"] == "turn" and u["gap_before"] is not None]
    if gaps and not all(0.1 <= g <= 0.8 for g in gaps):
        problems.append("turn gaps outside 0.1-0.8 s")
    if problems:
        raise RuntimeError("sample session breaks its own spec: " + "; ".join(problems))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-video", action="store_true", help="audio and truth only (fast)")
    args = ap.parse_args(argv)
    summary = generate(args.out, args.seed, video=not args.no_video)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
