"""Who is who on screen, on real faces: tracks that hold, presence found where a face is, people
kept apart when they swap chairs or leave and come back, and the tiles of a video-call gallery.

The swap and gallery videos are composed here from the GRID clips (``../shared/data/talking``,
360x288 at 25 fps, 3 s, played forwards then backwards to last longer) and written to a
temporary H.264 file; the truth is known by construction.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from analysis.evaluation.av_composer import load_clip
from analysis.stages import face_tracks
from analysis.stages.faces import FaceParams, assign_participants, chunks, detect_faces, visible_places
from conftest import shared

pytestmark = pytest.mark.slow
FPS = 25


def _looped(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames of a clip played forwards, backwards, forwards ... (no jump at the seams)."""
    cycle = np.concatenate([frames, frames[::-1]])
    return cycle[np.arange(n) % len(cycle)]


def _write(path: Path, frames) -> Path:
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _analyse(path, n: int, params: FaceParams = FaceParams()) -> tuple[pd.DataFrame, dict]:
    ids = [f"p{k + 1}" for k in range(n)]
    return assign_participants(detect_faces(path, n_participants=n, params=params), ids, params)


def _presence(table: pd.DataFrame) -> tuple[float, float]:
    seen = table[table.detected]
    return float(seen.t_s.min()), float(seen.t_s.max())


# ----------------------------------------------------------------------------- shared clips


def test_two_faces_side_by_side_keep_two_stable_tracks():
    table, info = _analyse(shared("data/faces/two_faces.gif"), 2)
    seen = table[table.detected]
    assert info["layout"] == "seats"
    assert (table.groupby("participant_id").detected.mean() >= 0.95).all()
    assert seen.groupby("participant_id").track_id.nunique().tolist() == [1, 1]      # one track each ...
    x = seen.pivot(index="t_s", columns="participant_id", values="face_x").dropna()
    assert (x.p1 < 0.5).all() and (x.p2 > 0.5).all()                                   # ... that never swap


# Presence annotated by eye once: frames every 0.25 s were laid out on a contact sheet and looked
# at (the face is there up to the frame at 2.27 s, sky from 2.53 s; in the other file sky up to
# 3.76 s, the face from 4.01 s), then the cut frame was found at full frame rate as the jump in
# mean colour: face_noface.mov shows the face from 0 s until its cut at 2.40 s (a black frame,
# then sky); noface_face.mov shows the face from its cut at 3.945 s to the end (6.38 s).
@pytest.mark.parametrize("name,annotated", [("face_noface.mov", (0.0, 2.40)), ("noface_face.mov", (3.945, 6.38))])
def test_presence_interval_within_half_a_second_of_the_annotation(name, annotated):
    table, _ = _analyse(shared(f"data/faces/{name}"), 1)
    start, end = _presence(table)
    assert abs(start - annotated[0]) <= 0.5 and abs(end - annotated[1]) <= 0.5, (start, end)
    inside = table.t_s.between(annotated[0] + 0.5, annotated[1] - 0.5)
    assert table.detected[inside].mean() >= 0.95 and not table.detected[~table.t_s.between(*annotated)].any()


def test_no_face_gives_only_missing_rows():
    table, info = _analyse(shared("data/faces/no_face.mp4"), 2)
    assert len(table) and not table.detected.any() and table.jawOpen.isna().all() and (table.track_id == -1).all()


# ----------------------------------------------------------------------------- composed: a swap


SWAP_S, BACK_S, LEAVE_S, RETURN_S, END_S = 5.0, 6.0, 8.0, 9.0, 11.0


