"""Tone against known signals: a pure tone's pitch, and a louder, higher segment flagged raised."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stages.tone import ToneParams, arousal_curve, prosody_frames, raised_passages, segment_tone

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


def two_voices():
    """A (naturally loud and high) and B (quiet and low) alternate 2 s each; B's third turn
    (10-12 s) is louder and higher. Returns (audio, speech table)."""
    parts, speech, t = [], [], 0.0
    for pid, f0, amp in [("A", 220, 0.3), ("B", 110, 0.05), ("A", 220, 0.3), ("B", 110, 0.05),
                         ("A", 220, 0.3), ("B", 150, 0.15), ("A", 220, 0.3), ("B", 110, 0.05)]:
        parts.append(tone(f0, 2.0, amp))
        speech.append((t, t + 2.0, pid))
        t += 2.0
    return np.concatenate(parts), pd.DataFrame(speech, columns=["start_s", "end_s", "participant_id"])


def test_raised_relative_to_own_baseline():
    y, speech = two_voices()
    frames = prosody_frames(y, SR)
    seg = segment_tone(frames, speech)
    flagged = seg[seg.raised]
    assert list(zip(flagged.participant_id, flagged.start_s)) == [("B", 10.0)]
    passages = raised_passages(seg, params=ToneParams())
    assert len(passages) == 1 and passages.participant_id[0] == "B"
    assert passages.pitch_delta_st[0] == pytest.approx(12 * np.log2(150 / 110), abs=0.3)


def harmonic(f0, seconds=2.0, amp=0.1, n=5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, n + 1))).astype(np.float32)


@pytest.mark.parametrize("f0", [100, 150, 220, 330])
def test_harmonic_tone_pitch_within_two_percent(f0):
    frames = prosody_frames(harmonic(f0), SR)
    inner = frames[(frames.t_s > 0.1) & (frames.t_s < 1.9)]
    assert inner.f0_hz.notna().mean() > 0.95
    assert inner.f0_hz.median() == pytest.approx(f0, rel=0.02)


def test_loudness_ramp_is_measured_in_db():
    # 3 s of a 200 Hz tone whose level rises 10 dB per second (-40 to -10 dB)
    t = np.arange(3 * SR) / SR
    y = (10 ** ((-40 + 10 * t) / 20) * np.sqrt(2) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    frames = prosody_frames(y, SR)
    inner = frames[(frames.t_s > 0.2) & (frames.t_s < 2.8)]
    slope, intercept = np.polyfit(inner.t_s, inner.loudness_db, 1)
    assert slope == pytest.approx(10.0, abs=0.3)
    assert intercept == pytest.approx(-40.0, abs=1.0)      # RMS of a sine of that amplitude: its level


@pytest.mark.parametrize("signal", ["zeros", "noise"])
def test_silence_gives_no_pitch_and_no_events(signal):
    y = np.zeros(3 * SR, np.float32) if signal == "zeros" else \
        (10 ** (-60 / 20) * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32)
    frames = prosody_frames(y, SR)
    assert len(frames) > 100 and frames.f0_hz.isna().all()
    speech = pd.DataFrame([(0.0, 1.5, "A"), (1.5, 3.0, "B")], columns=["start_s", "end_s", "participant_id"])
    seg = segment_tone(frames, speech)
    assert not seg.raised.any() and seg.f0_hz.isna().all()
    assert raised_passages(seg).empty


@pytest.mark.slow
def test_real_speakers_median_pitch_is_plausible_and_women_are_higher():
    """AMI group sources (one person per track): each person's median F0 over their own speech
    (from the reference) lies in a speaking range, and both women are above both men."""
    import librosa
    from scipy.optimize import linear_sum_assignment

    from conftest import shared

    speech = {}
    for line in shared("data/ami-group/mixture.rttm").read_text().splitlines():
        f = line.split()
        speech.setdefault(f[7], []).append((float(f[3]), float(f[3]) + float(f[4])))
    speakers = sorted(speech)
    frames, scores = [], []
    for i in range(4):
        y, _ = librosa.load(shared(f"data/ami-group/sources/source{i}.wav"), sr=SR)
        fr = prosody_frames(y, SR)
        masks = [np.any([(fr.t_s >= a) & (fr.t_s < b) for a, b in speech[s]], axis=0) for s in speakers]
        energy = 10 ** (fr.loudness_db / 10)
        scores.append([energy[m].mean() / energy[~m].mean() for m in masks])   # whose speech this track carries
        frames.append((fr, masks))
    rows, cols = linear_sum_assignment(-np.array(scores))
    median = {speakers[c]: float(frames[r][0].f0_hz[frames[r][1][c]].median()) for r, c in zip(rows, cols)}
    print("median F0 (Hz) by speaker:", {s: round(hz) for s, hz in sorted(median.items())})
    assert all(70 < hz < 300 for hz in median.values()), median
    women = [hz for s, hz in median.items() if s.startswith("F")]
    men = [hz for s, hz in median.items() if s.startswith("M")]
    assert len(women) == 2 and len(men) == 2 and min(women) > max(men), median


def test_arousal_curve_rises_where_one_voice_is_raised():
    y, speech = two_voices()
    curve = arousal_curve(prosody_frames(y, SR), speech)
    b = curve[curve.participant_id == "B"].set_index("t_s").arousal
    assert b.loc[10.5:11.5].min() > 1.0          # at least raised-voice level on both measures
    assert b.drop(b.loc[9.5:12.5].index).abs().max() < 0.2
    a = curve[curve.participant_id == "A"].arousal
    assert a.abs().max() < 0.2                   # A's voice never changes
    assert arousal_curve(prosody_frames(np.zeros(3 * SR, np.float32), SR), speech.iloc[:1]).empty
