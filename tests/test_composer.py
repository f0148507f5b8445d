"""The conversation composer (exact truth from real speech) and the detection floor on its output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.evaluation.composer import SR, Utterance, compose, compose_set, load_library, random_script
from analysis.stages.dynamics import analyse_dynamics

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
from analysis.evaluation.dynamics import track_tone_frames  # noqa: E402
from analysis.evaluation.metrics import class_scores as match_events, prf  # noqa: E402


@pytest.fixture(scope="module")
def lib():
    return load_library(str(DATA))


def test_library_has_real_speech(lib):
    assert len(lib.turn_speakers) >= 4  # three AMI speakers with long speech + GRID speakers
    for spk in lib.turn_speakers:
        for c in lib.turns[spk]:
            assert c.y.dtype == np.float32 and c.duration_s >= 1.5
            assert c.speech[0, 0] == pytest.approx(0.0, abs=0.011)           # trimmed to speech
            assert c.speech[-1, 1] == pytest.approx(c.duration_s, abs=0.011)
    shorts = [c for v in lib.shorts.values() for c in v]
    assert shorts and all(0.15 <= c.duration_s <= 0.9 for c in shorts)


def test_compose_hand_script(lib):
    a, b = "FEE013", "FEE016"
    script = [
        Utterance(a, "turn", (0, 2), gap_s=0.0),
        Utterance(b, "backchannel", (1,), at_s=2.0),
        Utterance(b, "interrupt", (0,), at_s=5.0, drop_after_s=1.5),
        Utterance(b, "turn", (1,), gap_s=0.3),
        Utterance(a, "interrupt", (1, 3), at_s=2.0, cut_target_after_s=0.8, gain_db=8.0),
    ]
    c = compose(script, lib, names={a: "Alex", b: "Sam"})
    assert c.sr == SR and c.y.dtype == np.float32
    assert np.allclose(c.tracks[a] + c.tracks[b], c.y, atol=1e-6)
    ev = c.events
    assert ev["kind"].tolist() == ["backchannel", "interruption", "interruption"]
    assert ev["label"].tolist() == ["backchannel", "unsuccessful, cooperative", "successful, competitive"]
    assert ev["participant_id"].tolist() == [b, b, a]
    assert ev["target_participant_id"].tolist() == [a, a, b]
    # onsets are where the script put them (lead-in 0.5 s, turn starts at its speech)
    assert ev.iloc[0].start_s == pytest.approx(0.5 + 2.0, abs=0.01)
    # the failed attempt lasts at most its drop time
    assert ev.iloc[1].end_s - ev.iloc[1].start_s <= 1.5 + 1e-6
    # the successful interrupter cut the floor holder within 0.8 s of their onset
    succ = ev.iloc[2]
    assert 0.0 < succ.end_s - succ.start_s <= 0.8 + 1e-6
    sb = c.speech[c.speech.participant_id == b]
    assert sb["end_s"].max() >= succ.end_s - 1e-6          # Sam talked until the cut...
    assert not ((sb.start_s < succ.end_s + 1.0) & (sb.end_s > succ.end_s + 0.02)).any()  # ...not after
    # speech table is per-person disjoint and inside the audio
    assert (c.speech.end_s > c.speech.start_s).all() and c.speech.end_s.max() <= c.duration_s


def test_random_scripts_are_reproducible_and_varied(lib):
    s1 = random_script(np.random.default_rng(7), lib, n_speakers=3, duration_s=60)
    s2 = random_script(np.random.default_rng(7), lib, n_speakers=3, duration_s=60)
    assert s1 == s2
    comps = compose_set(n=6, seed=3, duration_s=(45.0, 60.0), library=lib)
    assert sorted({len(c.tracks) for c in comps}) == [2, 3, 4]
    labels = set().union(*[set(c.events["label"]) for c in comps])
    assert {"backchannel", "successful, competitive", "unsuccessful, cooperative"} <= labels
    again = compose_set(n=2, seed=3, duration_s=(45.0, 60.0), library=lib)
    assert again[0].events.equals(comps[0].events) and np.array_equal(again[1].y, comps[1].y)


def _score(comps):
    table = None
    for c in comps:
        res = analyse_dynamics(c.speech, names=c.names, tone_frames=track_tone_frames(c.tracks, c.sr),
                               session_end_s=c.duration_s)
        t = match_events(c.events, res.events, tolerance_s=0.5)
        table = t if table is None else table.assign(**{k: table[k] + t[k] for k in ("tp", "fp", "fn", "tone_agree", "tone_total")})
    return prf(table).set_index("cls")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_f1_floor_with_true_turns(lib, seed):
    comps = compose_set(n=12, seed=seed, library=lib)
    table = _score(comps)
    print(table)
    for cls in ("backchannel", "successful", "unsuccessful"):
        assert table.loc[cls, "tp"] > 0
        assert table.loc[cls, "f1"] >= 0.95, table
    # every scripted interruption found, and no backchannel counted as an interruption
    for c in comps:
        res = analyse_dynamics(c.speech, names=c.names)
        det = res.events[res.events.kind == "interruption"]
        for _, t in c.events[c.events.kind == "interruption"].iterrows():
            hit = det[(abs(det.start_s - t.start_s) <= 0.5) & (det.participant_id == t.participant_id)]
            assert len(hit), f"scripted interruption at {t.start_s:.1f} s not found"
        for _, t in c.events[c.events.kind == "backchannel"].iterrows():
            assert not ((abs(det.start_s - t.start_s) <= 0.5) & (det.participant_id == t.participant_id)).any()
    # raised voice recognised as competitive on most interruptions
    inter = table.loc[["successful", "unsuccessful"]]
    assert inter.tone_agree.sum() / inter.tone_total.sum() >= 0.8


@pytest.mark.slow
def test_f1_floor_end_to_end_from_one_microphone_per_person():
    """From audio: each person's microphone carries the others at -20 dB (bleed); the product's
    multi-track backend finds the speech, then dynamics detects the events."""
    from analysis.evaluation.dynamics import run

    table = run(n=12, seed=0, mode="multitrack", verbose=False).set_index("cls")
    for cls in ("backchannel", "successful", "unsuccessful"):
        assert table.loc[cls, "f1"] >= 0.8, table


@pytest.mark.slow
def test_f1_floor_end_to_end_from_one_microphone():
    """From audio: one mixed microphone, single-mic diarization with overlapped speech detection,
    then dynamics. Measured F1 0.43 / 0.59 / 0.60 (backchannel / successful / unsuccessful) on the
    12 conversations; without overlap detection all three were about 0.02."""
    from analysis.evaluation.dynamics import run

    table = run(n=12, seed=0, mode="audio", verbose=False, cache_dir=None).set_index("cls")
    for cls, floor in (("backchannel", 0.35), ("successful", 0.5), ("unsuccessful", 0.5)):
        assert table.loc[cls, "f1"] >= floor, table