@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    """A (bbaf2n, a man) left and B (lwbsza, a woman) right; both leave at 5 s and come back
    at 6 s on each other's chairs; A leaves again from 8 to 9 s. Truth: A's side per frame."""
    a = load_clip("bbaf2n", str(shared("data/talking")))
    b = load_clip("lwbsza", str(shared("data/talking")))
    n = int(END_S * FPS)
    fa, fb = _looped(a.frames, n), _looped(b.frames, n)
    h, w = fa.shape[1:3]
    empty = np.full((h, w, 3), 40, np.uint8)
    frames, a_side = [], []
    for i in range(n):
        t = i / FPS
        if t < SWAP_S:
            left, right, side = fa[i], fb[i], "left"
        elif t < BACK_S:
            left, right, side = empty, empty, None
        else:
            gone = LEAVE_S <= t < RETURN_S
            left, right, side = fb[i], (empty if gone else fa[i]), (None if gone else "right")
        frames.append(np.hstack([left, right]))
        a_side.append(side)
    path = _write(tmp_path_factory.mktemp("swap") / "swap.mp4", frames)
    detections = detect_faces(path, n_participants=2)
    table, info = assign_participants(detections, ["p1", "p2"])
    return table, info, np.array(a_side, object), path, detections


def _side_of(x: pd.Series) -> np.ndarray:
    return np.where(x < 0.5, "left", "right")


def test_swap_keeps_each_persons_identity(swapped):
    table, info, a_side, _, _ = swapped
    assert info["signature_separation"] >= FaceParams().reid_min_separation     # the signature separates them
    truth = a_side[np.minimum((table.t_s.to_numpy() * FPS).round().astype(int), len(a_side) - 1)]
    table = table.assign(a_side=truth)
    a_rows = table[(table.participant_id == "p1") & table.a_side.notna()]
    b_rows = table[(table.participant_id == "p2") & table.t_s.between(0.3, END_S) & ~table.t_s.between(SWAP_S - 0.2, BACK_S + 0.2)]
    a_right = (a_rows.detected & (_side_of(a_rows.face_x) == a_rows.a_side)).mean()
    b_expected = np.where(b_rows.t_s < SWAP_S, "right", "left")
    b_right = (b_rows.detected & (_side_of(b_rows.face_x) == b_expected)).mean()
    assert a_right >= 0.95 and b_right >= 0.95, (a_right, b_right)
    gone = table[(table.participant_id == "p1") & table.t_s.between(LEAVE_S + 0.2, RETURN_S - 0.2)]
    assert not gone.detected.any()                              # A away: missing, not B's face


def test_without_a_separating_signature_tracks_go_by_seat(swapped):
    """When the signatures do not separate the people well enough, every track goes by seat:
    after the swap the left chair is p1 again (what the old seat matching always did)."""
    *_, detections = swapped
    table, info = assign_participants(detections, ["p1", "p2"], FaceParams(reid_min_separation=100.0))
    assert info["reidentified_tracks"] == 0
    seen = table[table.detected]
    assert (seen[seen.participant_id == "p1"].face_x < 0.5).all() and (seen[seen.participant_id == "p2"].face_x > 0.5).all()


def test_tracks_are_linked_across_stretches(swapped):
    """The stage analyses long videos in stretches in separate processes: detections of three
    stretches, put together, give the same tracks and people as one pass."""
    one_pass, info, _, path, _ = swapped
    params = FaceParams(chunk_s=4.0)
    parts = [detect_faces(path, n_participants=2, params=params, start_s=start, end_s=end)
             for start, end in chunks(END_S, params)]
    table, stretched = assign_participants(pd.concat(parts, ignore_index=True), ["p1", "p2"], params)
    assert stretched["tracks"] == info["tracks"] and list(table.t_s) == list(one_pass.t_s)
    both = table.detected & one_pass.detected
    assert (table.detected == one_pass.detected).mean() > 0.98
    assert (np.sign(table.face_x[both] - 0.5) == np.sign(one_pass.face_x[both] - 0.5)).all()
    before_swap = table[table.detected & (table.t_s < SWAP_S)]
    assert before_swap.groupby("participant_id").track_id.nunique().tolist() == [1, 1]     # through the cut at 4 s


