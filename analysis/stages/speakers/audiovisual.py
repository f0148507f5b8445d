"""Putting names on voice clusters, and faces to voices.

Without usable faces, clusters are named in order of first speech (the first voice heard is the
first listed participant). With faces, each participant's mouth activity (Face Landmarker
``jawOpen`` plus the lower-lip drop, smoothed over a syllable-length window) decides, in three
steps, who is speaking in every 10 ms frame the voice activity detector marks as speech:

1. **Calibration, per person and per session.** Mouth activity is rescaled to that person's own
   range: 0 is their *rest* level (median over frames where nobody speaks, from the voice
   activity detector alone, so it does not depend on the clustering), 1 their *speaking* level
   (90th percentile over speech frames). A person's mouth starts *moving* when it rises above
   0.5, halfway between the two, and stops when it falls below 0.3 (hysteresis: a lip closure for
   "b" or "m" inside a word does not end it). A face counts as informative only if its speaking
   level stands out from its own rest by ``min_separation`` times the spread (median absolute
   deviation) of its rest frames and by ``min_movement`` in blendshape units; frames where a face
   was not seen for ``max_gap_s`` (or is not informative) give no mouth evidence.
2. **Naming clusters.** Each voice cluster goes to the person whose (rescaled) mouth moves most
   while it is heard compared with other speech: a one-to-one assignment when there are as many
   clusters as faces; with more clusters than faces (one person split), each cluster goes to its
   best face; with fewer (people merged), the faces left over get speech from step 3 only.
3. **Frame by frame, mouths over voices.** In a speech frame where some informative mouth is
   moving, the people speaking are exactly those whose mouths move: the cluster's person when
   their mouth moves, and another person whose mouth moves as well (overlapped speech a single
   microphone's clustering misses), or *instead* when the cluster's person's mouth is at rest
   (speech the clustering gave to the wrong voice: a merged or split cluster, a smeared turn
   boundary). Where no mouth moves (a closed-mouth "mm-hm", faces not seen), the voice cluster
   decides. Stretches where the faces change the answer are kept only if they last
   ``min_overlap_s`` or more. Short pauses the diarization bridged inside one voice's turn stay
   speech only where the same person speaks on both sides once the faces have had their say,
   and (where their face is informative) only while their mouth moves.

   Mouths move before the sound starts and after it stops (opening to speak, the smoothing
   window), so "moving" is first shifted onto the sound, per person and per session: the
   *lead* and *lag* are the median distances from the voice activity's onsets (offsets) that
   the clustering gives to that person to the nearest start (stop) of their mouth's movement
   (``mouth_timing``); every stretch of movement then starts ``lead`` later and ends ``lag``
   earlier, after bridging rests shorter than ``lead + lag`` through which the sound goes on
   (a closure inside speech, such as the "b" after an anticipatory opening, not a pause).
   Without this, overlapped speech the faces add starts early and ends late, and a turn's last
   syllables open a false "interruption" as the next person's mouth gets ready.

All levels and the mouth-to-voice timing are learnt from the session itself; the fields of
:class:`AudioVisualParams` are in units of each person's own range (0.5/0.3, the separation factor, the
percentile) or of time (smoothing window, minimum stretch, search window for the timing),
plus one floor in blendshape units and a minimum count of voice edges to learn a timing from.
Checked on composed GRID couples (``analysis.evaluation.av_composer``, ``benchmarks/audiovisual.py``),
including two copies of one speaker, whose voices no clustering can tell apart, and on the
bundled sample.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.optimize import linear_sum_assignment

from analysis.core.frames import FRAME_S, activity_to_segments, hysteresis, true_runs
from analysis.stages.speakers.diarization import FrameDiarization
from analysis.stages.faces import mouth_activity

@dataclass(frozen=True)
class AudioVisualParams:
    """Every constant of the faces-to-voices step. Levels are in units of each person's own
    range (0 = rest, 1 = speaking), times in seconds."""

    min_face_coverage: float = 0.5   # share of sampled frames in which a face must be seen to use it
    mouth_smooth_s: float = 0.3      # mouth movement is syllabic: max over this window, then average
    min_overlap_s: float = 0.3       # shorter stretches where faces change the voice answer are ignored
    max_gap_s: float = 0.3           # a face unseen for longer than this gives no evidence there
    speaking_percentile: float = 90  # a person's speaking level: this percentile of mouth during speech
    min_separation: float = 2.0      # a face counts only if its speaking level exceeds its rest by
                                     # this many rest spreads (MAD) and by min_movement
    min_movement: float = 0.05       # a face counts only if its speaking level exceeds its rest by
                                     # this much (jawOpen + lip drop, blendshape score units)
    moving_on: float = 0.5           # rescaled mouth level above which a mouth starts moving
    moving_off: float = 0.3          # rescaled mouth level below which a moving mouth stops (a "b"
                                     # or "m" closure does not end it)
    min_rest_s: float = 1.0          # non-speech needed to learn the rest level from it (else the lowest
                                     # quarter of the face's frames stands for rest)
    max_lead_s: float = 0.6          # a mouth starting (stopping) this close to a voice onset (offset) is
                                     # taken to be that voice's start (end) when learning the mouth's timing
    min_edges: int = 3               # voice onsets (offsets) needed to learn one person's timing from them

    def to_dict(self) -> dict:
        return asdict(self)


def _mouth_on_frames(faces: pd.DataFrame, ids: list[str], n_frames: int, p: AudioVisualParams
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """Mouth activity per participant on the 10 ms grid and where each face was seen, both of
    shape (n_frames, people); None when some participant's face is seen too rarely."""
    mouth = mouth_activity(faces)
    if mouth.empty:
        return None
    grid = np.arange(n_frames) * FRAME_S
    out = np.zeros((n_frames, len(ids)))
    seen = np.zeros((n_frames, len(ids)), bool)
    for j, pid in enumerate(ids):
        m = mouth[mouth.participant_id == pid].sort_values("t_s")
        if m.empty or m.mouth_open.notna().mean() < p.min_face_coverage:  # e.g. no face-analysis consent
            return None
        m = m.dropna()
        t = m.t_s.to_numpy()
        out[:, j] = np.interp(grid, t, m.mouth_open.to_numpy())
        seen[:, j] = _distance_to_nearest(grid, t) <= p.max_gap_s / 2
    width = max(1, int(p.mouth_smooth_s / FRAME_S))
    return uniform_filter1d(maximum_filter1d(out, width, axis=0), width, axis=0), seen


