"""Tone against known signals: a pure tone's pitch, and a louder, higher segment flagged raised."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stages.tone import ToneParams, prosody_frames, raised_passages, segment_tone

SR = 16000


def tone(f0, seconds, amp):
    t = np.arange(int(seconds * SR)) / SR
    # a few harmonics so it looks like a voiced sound
    return (amp * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))).astype(np.float32)


def test_pitch_and_loudness_of_known_tones():
    y = np.concatenate([tone(120, 1.0, 0.1), tone(240, 1.0, 0.2)])
    frames = prosody_frames(y, SR)
    first = frames[(frames.t_s > 0.2) & (frames.t_s < 0.8)]
    second = frames[(frames.t_s > 1.2) & (frames.t_s < 1.8)]
    assert first.f0_hz.median() == pytest.approx(120, rel=0.03)
    assert second.f0_hz.median() == pytest.approx(240, rel=0.03)
    assert second.loudness_db.median() - first.loudness_db.median() == pytest.approx(6.0, abs=1.0)


def test_raised_relative_to_own_baseline():
    # speaker A: naturally loud and high; speaker B: quiet and low, with one raised segment
    parts, speech, t = [], [], 0.0
    for pid, f0, amp in [("A", 220, 0.3), ("B", 110, 0.05), ("A", 220, 0.3), ("B", 110, 0.05),
                         ("A", 220, 0.3), ("B", 150, 0.15), ("A", 220, 0.3), ("B", 110, 0.05)]:
        parts.append(tone(f0, 2.0, amp))
        speech.append((t, t + 2.0, pid))
        t += 2.0
    frames = prosody_frames(np.concatenate(parts), SR)
    seg = segment_tone(frames, pd.DataFrame(speech, columns=["start_s", "end_s", "participant_id"]))
    flagged = seg[seg.raised]
    assert list(zip(flagged.participant_id, flagged.start_s)) == [("B", 10.0)]
    passages = raised_passages(seg, params=ToneParams())
    assert len(passages) == 1 and passages.participant_id[0] == "B"
    assert passages.pitch_delta_st[0] == pytest.approx(12 * np.log2(150 / 110), abs=0.3)