# ----------------------------------------------------------------------------- composed: a gallery


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """A 2x2 video-call gallery of four real faces (three GRID clips and single_face.mp4 cropped
    to a tile), 8 s; the top-right person turns the camera off from 3 to 4.5 s."""
    talking = str(shared("data/talking"))
    tiles = [load_clip(name, talking).frames for name in ("bbaf2n", "lwbsza", "id2_vcd_swwp2s")]
    h, w = tiles[0].shape[1:3]
    with av.open(str(shared("data/faces/single_face.mp4"))) as c:
        raw = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    crop_w = raw[0].shape[0] * w // h
    x0 = (raw[0].shape[1] - crop_w) // 2
    import cv2

    tiles.append(np.stack([cv2.resize(f[:, x0:x0 + crop_w], (w, h), interpolation=cv2.INTER_AREA) for f in raw]))
    n = 8 * FPS
    looped = [_looped(frames, n) for frames in tiles]
    frames = []
    for i in range(n):
        cells = [clip[i] for clip in looped]
        if 3.0 <= i / FPS < 4.5:
            cells[1] = np.zeros_like(cells[1])
        frames.append(np.vstack([np.hstack(cells[:2]), np.hstack(cells[2:])]))
    path = _write(tmp_path_factory.mktemp("gallery") / "gallery.mp4", frames)
    return (*_analyse(path, 4), path)


def test_gallery_tiles_are_assigned_row_by_row(gallery):
    table, info, _ = gallery
    assert info["layout"] == "tiles"
    cell = {"p1": (0, 0), "p2": (1, 0), "p3": (0, 1), "p4": (1, 1)}      # (column, row)
    camera_off = (table.participant_id == "p2") & table.t_s.between(3.0, 4.5)
    shown = table[~camera_off]
    right = [(row.detected and int(row.face_x >= 0.5) == cell[row.participant_id][0]
              and int(row.face_y >= 0.5) == cell[row.participant_id][1]) for row in shown.itertuples()]
    assert np.mean(right) >= 0.95, np.mean(right)
    assert not table[camera_off & table.t_s.between(3.2, 4.3)].detected.any()


@pytest.mark.parametrize("centres,layout,order", [
    ([(0.15, 0.2), (0.5, 0.5), (0.85, 0.8)], "seats", [0, 1, 2]),      # a room seen from above: a staircase, no grid
    ([(0.8, 0.25), (0.5, 0.75), (0.2, 0.3)], "tiles", [2, 0, 1]),      # a gallery of three: two tiles on top, one centred
])
def test_auto_layout_is_a_gallery_only_when_faces_sit_in_its_grid(centres, layout, order):
    """Face positions (fractions of the frame) of three tracks seen together for 2 s: auto
    layout picks tiles only when each face sits in its own cell of the gallery grid; the
    participants follow screen order (row by row for tiles, left to right for seats)."""
    times = np.arange(20) / 10
    rows = [{"t_s": t, "track": k, "face_x": cx, "face_y": cy, "signature": None}
            for t in times for k, (cx, cy) in enumerate(centres)]
    person, info = face_tracks.assign_tracks(pd.DataFrame(rows), 3, layout="auto", row_gap=0.25, min_separation=3.0,
                                             min_margin=1.0, max_distance=2.5, min_frames=5)
    assert info["layout"] == layout
    assert [int(person[k]) for k in range(3)] == [order.index(k) for k in range(3)]


def test_a_gallery_tile_without_consent_never_reaches_the_model(gallery):
    """Consent in a gallery (layout "tiles"): the top-right person did not agree to face
    analysis; their tile is blanked, the three others are found in theirs."""
    *_, path = gallery
    params = FaceParams(layout="tiles")
    analysed = ["p1", "p3", "p4"]
    visible = visible_places(["p1", "p2", "p3", "p4"], analysed, params)
    assert visible == [(0.0, 0.0, 0.5, 0.5), (0.0, 0.5, 0.5, 1.0), (0.5, 0.5, 1.0, 1.0)]
    detections = detect_faces(path, n_participants=3, params=params, visible=visible)
    assert not ((detections.face_x > 0.5) & (detections.face_y < 0.5)).any()
    table, info = assign_participants(detections, analysed, params)
    cell = {"p1": (0, 0), "p3": (0, 1), "p4": (1, 1)}
    right = [(row.detected and int(row.face_x >= 0.5) == cell[row.participant_id][0]
              and int(row.face_y >= 0.5) == cell[row.participant_id][1]) for row in table.itertuples()]
    assert np.mean(right) >= 0.95, np.mean(right)