def _distance_to_nearest(grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Distance from each grid time to the nearest of the sorted times ``t``."""
    i = np.searchsorted(t, grid)
    before = np.abs(grid - t[np.clip(i - 1, 0, len(t) - 1)])
    after = np.abs(t[np.clip(i, 0, len(t) - 1)] - grid)
    return np.minimum(before, after)


def calibrate_mouths(mouth: np.ndarray, seen: np.ndarray, speech: np.ndarray,
                     p: AudioVisualParams = AudioVisualParams()) -> np.ndarray:
    """Mouth activity rescaled per person to 0 = own rest, 1 = own speaking level; NaN where the
    face was not seen or does not separate speaking from rest (see the module docstring)."""
    out = np.full(mouth.shape, np.nan)
    for j in range(mouth.shape[1]):
        quiet, talk = seen[:, j] & ~speech, seen[:, j] & speech
        if talk.sum() * FRAME_S < p.min_rest_s:
            continue
        if quiet.sum() * FRAME_S < p.min_rest_s:
            quiet = seen[:, j] & (mouth[:, j] <= np.percentile(mouth[seen[:, j], j], 25))
        rest = np.median(mouth[quiet, j])
        spread = np.median(np.abs(mouth[quiet, j] - rest))
        top = np.percentile(mouth[talk, j], p.speaking_percentile)
        if top - rest < max(p.min_separation * spread, p.min_movement):
            continue  # this face does not tell its speech from its silence
        out[:, j] = np.where(seen[:, j], (mouth[:, j] - rest) / (top - rest), np.nan)
    return out


def name_clusters(labels: np.ndarray, level: np.ndarray) -> dict[int, int]:
    """Cluster -> person index from rescaled mouth activity ``level`` (n_frames, people)."""
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    people = level.shape[1]
    speech = labels >= 0
    gain = np.zeros((k, people))
    for c in range(k):
        own, other = labels == c, speech & (labels != c)
        for j in range(people):
            a, b = level[own, j], level[other, j]
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            gain[c, j] = (a.mean() if len(a) else 0.0) - (b.mean() if len(b) else 0.0)
    if k > people:
        return {c: int(np.argmax(gain[c])) for c in range(k)}
    rows, cols = linear_sum_assignment(-gain)
    return {int(r): int(c) for r, c in zip(rows, cols)}


def attribute(labels: np.ndarray, person_of: dict[int, int], level: np.ndarray | None,
              speech: np.ndarray | None = None, people: int | None = None,
              p: AudioVisualParams = AudioVisualParams()) -> np.ndarray:
    """Who speaks in each frame, (n_frames, people) bool: the voice cluster's person, overruled
    by mouths moving (shifted onto the sound, see ``mouth_timing``) in voice-activity
    ``speech`` frames (step 3 of the module docstring). Pauses the diarization filled inside
    one voice's turn are kept only where the same person speaks on both sides after the faces
    have had their say, and only while that person's mouth moves where their face is
    informative."""
    n = len(labels)
    people = people or (level.shape[1] if level is not None else max(person_of.values(), default=-1) + 1)
    voice = np.zeros((n, people), bool)
    for c, j in person_of.items():
        voice[labels == c, j] = True
    if level is None:
        return voice
    speech = (labels >= 0) if speech is None else (speech & (labels >= 0))
    moving = hysteresis(np.nan_to_num(level, nan=0.0), p.moving_on, p.moving_off)
    lead, lag = mouth_timing(moving, labels, person_of, speech, ~np.isnan(level), p)
    sounding = _trim_runs(moving, lead, lag, sound=speech)
    moving = speech[:, None] & sounding
    faces_say = np.where(moving.any(1)[:, None], moving, voice)
    changed = speech & (faces_say != voice).any(1)
    keep = _drop_short(changed, int(p.min_overlap_s / FRAME_S))
    active = np.where(keep[:, None], faces_say, voice) & speech[:, None]
    filled = (labels >= 0) & ~speech
    if filled.any():
        nobody = ~active.any(1)
        for j in range(people):
            for start, end in true_runs(nobody & filled):
                if start > 0 and end < n and active[start - 1, j] and active[end, j]:
                    # ... and, where their face is informative, only while their mouth moves
                    active[start:end, j] = sounding[start:end, j] | np.isnan(level[start:end, j])
    return active


def mouth_timing(moving: np.ndarray, labels: np.ndarray, person_of: dict[int, int], speech: np.ndarray,
                 informative: np.ndarray, p: AudioVisualParams = AudioVisualParams()
                 ) -> tuple[np.ndarray, np.ndarray]:
    """How many frames each person's mouth starts moving before their voice starts (``lead``)
    and stops after it ends (``lag``), both (people,) ints >= 0, learnt from this session: the
    median, over the voice activity's onsets (offsets) that the clustering gives to that person,
    of the distance to the nearest start (stop) of their mouth's movement within
    ``max_lead_s``. A person with fewer than ``min_edges`` such edges takes everyone's median."""
    n, people = moving.shape
    reach = int(p.max_lead_s / FRAME_S)
    found = {"on": [[] for _ in range(people)], "off": [[] for _ in range(people)]}
    rises = [np.array([s for s, _ in true_runs(moving[:, j])]) for j in range(people)]
    falls = [np.array([e for _, e in true_runs(moving[:, j])]) for j in range(people)]
    for start, end in true_runs(speech):
        for edge, frame, kind, marks, sign in ((start, start, "on", rises, 1), (end, end - 1, "off", falls, -1)):
            j = person_of.get(int(labels[frame]), -1)
            if j < 0 or not informative[frame, j] or not len(marks[j]):
                continue
            nearest = marks[j][np.argmin(np.abs(marks[j] - edge))]
            if abs(nearest - edge) <= reach:
                found[kind][j].append(sign * (edge - nearest))
    timing = []
    for kind in ("on", "off"):
        everyone = [d for per in found[kind] for d in per]
        pooled = np.median(everyone) if everyone else 0.0
        timing.append(np.array([max(0, int(round(np.median(per) if len(per) >= p.min_edges else pooled)))
                                for per in found[kind]]))
    return timing[0], timing[1]


def _trim_runs(mask: np.ndarray, lead: np.ndarray, lag: np.ndarray, sound: np.ndarray) -> np.ndarray:
    """Per column j: gaps shorter than ``lead[j] + lag[j]`` frames during which ``sound`` never
    stops are bridged (a closure inside speech), then every run of ``mask`` starts ``lead[j]``
    frames later and ends ``lag[j]`` frames earlier (runs shorter than that vanish)."""
    out = np.zeros(mask.shape, bool)
    for j in range(mask.shape[1]):
        column = mask[:, j].copy()
        for start, end in true_runs(~column):
            if 0 < start and end < len(column) and end - start < lead[j] + lag[j] and sound[start:end].all():
                column[start:end] = True
        for start, end in true_runs(column):
            if end - lag[j] > start + lead[j]:
                out[start + lead[j]:end - lag[j], j] = True
    return out


def name_speakers(frames: FrameDiarization, ids: list[str], faces: pd.DataFrame, *,
                  params: AudioVisualParams = AudioVisualParams()) -> tuple[pd.DataFrame, str]:
    """Segments ``start_s, end_s, participant_id, confidence`` named with participant ids, and
    a description of the backend used."""
    labels = frames.labels
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    n = len(labels)
    found = _mouth_on_frames(faces, ids, n, params) if k and len(faces) else None
    audio_only = frames.method
    speech = frames.speech if frames.speech is not None and len(frames.speech) == n else labels >= 0
    level = calibrate_mouths(*found, speech, params) if found is not None else None
    if level is None or np.isnan(level).all():
        active = np.zeros((n, len(ids)), bool)
        k = min(k, len(ids))
        active[:, :k] = frames.activity()[:, :k]
        return activity_to_segments(active, ids, frames.confidence), audio_only + (
            ", named in order of first speech" if len(ids) > 1 else "") + f"; {frames.overlap_note}"
    person_of = name_clusters(labels, level)
    voice = attribute(labels, person_of, None, people=len(ids), p=params)
    active = attribute(labels, person_of, level, speech, p=params)
    overlap = ((active.sum(1) >= 2) & ~(voice.sum(1) >= 2)).sum() * FRAME_S
    moved = (active & ~voice).any(1) & (active.sum(1) == 1)
    return activity_to_segments(active, ids, frames.confidence), (
        f"audio-visual: {k} voice clusters named by mouth activity; {overlap:.1f} s of overlapped speech added "
        f"and {moved.sum() * FRAME_S:.1f} s moved to another person from faces")


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for start, end in true_runs(mask):
        if end - start < min_len:
            out[start:end] = False
    return out
