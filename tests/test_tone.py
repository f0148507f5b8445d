"""Tone against known answers: harmonic tones' pitch, a loudness ramp, syllable trains' rate,
raised / faster / flat turns of synthetic voices, heated exchanges on known curves, per-person
tracks, and a composed conversation of real AMI speech in which one voice rises."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stages.tone import (
    ToneParams,
    arousal_curve,
    heated_exchanges,
    passages,
    prosody_frames,
    raised_passages,
    segment_tone,
    tone_events,
)

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


def syllables(rate, seconds, f0=150.0, amp=0.1):
    """Voiced syllable-like bursts: a harmonic tone under a raised-cosine envelope with ``rate``
    peaks per second (each burst falls to silence between peaks)."""
    t = np.arange(int(seconds * SR)) / SR
    return (harmonic(f0, seconds, amp) * (0.5 - 0.5 * np.cos(2 * np.pi * rate * t)) ** 2).astype(np.float32)


def turns(parts):
    """Audio and speech table from ``[(pid, audio), ...]`` laid end to end with 0.5 s pauses."""
    audio, speech, t = [], [], 0.0
    for pid, y in parts:
        audio += [y, np.zeros(SR // 2, np.float32)]
        speech.append((t, t + len(y) / SR, pid))
        t += len(y) / SR + 0.5
    return np.concatenate(audio), pd.DataFrame(speech, columns=["start_s", "end_s", "participant_id"])


@pytest.mark.parametrize("rate", [3, 5, 7])
def test_syllable_rate_of_a_pulse_train(rate):
    frames = prosody_frames(syllables(rate, 4.0), SR)
    assert frames.nucleus.sum() / 4.0 == pytest.approx(rate, rel=0.1)
    seg = segment_tone(frames, pd.DataFrame([(0.0, 4.0, "A")], columns=["start_s", "end_s", "participant_id"]))
    assert seg.speech_rate_sps[0] == pytest.approx(rate, rel=0.1)


def test_faster_turn_against_own_usual_rate():
    # A usually 4 syllables/s, once 6/s (1.5 x); B always 3/s
    parts = []
    for i in range(5):
        parts += [("A", syllables(6 if i == 3 else 4, 3.0, f0=200)), ("B", syllables(3, 3.0, f0=110))]
    y, speech = turns(parts)
    seg = segment_tone(prosody_frames(y, SR), speech)
    assert seg.usual_rate_sps[seg.participant_id == "A"].iloc[0] == pytest.approx(4, rel=0.1)
    fast = seg[seg.fast]
    assert list(zip(fast.participant_id, fast.start_s)) == [("A", speech.start_s[6])]
    assert not seg.raised.any() and not seg.flat.any()


def glide(seconds, amp, f0=150.0, depth_st=3.0, n=5):
    """A harmonic voice whose pitch swings ``depth_st`` semitones either side of ``f0`` twice a second."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * 2 ** (depth_st * np.sin(2 * np.pi * 2.0 * t) / 12)
    phase = 2 * np.pi * np.cumsum(f) / SR
    return (amp * sum(np.sin(k * phase) / k for k in range(1, n + 1))).astype(np.float32)


def test_flat_quiet_turn_after_a_long_pause():
    # A speaks with a lively pitch; their fourth turn is monotone, 8 dB quieter, and comes 3 s late
    parts = []
    for i in range(5):
        parts += [("B", glide(3.0, 0.1, f0=110)), ("A", harmonic(200, 3.0, 0.04) if i == 3 else glide(3.0, 0.1, f0=200))]
    y, speech = turns(parts)
    late = speech.index[7]
    y = np.concatenate([y[: int(speech.start_s[late] * SR)], np.zeros(int(2.5 * SR), np.float32),
                        y[int(speech.start_s[late] * SR):]])
    speech.loc[late:, ["start_s", "end_s"]] += 2.5
    seg = segment_tone(prosody_frames(y, SR), speech)
    flat = seg[seg.flat]
    assert list(zip(flat.participant_id, flat.start_s)) == [("A", speech.start_s[late])]
    assert flat.pause_before_s.iloc[0] == pytest.approx(3.0, abs=0.05)
    assert flat.loudness_delta_db.iloc[0] == pytest.approx(-8.0, abs=1.0)
    events = tone_events(seg, arousal_curve(prosody_frames(y, SR), speech), speech, np.zeros(0),
                         {"A": "Alex", "B": "Sam"})
    assert list(events.kind) == ["flat_voice"]
    assert events.explanation[0].startswith("Alex replied after a pause of 3.0 s, in a quieter (8 dB below")