def test_with_the_default_layout_a_gallery_tile_without_consent_never_reaches_the_model(gallery):
    """The same gallery with the default layout ("auto": a gallery or a room cannot be told
    before faces are seen): only what is a consenting person's place both as a seat and as a
    tile is shown to the model, so the top-right person is never analysed."""
    *_, path = gallery
    analysed = ["p1", "p3", "p4"]
    visible = visible_places(["p1", "p2", "p3", "p4"], analysed, FaceParams())
    assert visible == [(0.0, 0.0, 0.25, 0.5), (0.0, 0.5, 0.25, 1.0), (0.5, 0.5, 0.75, 1.0), (0.75, 0.5, 1.0, 1.0)]
    detections = detect_faces(path, n_participants=3, params=FaceParams(), visible=visible)
    assert not ((detections.face_x > 0.5) & (detections.face_y < 0.5)).any()      # p2's tile
    two = visible_places(["p1", "p2"], ["p1"], FaceParams())
    assert two == [(0.0, 0.0, 0.5, 1.0)]                                           # a couple: both layouts agree


def test_a_profile_or_hidden_face_is_missing_but_keeps_its_box():
    """Real detections of two_faces.gif, the man (right) turned to a profile in one sample and
    the woman (left) half out of the frame in another: both are missing there (no pose, no
    blendshapes), with their box and track kept; the other samples are unchanged."""
    detections = detect_faces(shared("data/faces/two_faces.gif"), n_participants=2)
    t, later = sorted(detections.t_s.unique())[20:22]
    man = (detections.t_s == t) & (detections.face_x > 0.5)
    woman = (detections.t_s == later) & (detections.face_x < 0.5)
    detections.loc[man, "yaw_deg"] = 70.0
    detections.loc[woman, "hidden"] = 0.4
    table, _ = assign_participants(detections, ["p1", "p2"])
    turned = table[((table.t_s == t) & (table.participant_id == "p2")) | ((table.t_s == later) & (table.participant_id == "p1"))]
    assert len(turned) == 2 and not turned.detected.any() and turned.jawOpen.isna().all() and turned.yaw_deg.isna().all()
    assert turned.face_x.notna().all() and (turned.track_id >= 0).all()
    assert table.detected.sum() == len(table) - 2


def test_places_of_seats_and_of_a_gallery_with_a_short_last_row():
    assert face_tracks.places(2, tiles=False) == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]
    assert face_tracks.places(3, tiles=True) == [(0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), (0.25, 0.5, 0.75, 1.0)]


def test_signature_is_the_same_for_a_moved_and_scaled_face():
    landmarks = np.random.default_rng(0).uniform(0.3, 0.6, (478, 3))
    moved = landmarks * 0.5 + np.array([0.2, 0.1, 0.0])
    assert np.allclose(face_tracks.signature(landmarks, 640, 360), face_tracks.signature(moved, 640, 360), atol=1e-5)


def test_the_screen_layout_is_said_at_import_and_used_by_the_faces_stage(store):
    """A video call's gallery said at import (``playback import --layout tiles``) reaches the faces
    stage's parameters, unless they name a layout themselves; an unknown layout is refused."""
    import dataclasses

    from analysis.pipeline import Params, Session, session_params
    from capture.errors import PlaybackError
    from capture.ingest import import_media

    wav = shared("data/ami-pair/dev00.wav")
    call = import_media(store, wav, "Alex,Sam", layout="tiles")
    room = import_media(store, wav, "Alex,Sam")
    assert session_params(Session(store, call), Params()).faces.layout == "tiles"
    assert session_params(Session(store, room), Params()).faces.layout == "auto"
    seats = dataclasses.replace(Params(), faces=FaceParams(layout="seats"))
    assert session_params(Session(store, call), seats).faces.layout == "seats"
    with pytest.raises(PlaybackError, match="screen layout"):
        import_media(store, wav, "Alex,Sam", layout="grid")
