"""Who is who on screen: face detections linked into tracks over time, and tracks assigned to
participants by position (seats left to right, or the tiles of a video-call gallery row by row)
and, where it separates the people, by a face signature (re-identification).

A **track** is one face followed from sample to sample: a detection continues the track whose
last box centre is nearest, within ``max_shift`` face sizes, if that track was seen at most
``max_gap_s`` seconds before; otherwise it starts a new track. Someone who leaves and comes
back, or two people who swap chairs, therefore start new tracks, and only those need to be
re-identified.

The **signature** of a face is its landmark geometry: the logarithms of the 3D distances between
22 landmarks of the rigid face (eye corners, nose, forehead, cheekbones, temples; not the
mouth, brows or jaw, which move with expression), minus their mean (so it does not depend on
the face's size or head rotation). It is stable for one person and differs between people:
on the shared real faces, two different people's mean signatures lie 3 to 14 times the typical
distance of one person's frames from their own mean, the same man filmed twice 0.4 times.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

# Face Landmarker mesh indices of rigid points (eye corners, nose, forehead, cheekbones, temples).
SIGNATURE_LANDMARKS = [1, 4, 6, 168, 10, 151, 33, 133, 362, 263, 130, 359, 234, 454, 127, 356, 98, 327, 116,
                       345, 50, 280]
_PAIRS = np.triu_indices(len(SIGNATURE_LANDMARKS), 1)
LAYOUTS = ("auto", "seats", "tiles")


def signature(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Face signature (231 float32 values) from one face's landmarks, shape (478, 3) in the
    Face Landmarker's normalised image coordinates of a ``width`` x ``height`` frame (pixels)."""
    points = landmarks[SIGNATURE_LANDMARKS] * np.array([width, height, width], float)
    distances = np.log(np.linalg.norm(points[_PAIRS[0]] - points[_PAIRS[1]], axis=1) + 1e-9)
    return (distances - distances.mean()).astype(np.float32)


def link_tracks(t_s: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, *,
                max_gap_s: float, max_shift: float, min_samples: int) -> np.ndarray:
    """Track id per detection, -1 where ``x`` is NaN (a sample without a face) or the track has
    fewer than ``min_samples`` detections (a false detection). Inputs are per detection: time
    (s) and box centre and size (fractions of the frame), in time order."""
    track = np.full(len(t_s), -1, int)
    active: list[list] = []            # [id, last time, x, y, w, h]
    next_id = 0
    found = np.flatnonzero(~np.isnan(x))
    if not len(found):
        return track
    times, starts = np.unique(t_s[found], return_index=True)
    for k, now in enumerate(times):
        rows = found[starts[k]:starts[k + 1] if k + 1 < len(starts) else len(found)]
        active = [a for a in active if now - a[1] <= max_gap_s + 1e-6]
        pairs = []
        if active and len(rows):
            last = np.array([a[2:] for a in active])
            size_w = (last[:, None, 2] + w[rows][None, :]) / 2
            size_h = (last[:, None, 3] + h[rows][None, :]) / 2
            shift = np.hypot((x[rows][None, :] - last[:, None, 0]) / size_w, (y[rows][None, :] - last[:, None, 1]) / size_h)
            ai, di = linear_sum_assignment(np.where(shift <= max_shift, shift, 1e6))
            pairs = [(a, d) for a, d in zip(ai, di) if shift[a, d] <= max_shift]
        matched = set()
        for a, d in pairs:
            row = rows[d]
            active[a][1:] = [now, x[row], y[row], w[row], h[row]]
            track[row] = active[a][0]
            matched.add(d)
        for d, row in enumerate(rows):
            if d not in matched:
                active.append([next_id, now, x[row], y[row], w[row], h[row]])
                track[row] = next_id
                next_id += 1
    ids, counts = np.unique(track[track >= 0], return_counts=True)
    track[np.isin(track, ids[counts < min_samples])] = -1
    return track


def places(n: int, tiles: bool) -> list[tuple[float, float, float, float]]:
    """The expected screen place of each of ``n`` participants, ``(left, top, right, bottom)``
    as fractions of the frame: equal seats left to right, or the tiles of the most nearly
    square gallery (``ceil(sqrt(n))`` columns) row by row, the last row centred as video-call
    galleries lay it out."""
    if not tiles:
        return [(k / n, 0.0, (k + 1) / n, 1.0) for k in range(n)]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    cells = []
    for k in range(n):
        row, col = divmod(k, cols)
        in_row = min(cols, n - row * cols)
        left = (col + (cols - in_row) / 2) / cols
        cells.append((left, row / rows, left + 1 / cols, (row + 1) / rows))
    return cells