def curve(pid, values):
    """An arousal curve with one point a second: ``values`` at t = 0, 1, 2, ... s."""
    return pd.DataFrame({"participant_id": pid, "t_s": np.arange(len(values), dtype=float),
                         "loudness_delta_db": 0.0, "pitch_delta_st": 0.0, "arousal": values})


def exchange(change_every_s):
    """Speech of A and B over 0-80 s, alternating every ``change_every_s`` s inside 30-50 s and
    every 10 s elsewhere."""
    times = list(np.arange(0, 30, 10.0)) + list(np.arange(30, 50, change_every_s)) + list(np.arange(50, 80, 10.0))
    return pd.DataFrame({"start_s": times, "end_s": times[1:] + [80.0],
                         "participant_id": ["A" if i % 2 == 0 else "B" for i in range(len(times))]})


def test_heated_exchange_needs_two_aroused_people_fast_turns_and_an_interruption():
    hot = np.where((np.arange(80) >= 30) & (np.arange(80) < 50), 0.9, 0.0)
    both = pd.concat([curve("A", hot), curve("B", hot)], ignore_index=True)
    found = heated_exchanges(both, exchange(2.0), np.array([35.0, 41.0]))
    assert len(found) == 1
    r = found.iloc[0]
    assert (r.start_s, r.end_s) == (30.0, 49.0) and sorted(r.people) == ["A", "B"]   # the aroused points
    assert r.interruptions == 2 and r.turn_changes >= 9
    # one aroused person, slow turns or no interruption: not heated
    assert heated_exchanges(pd.concat([curve("A", hot), curve("B", 0 * hot)]), exchange(2.0), np.array([35.0])).empty
    assert heated_exchanges(both, exchange(10.0), np.array([35.0])).empty
    assert heated_exchanges(both, exchange(2.0), np.zeros(0)).empty
    events = tone_events(segment_tone(pd.DataFrame(), pd.DataFrame()), both, exchange(2.0), np.array([35.0, 41.0]),
                         {"A": "Alex", "B": "Sam"})
    assert list(events.kind) == ["heated_exchange"] and events.value[0] == 2
    assert "Alex and Sam both spoke with more vocal arousal than usual" in events.explanation[0]
    assert "there were 2 interruptions" in events.explanation[0]


def test_own_tracks_measure_a_voice_even_in_overlap():
    # B talks over the end of A's turn; on a shared microphone that stretch is not B's voice
    # alone, on B's own track it is
    a, b = harmonic(220, 4.0, 0.2), harmonic(110, 3.0, 0.1)
    speech = pd.DataFrame([(0.0, 4.0, "A"), (1.0, 4.0, "B")], columns=["start_s", "end_s", "participant_id"])
    own = pd.concat([prosody_frames(a, SR).assign(participant_id="A"),
                     prosody_frames(np.concatenate([np.zeros(SR, np.float32), b]), SR).assign(participant_id="B")])
    mixed = prosody_frames(np.concatenate([np.zeros(SR, np.float32), b]) + a, SR)
    by_track = segment_tone(own, speech).set_index("participant_id")
    shared = segment_tone(mixed, speech).set_index("participant_id")
    assert by_track.overlap_share["B"] == pytest.approx(1.0) and shared.overlap_share["B"] == pytest.approx(1.0)
    assert by_track.f0_hz["B"] == pytest.approx(110, rel=0.02) and np.isnan(shared.f0_hz["B"])
    assert by_track.f0_hz["A"] == pytest.approx(220, rel=0.02)


