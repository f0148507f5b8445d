"""Faces to voices: attribution logic on hand-built labels and mouths, the GRID couple composer,
and the whole audio-visual path on a composed couple."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stages.speakers.audiovisual import name_speakers
from analysis.evaluation.av_composer import compose_couple, overlap_seconds, right_face_share
from analysis.core.frames import FRAME_S
from analysis.stages.speakers.diarization import FrameDiarization
from conftest import shared

IDS = ["p1", "p2"]
DURATION_S = 24.0
# who really speaks: p1 1-4 s and 9-12 s, p2 5-8 s and 13-16 s, plus p2 over p1 at 3.0-3.8 s
TRUE = {"p1": [(1, 4), (9, 12)], "p2": [(5, 8), (13, 16), (3.0, 3.8)]}


def _mask(spans, n=int(DURATION_S / FRAME_S)) -> np.ndarray:
    m = np.zeros(n, bool)
    for a, b in spans:
        m[int(round(a / FRAME_S)):int(round(b / FRAME_S))] = True
    return m


def diarization(label_spans: dict[int, list[tuple[float, float]]]) -> FrameDiarization:
    """Frame labels from ``{cluster: [(start_s, end_s), ...]}`` (later clusters win overlaps)."""
    n = int(DURATION_S / FRAME_S)
    labels = np.full(n, -1)
    for c, spans in label_spans.items():
        labels[_mask(spans)] = c
    k = int(labels.max()) + 1
    return FrameDiarization(labels=labels, scores=np.zeros((n, k)), confidence=np.ones(n), speech=labels >= 0)


def faces_table(moving: dict[str, list[tuple[float, float]]], *, fps: float = 10.0, seed: int = 0) -> pd.DataFrame:
    """Mouth blendshapes at ``fps``: syllabic opening (0.15-0.45) while ``moving``, else near 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, DURATION_S, 1 / fps)
    rows = []
    for pid in IDS:
        on = np.zeros(len(t), bool)
        for a, b in moving.get(pid, []):
            on |= (t >= a) & (t < b)
        syllables = 0.3 + 0.15 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
        jaw = np.where(on, syllables, 0.02) + rng.normal(0, 0.005, len(t))
        rows.append(pd.DataFrame({"participant_id": pid, "t_s": t, "detected": True, "jawOpen": jaw,
                                  "mouthLowerDownLeft": jaw / 3, "mouthLowerDownRight": jaw / 3}))
    return pd.concat(rows, ignore_index=True)


def frames_of(segments: pd.DataFrame) -> dict[str, np.ndarray]:
    return {pid: _mask(zip(segments[segments.participant_id == pid].start_s,
                           segments[segments.participant_id == pid].end_s)) for pid in IDS}


def agreement(segments: pd.DataFrame, pid: str, spans) -> float:
    truth = _mask(spans)
    return float((frames_of(segments)[pid] & truth).sum() / truth.sum())


def test_swapped_clusters_are_named_by_mouths_and_overlap_is_added():
    # cluster 0 is p2's voice, cluster 1 p1's: the voice heard first is NOT the first participant
    frames = diarization({0: [(0.5, 0.9), (5, 8), (13, 16)], 1: [(1, 4), (9, 12)]})
    faces = faces_table(TRUE)
    segments, how = name_speakers(frames, IDS, faces)
    assert how.startswith("audio-visual")
    for pid in IDS:
        assert agreement(segments, pid, TRUE[pid]) >= 0.95, (pid, segments)
    # p2's speech over p1's turn: the clustering gave it to p1 only, the faces add p2
    assert agreement(segments, "p2", [(3.0, 3.8)]) >= 0.9
    assert agreement(segments, "p1", [(3.0, 3.8)]) >= 0.9
    assert overlap_seconds(segments) == pytest.approx(0.8, abs=0.25)


def test_one_cluster_for_both_voices_is_split_by_mouths():
    # the clustering merged the two people into one voice (e.g. similar voices)
    frames = diarization({0: [(1, 4), (5, 8), (9, 12), (13, 16)]})
    segments, how = name_speakers(frames, IDS, faces_table(TRUE))
    assert "audio-visual" in how
    assert agreement(segments, "p1", TRUE["p1"]) >= 0.95
    assert agreement(segments, "p2", [(5, 8), (13, 16)]) >= 0.95
    assert frames_of(segments)["p1"][_mask([(5.5, 7.5), (13.5, 15.5)])].sum() == 0