def _rows(y: np.ndarray, row_gap: float) -> np.ndarray:
    """Row number (0 = top) of each face from its centre height: a new row starts where the
    sorted heights jump by more than ``row_gap`` (fraction of the frame height)."""
    order = np.argsort(y)
    rows = np.zeros(len(y), int)
    rows[order] = np.concatenate([[0], np.cumsum(np.diff(y[order]) > row_gap)]) if len(y) else []
    return rows


def _screen_order(x: np.ndarray, y: np.ndarray, tiles: bool, row_gap: float) -> np.ndarray:
    """Indices of faces in participant order: left to right (seats), or row by row from the
    top and left to right within a row (tiles)."""
    if not tiles:
        return np.argsort(x, kind="stable")
    return np.lexsort((x, _rows(y, row_gap)))


def _looks_like_a_gallery(x: np.ndarray, y: np.ndarray, full: list[np.ndarray], n: int, row_gap: float) -> bool:
    """Whether the faces seen all together sit in two or more rows, each face inside its own
    tile of the regular gallery grid (:func:`places`), on most (90 %) of those samples."""
    cells = np.array(places(n, tiles=True))
    if len(np.unique(cells[:, 1])) < 2:
        return False
    fits = 0
    for at in full:
        at = at[_screen_order(x[at], y[at], True, row_gap)]
        fits += bool(_rows(y[at], row_gap).max() >= 1 and np.all(
            (cells[:, 0] <= x[at]) & (x[at] < cells[:, 2]) & (cells[:, 1] <= y[at]) & (y[at] < cells[:, 3])))
    return fits >= 0.9 * len(full)