@pytest.mark.slow
def test_composed_conversation_flags_the_risen_voice_only():
    """Two AMI speakers (real speech) take eight turns each; one of FEE016's turns is made 8 dB
    louder and 4 semitones higher with the composer. Raised voice is flagged there and nowhere
    else; from the true speaker turns, so diarization errors do not enter."""
    from conftest import shared

    from analysis.evaluation.composer import Utterance, compose, load_library

    library = load_library(str(shared("data")), include_grid=False)
    a, b = "FEE016", "MEO015"
    script = []
    for i in range(8):
        for spk in (a, b):
            n = len(library.turns[spk])
            risen = spk == a and i == 5
            script.append(Utterance(spk, "turn", ((2 * i) % n, (2 * i + 1) % n), gap_s=0.4,
                                    gain_db=8.0 if risen else 0.0, pitch_st=4.0 if risen else 0.0))
    c = compose(script, library)
    truth = c.events[c.events.kind == "raised_voice"].iloc[0]
    flagged = passages(segment_tone(prosody_frames(c.y, c.sr), c.speech), "raised")
    print("true passage", (truth.start_s, truth.end_s), "flagged", list(zip(flagged.start_s, flagged.end_s)))
    assert len(flagged) >= 1 and (flagged.participant_id == a).all()
    assert ((flagged.start_s >= truth.start_s - 0.5) & (flagged.end_s <= truth.end_s + 0.5)).all()
    assert (flagged.end_s - flagged.start_s).sum() >= 0.5 * (truth.end_s - truth.start_s)


@pytest.mark.slow
def test_composed_heated_exchange_is_found_there_only():
    """Two AMI speakers: four calm turns each, then four short exchanges in which both voices are
    8 dB louder and 3 semitones higher and Sam cuts in each time, then four calm turns each. One
    heated exchange is found, over the heated block; the raised voices lie inside it."""
    from conftest import shared

    from analysis.evaluation.composer import Utterance, compose, load_library

    library = load_library(str(shared("data")), include_grid=False)
    a, b = "FEE016", "MEO015"
    n = {s: len(library.turns[s]) for s in (a, b)}

    def turn(spk, clips, hot=False, gap=0.4):
        return Utterance(spk, "turn", tuple(c % n[spk] for c in clips), gap_s=gap,
                         gain_db=8.0 if hot else 0.0, pitch_st=3.0 if hot else 0.0)

    calm = lambda order: [turn(s, order(i)) for i in range(4) for s in (a, b)]       # noqa: E731
    heated = [u for j in range(4) for u in (
        turn(a, (j,), hot=True, gap=0.1),
        Utterance(b, "interrupt", (j % n[b],), at_s=1.5, cut_target_after_s=0.6, gain_db=8.0, pitch_st=3.0))]
    c = compose(calm(lambda i: (2 * i, 2 * i + 1)) + heated + calm(lambda i: (2 * i + 1, 2 * i)), library)
    hot = c.events[c.events.kind.isin(["raised_voice", "interruption"])]
    block = (hot.start_s.min(), hot.end_s.max())
    frames = prosody_frames(c.y, c.sr)
    interruptions = c.events.start_s[c.events.kind == "interruption"].to_numpy(float)
    events = tone_events(segment_tone(frames, c.speech), arousal_curve(frames, c.speech), c.speech, interruptions,
                         {a: "Alex", b: "Sam"})
    print("heated block", block, events[["kind", "start_s", "end_s"]].round(1).values.tolist())
    found = events[events.kind == "heated_exchange"]
    assert len(found) == 1
    assert block[0] - 2 <= found.start_s.iloc[0] and found.end_s.iloc[0] <= block[1] + 10
    assert found.end_s.iloc[0] - found.start_s.iloc[0] >= 0.7 * (block[1] - block[0])
    raised = events[events.kind == "raised_voice"]
    assert len(raised) >= 2 and set(raised.participant_id) == {a, b}
    assert ((raised.start_s >= block[0] - 1) & (raised.end_s <= block[1] + 6)).all()


def test_a_long_recording_measured_in_blocks_gives_what_the_whole_gives(monkeypatch):
    """Praat measures a long recording a block at a time (memory flat in length): on real speech
    (the AMI mixture looped to 170.37 s, blocks of 40 s and an odd end) the pitch, voicing,
    intensity and syllable nuclei equal those of the whole signal at every frame."""
    import soundfile as sf

    from analysis.stages import tone as tone_stage
    from conftest import shared

    y, sr = sf.read(shared("data/ami-group/mixture.wav"), dtype="float32")
    y = np.tile(y, 3)[: int(170.37 * sr)]
    whole = prosody_frames(y, sr)
    monkeypatch.setattr(tone_stage, "PRAAT_BLOCK_S", 40.0)
    blocks = prosody_frames(y, sr)
    assert len(whole) == len(blocks) == 8519
    pd.testing.assert_frame_equal(whole, blocks)
    assert whole.nucleus.sum() > 500 and whole.f0_hz.notna().mean() > 0.3       # real speech was measured
