"""Expression signals and events on real faces (../shared/data/faces, ../shared/data/talking):
a smile is found, a crying-then-smiling face scores its smile higher at the end with sadness
before it, no face gives nothing, and the mouth moves while the audio has speech."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.stages.expressions import expression_events, expression_signals
from analysis.stages.faces import face_frames
from capture.media import decode_audio
from conftest import shared

GRID = ("id2_vcd_swwp2s", "bbaf2n", "lwbsza")
GRID_SECONDS_PER_UNIT = 1 / 25000        # .align files count time in 1/25000 s


@pytest.fixture(scope="module")
def frames():
    """Frame tables of the real clips, made once for this module (each clip is seconds long)."""
    clips = {name: shared(f"data/faces/{name}.mp4") for name in ("single_face", "WolfgangLanger_Pexels", "no_face")}
    clips.update({name: shared(f"data/talking/{name}.mpg") for name in GRID})
    return {name: face_frames(str(path), ["p1"]) for name, path in clips.items()}


def test_smile_found_on_a_smiling_man(frames):
    events = expression_events(frames["single_face"])
    smiles = events[events.label == "smile"]
    assert len(smiles) == 1, events
    # he smiles from about 0.7 s to the end (2.4 s): the event covers most of it
    assert smiles.start_s.iloc[0] <= 1.0 and smiles.end_s.iloc[0] >= 2.2, smiles


def test_crying_then_smiling(frames):
    f = frames["WolfgangLanger_Pexels"]
    signals = expression_signals(f)
    end = float(signals.t_s.max())
    first, last = signals[signals.t_s < 3].smile.mean(), signals[signals.t_s > end - 3].smile.mean()
    assert last >= 1.5 * first and last - first >= 0.3, (first, last)     # measured 0.42 -> 0.90
    events = expression_events(f)
    smiles = events[(events.label == "smile") & (events.end_s > end - 6)]
    assert len(smiles), events
    sadness = events[events.label == "sadness_like"]
    assert len(sadness) and sadness.start_s.min() < smiles.start_s.min(), events


def test_no_face_no_events(frames):
    f = frames["no_face"]
    assert len(f) and not f.detected.any()
    assert expression_events(f).empty
    assert expression_signals(f).drop(columns=["participant_id", "t_s"]).isna().all().all()


def _speech_from_align(path) -> list[tuple[float, float]]:
    spans = []
    for line in path.read_text().split("\n"):
        if line.strip():
            start, end, word = line.split()
            if word != "sil":
                spans.append((int(start) * GRID_SECONDS_PER_UNIT, int(end) * GRID_SECONDS_PER_UNIT))
    return [(spans[0][0], spans[-1][1])]


def _speech_from_audio(path) -> list[tuple[float, float]]:
    """Where the clip's audio is within 25 dB of its loudest 0.1 s (first to last such frame)."""
    y = decode_audio(path)
    y = y[0] if isinstance(y, tuple) else y
    hop = 1600                                  # 0.1 s at 16 kHz
    level = np.array([20 * np.log10(np.sqrt(np.mean(y[i:i + hop] ** 2)) + 1e-9) for i in range(0, len(y) - hop + 1, hop)])
    loud = np.flatnonzero(level > level.max() - 25)
    return [(loud[0] / 10, (loud[-1] + 1) / 10)]


@pytest.mark.parametrize("clip", GRID)
def test_mouth_moves_while_the_audio_has_speech(frames, clip):
    path = shared(f"data/talking/{clip}.mpg")
    (start, end), = (_speech_from_align(shared("data/talking/swwp2s.align")) if clip == "id2_vcd_swwp2s"
                     else _speech_from_audio(path))
    signals = expression_signals(frames[clip])
    t, mouth = signals.t_s.to_numpy(), signals.mouth_activity.to_numpy()
    speaking = np.median(mouth[(t >= start) & (t < end)])
    margin = 0.25                               # the activity window (0.5 s) reaches this far
    silent = np.median(mouth[(t < start - margin) | (t >= end + margin)])
    assert speaking >= 0.05 and speaking >= 2 * silent, (clip, start, end, speaking, silent)