def assign_tracks(detections: pd.DataFrame, n_participants: int, *, layout: str, row_gap: float,
                  min_separation: float, min_margin: float, max_distance: float, min_frames: int
                  ) -> tuple[np.ndarray, dict]:
    """Participant index (0..n-1, -1: unassigned) per detection, and facts for the run record.

    ``detections`` has one row per face: ``t_s, track, face_x, face_y, signature`` (an array,
    or None when the face is not frontal enough to give one). ``layout`` "auto" is tiles when
    the faces seen together fit a gallery's grid (:func:`_looks_like_a_gallery`), else seats.
    Positions come from the samples showing all ``n_participants`` faces: ordered as seats or
    tiles, each place's median centre.
    The first such set of tracks seen together on ``min_frames`` samples is the reference: its
    tracks give the participants in screen order and their signatures. Signatures are used
    only when the participants' signatures lie ``min_separation`` typical within-person
    distances apart (measured on the reference tracks); a later track then goes to the
    participant whose signature is nearest when it is at most ``max_distance`` and at least
    ``min_margin`` nearer than the next (same unit), otherwise to the nearest place. Tracks
    seen at the same time never share a participant.
    """
    n = n_participants
    out = np.full(len(detections), -1, int)
    info: dict = {"layout": "seats" if layout == "auto" else layout, "tracks": 0, "reidentified_tracks": 0,
                  "signature_separation": None}
    faces = detections[detections.track >= 0]
    if not len(faces) or n == 0:
        return out, info
    t = faces.t_s.to_numpy(float)
    x, y = faces.face_x.to_numpy(float), faces.face_y.to_numpy(float)
    track = faces.track.to_numpy(int)
    order = np.argsort(t, kind="stable")
    times, first, counts = np.unique(t[order], return_index=True, return_counts=True)
    full = [order[a:a + n] for a, c in zip(first, counts) if c == n]      # faces of each sample showing everyone
    tiles = layout == "tiles"
    if layout == "auto" and full:
        tiles = _looks_like_a_gallery(x, y, full, n, row_gap)
    info["layout"] = "tiles" if tiles else "seats"

    # places: each sample showing everyone, ordered; a place's centre is its median
    place_x, place_y = np.zeros((len(full), n)), np.zeros((len(full), n))
    place_tracks = np.zeros((len(full), n), int)
    for k, at in enumerate(full):
        at = at[_screen_order(x[at], y[at], tiles, row_gap)]
        place_x[k], place_y[k], place_tracks[k] = x[at], y[at], track[at]
    if full:
        anchors = np.column_stack([np.median(place_x, 0), np.median(place_y, 0)])
    else:
        anchors = np.array([((left + right) / 2, (top + bottom) / 2) for left, top, right, bottom in places(n, tiles)])

    # the reference: the first set of tracks seen together with everyone on min_frames samples
    reference: dict[int, int] = {}
    if full:
        combos = pd.Series([tuple(row) for row in place_tracks])
        sizes = combos.map(combos.value_counts())
        chosen = combos[sizes >= min_frames].iloc[0] if (sizes >= min_frames).any() else combos.value_counts().index[0]
        if len(set(chosen)) == n:
            reference = {int(tr): k for k, tr in enumerate(chosen)}

    ids, by_track = np.unique(track, return_inverse=True)
    members = np.split(np.argsort(by_track, kind="stable"), np.cumsum(np.bincount(by_track))[:-1])
    # each track's signatures are stacked one track at a time and only what is used of them kept:
    # their count, mean and (reference tracks) each one's distance from that mean; all tracks'
    # stacks at once, and their float64 differences, held about 170 MB at 50 minutes
    summary = {}
    sig_rows = faces.signature.to_numpy()
    for tr, at in zip(ids, members):
        signatures = [s for s in sig_rows[at] if s is not None]
        stacked = np.array(signatures) if signatures else np.zeros((0, 0))
        summary[tr] = {"times": t[at], "x": float(np.median(x[at])), "y": float(np.median(y[at])),
                       "signatures": len(stacked), "dim": stacked.shape[1],
                       "mean": stacked.mean(0) if len(stacked) else None,
                       "within": (_distances(stacked, stacked.mean(0)) if tr in reference and len(stacked) >= min_frames
                                  and len(stacked) else None)}
        del signatures, stacked
    info["tracks"] = len(ids)

    # signatures of the participants, and whether they separate them
    spread, person = None, None
    usable = reference and all(summary[tr]["signatures"] >= min_frames for tr in reference)
    if usable and n >= 2:
        person = np.zeros((n, summary[next(iter(reference))]["dim"]))
        within = []
        for tr, k in reference.items():
            person[k] = _mean_signature(summary[tr])
            within.append(summary[tr]["within"] if summary[tr]["within"] is not None else
                          np.linalg.norm(np.zeros((0, 0)) - person[k], axis=1))
        spread = float(np.median(np.concatenate(within))) + 1e-9
        between = [np.linalg.norm(person[a] - person[b]) for a in range(n) for b in range(a + 1, n)]
        info["signature_separation"] = round(float(min(between) / spread), 2)
        if min(between) / spread < min_separation:
            person = None

    # each track's participants in order of preference, the surest tracks first
    plans = []
    for tr in ids:
        s = summary[tr]
        if tiles:
            by_place = np.argsort(np.hypot(anchors[:, 0] - s["x"], anchors[:, 1] - s["y"]), kind="stable")
        else:
            by_place = np.argsort(np.abs(anchors[:, 0] - s["x"]), kind="stable")
        if tr in reference:
            plans.append((0, -len(s["times"]), tr, [reference[tr]], "reference"))
            continue
        if person is not None and s["signatures"] >= min_frames:
            distance = np.linalg.norm(person - _mean_signature(s), axis=1) / spread
            by_signature = np.argsort(distance, kind="stable")
            best, second = distance[by_signature[0]], distance[by_signature[1]]
            if best <= max_distance and second - best >= min_margin:
                plans.append((1, -len(s["times"]), tr, list(by_signature), "signature"))
                continue
        plans.append((2, -len(s["times"]), tr, list(by_place), "place"))
    taken: list[set] = [set() for _ in range(n)]
    rows_of = np.flatnonzero(detections.track.to_numpy(int) >= 0)          # positions of ``faces`` in ``detections``
    track_rows = {tr: rows_of[at] for tr, at in zip(ids, members)}
    for _, _, tr, preference, how in sorted(plans, key=lambda p: p[:3]):
        times = set(summary[tr]["times"].tolist())
        k = next((int(k) for k in preference if not (taken[k] & times)), None)
        if k is None:
            continue
        taken[k] |= times
        out[track_rows[tr]] = k
        info["reidentified_tracks"] += how == "signature"
    return out, info


def _mean_signature(track: dict) -> np.ndarray:
    """The mean of a track's stacked signatures, as ``stacked.mean(0)`` (float32)."""
    return track["mean"] if track["mean"] is not None else np.zeros((0, 0)).mean(0)


# rows of a track's signatures whose distances are taken at a time (float64: 7.6 MB)
DISTANCE_BLOCK = 4096


def _distances(stacked: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(stacked - mean (as float64), axis=1)`` computed a block of rows at a
    time, with the same values (each row's norm is its own reduction)."""
    centre = np.asarray(mean, np.float64)
    return np.concatenate([np.linalg.norm(stacked[i:i + DISTANCE_BLOCK] - centre, axis=1)
                           for i in range(0, len(stacked), DISTANCE_BLOCK)])