def test_person_split_over_two_clusters_is_joined():
    # p1's voice came out as two clusters (0 and 2), and p2's speech was half given to one of them
    frames = diarization({0: [(1, 4)], 1: [(5, 8)], 2: [(9, 12), (13, 14.5)]})
    segments, _ = name_speakers(frames, IDS, faces_table(TRUE))
    assert agreement(segments, "p1", TRUE["p1"]) >= 0.95
    assert agreement(segments, "p2", [(5, 8), (13, 14.5)]) >= 0.9


def test_speech_without_moving_mouths_keeps_the_voice_answer():
    # a closed-mouth "mm-hm" by p2 (cluster 1) at 10.0-10.6 s while p1's mouth is at rest
    frames = diarization({0: [(1, 4), (5.5, 8)], 1: [(9, 9.8), (10.0, 10.6), (13, 16)]})
    moving = {"p1": [(1, 4), (5.5, 8)], "p2": [(9, 9.8), (13, 16)]}
    segments, _ = name_speakers(frames, IDS, faces_table(moving))
    assert agreement(segments, "p2", [(10.0, 10.6)]) >= 0.95
    assert agreement(segments, "p1", [(10.0, 10.6)]) == 0


def test_listener_with_a_still_mouth_gets_no_overlap():
    frames = diarization({0: [(1, 4), (9, 12)], 1: [(5, 8), (13, 16)]})
    segments, _ = name_speakers(frames, IDS, faces_table({"p1": TRUE["p1"], "p2": [(5, 8), (13, 16)]}))
    assert overlap_seconds(segments) == 0


def test_mouths_moving_before_and_after_the_voice_do_not_widen_the_added_overlap():
    # mouths open 0.3 s before each stretch of sound and close 0.3 s after it (as real mouths,
    # and the GRID clips, do): the timing is learnt at the voice onsets and offsets, so the
    # overlap the faces add stays on p2's sound (3.0-3.8 s), not on p2's mouth (2.7-4.1 s)
    frames = diarization({0: [(1, 4), (9, 12)], 1: [(5, 8), (13, 16)]})
    early_and_late = {pid: [(a - 0.3, b + 0.3) for a, b in spans] for pid, spans in TRUE.items()}
    segments, _ = name_speakers(frames, IDS, faces_table(early_and_late))
    assert overlap_seconds(segments) == pytest.approx(0.8, abs=0.15)
    assert agreement(segments, "p2", [(3.0, 3.8)]) >= 0.85
    assert frames_of(segments)["p2"][_mask([(1, 2.85), (3.95, 4), (9, 12)])].sum() == 0
    assert agreement(segments, "p1", TRUE["p1"]) >= 0.95 and agreement(segments, "p2", [(5, 8), (13, 16)]) >= 0.95


def test_a_pause_with_the_mouth_at_rest_is_not_filled():
    # the diarization filled p1's 0.8 s pause at 12-12.8 s (same voice on both sides), but
    # p1's mouth rests through it: a pause, not speech
    n = int(DURATION_S / FRAME_S)
    frames = diarization({0: [(1, 4), (9, 12), (12.8, 14)], 1: [(5, 8)]})
    speech = frames.labels >= 0
    frames.labels[_mask([(12, 12.8)])] = 0
    frames = FrameDiarization(labels=frames.labels, scores=np.zeros((n, 2)), confidence=np.ones(n), speech=speech)
    segments, _ = name_speakers(frames, IDS, faces_table({"p1": [(1, 4), (9, 12), (12.8, 14)], "p2": [(5, 8)]}))
    assert frames_of(segments)["p1"][_mask([(12.2, 12.6)])].sum() == 0
    assert agreement(segments, "p1", [(1, 4), (9, 12), (12.8, 14)]) >= 0.95


def test_without_faces_clusters_are_named_in_order_of_first_speech():
    frames = diarization({0: [(1, 4)], 1: [(5, 8)]})
    segments, how = name_speakers(frames, IDS, faces_table({}).iloc[0:0])
    assert how.startswith("single microphone")
    assert agreement(segments, "p1", [(1, 4)]) == 1 and agreement(segments, "p2", [(5, 8)]) == 1


def test_unseen_face_gives_no_evidence():
    # p2's face is missing for 12-17 s (rows with NaN blendshapes, as analysis.stages.faces writes them)
    frames = diarization({0: [(1, 4), (9, 12)], 1: [(5, 8), (13, 16)]})
    faces = faces_table({"p1": TRUE["p1"], "p2": [(5, 8), (13, 16)]})
    gone = (faces.participant_id == "p2") & faces.t_s.between(12, 17)
    faces.loc[gone, ["jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight"]] = np.nan
    faces.loc[gone, "detected"] = False
    segments, _ = name_speakers(frames, IDS, faces)
    assert agreement(segments, "p2", [(13, 16)]) >= 0.95


# ----------------------------------------------------------------------------- composer


def test_composer_writes_video_sound_and_exact_truth(tmp_path):
    from analysis.evaluation.metrics import read_rttm
    from capture.media import decode_audio, probe

    data = shared("data/talking")
    made = compose_couple(tmp_path / "couple.mp4", schedule=[("left", 1.0), ("right", 1.6), ("left", 5.0)],
                          data_dir=data)
    info = probe(made["path"])
    assert (info.video_width, info.video_height, info.video_fps) == (720, 288, 25.0)
    assert info.has_audio and abs(info.duration_s - made["duration_s"]) < 0.1
    truth = made["truth"]
    assert list(truth.participant_id) == ["p1", "p2", "p1"]
    assert truth.start_s.tolist() == pytest.approx([1.0, 1.6, 5.0], abs=0.021)  # on the 25 fps grid
    assert made["overlap_s"] > 0.3  # the woman starts while the man is mid-sentence
    rttm = read_rttm(made["rttm"])
    assert rttm[["start_s", "end_s"]].to_numpy() == pytest.approx(truth[["start_s", "end_s"]].to_numpy(), abs=0.002)
    # the sound is where the truth says: loud inside speech, near silent well outside
    y = decode_audio(made["path"])
    rms = lambda a, b: float(np.sqrt(np.mean(y[int(a * 16000):int(b * 16000)] ** 2)))  # noqa: E731
    assert rms(1.1, 1.9) > 30 * rms(0.0, 0.6)
    with pytest.raises(ValueError):
        compose_couple(tmp_path / "bad.mp4", schedule=[("left", 1.0), ("left", 2.0)], data_dir=data)


def test_random_schedule_is_deterministic_and_overlaps(tmp_path):
    data = shared("data/talking")
    a = compose_couple(tmp_path / "a.mp4", seed=3, duration_s=30, data_dir=data)
    b = compose_couple(tmp_path / "b.mp4", seed=3, duration_s=30, data_dir=data)
    pd.testing.assert_frame_equal(a["truth"], b["truth"])
    assert a["overlap_s"] > 0 and set(a["truth"].participant_id) == {"p1", "p2"}
    assert 25 <= a["duration_s"] <= 31 and a["truth"].end_s.max() <= a["duration_s"]


# ----------------------------------------------------------------------------- real media


@pytest.mark.slow
@pytest.mark.parametrize("left,right", [("bbaf2n", "lwbsza"), ("bbaf2n", "id2_vcd_swwp2s")])
def test_composed_couple_speech_goes_to_the_right_face(tmp_path, left, right):
    from analysis.stages.speakers.diarization import diarize_frames
    from analysis.evaluation.metrics import der
    from analysis.stages.faces import face_frames
    from capture.media import decode_audio

    made = compose_couple(tmp_path / "couple.mp4", left=left, right=right, seed=1, duration_s=30,
                          data_dir=shared("data/talking"))
    faces = face_frames(made["path"], made["ids"])
    assert (faces.groupby("participant_id").detected.mean() >= 0.95).all()
    x = faces[faces.detected].groupby("participant_id").face_x.median()
    assert x["p1"] < 0.5 < x["p2"]
    frames = diarize_frames(decode_audio(made["path"]), 16000, n_speakers=2)
    segments, how = name_speakers(frames, made["ids"], faces)
    assert how.startswith("audio-visual")
    share = right_face_share(made["truth"], segments)
    score = der(made["truth"], segments, ref_label="participant_id", end_s=made["duration_s"])
    assert share >= 0.95, (share, score)
    assert overlap_seconds(segments) >= 0.5 * made["overlap_s"]
