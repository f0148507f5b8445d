"""A synthetic analysed session at the scale of a real one (50 minutes, up to 6 people), for the
review page's tests and benchmark: events with known counts, the per-person tables the page
reads, and a store session with a small generated video (no audio, no models)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DURATION_S = 3000.0
NAMES = ["Alexandra Montgomery", "Samira Okonkwo-Bennett", "Jo", "Christopher Wu", "Maria-Luisa Ferreira",
         "Dev Ramaswamy"]
# a known who-interrupts-whom matrix: KNOWN[a][b] = times person a came in while b was talking
KNOWN = [[0 if a == b else (a + 2 * b) % 5 + 1 for b in range(6)] for a in range(6)]


def synthetic_events(names: list[str] = NAMES, duration_s: float = DURATION_S, *, turn_s=(1.0, 8.0),
                     seed: int = 0) -> pd.DataFrame:
    """An events table (:data:`analysis.core.events.EVENT_COLUMNS` + participant_name,
    target_name) for ``names`` (ids p1, p2, ...): back-to-back speech turns of ``turn_s`` seconds
    (some overlapping the previous one), backchannels, the :data:`KNOWN` interruptions, tone
    passages, expressions and silences, over ``duration_s`` seconds."""
    from analysis.core import events as ev

    rng = np.random.default_rng(seed)
    pids = [f"p{i + 1}" for i in range(len(names))]
    rows = []

    def add(start, end, kind, who, target=None, **extra):
        rows.append(dict(start_s=float(start), end_s=float(end), kind=kind, participant_id=who,
                         target_participant_id=target, label=extra.pop("label", kind.replace("_", " ")),
                         confidence=0.8, explanation=f"{kind} at {start:.1f} s", **extra))

    t, cur = 0.0, 0
    while t < duration_s - turn_s[1]:
        length = rng.uniform(*turn_s)
        add(t, t + length, "speech_turn", pids[cur], value=length)
        if rng.random() < 0.3:                                  # someone else says "mm" meanwhile
            other = pids[(cur + 1 + rng.integers(len(pids) - 1)) % len(pids)]
            at = t + rng.uniform(0, length * 0.8)
            add(at, at + 0.6, "backchannel", other, pids[cur], value=0.6)
        nxt = (cur + 1 + int(rng.integers(len(pids) - 1))) % len(pids)
        step = rng.uniform(-0.4, 1.0)
        if step < 0:
            add(t + length + step, t + length, "overlap", pids[nxt], pids[cur], value=-step)
        t, cur = t + length + step, nxt
    for a, row in enumerate(KNOWN[:len(pids)]):
        for b, count in enumerate(row[:len(pids)]):
            for at in rng.uniform(5, duration_s - 5, count):
                add(at, at + 1.2, "interruption", pids[a], pids[b], value=1.2, label="successful, competitive",
                    outcome=str(rng.choice(["successful", "unsuccessful", "contested"])),
                    style=str(rng.choice(["competitive", "cooperative"])))
    for kind, count, length in (("raised_voice", 30, 6.0), ("flat_voice", 12, 8.0), ("speeding_up", 12, 5.0),
                                ("heated_exchange", 5, 25.0), ("silence", 6, 9.0)):
        for at in rng.uniform(0, duration_s - length, count):
            add(at, at + length, kind, str(rng.choice(pids)), value=1.0)
    for at in rng.uniform(0, duration_s - 3, 60):
        expression = str(rng.choice(["smile", "one_sided_smile", "frown"]))
        add(at, at + 2.0, "expression", str(rng.choice(pids)), value=0.5, label=expression, expression=expression)
    events = pd.DataFrame(rows).sort_values("start_s", ignore_index=True)
    events = events.assign(session_id="synthetic", event_id=[f"e{i:05d}" for i in range(len(events))],
                           source=events.kind, source_version="test")
    events = ev.conform(events, ev.EVENT_COLUMNS)
    by_id = dict(zip(pids, names))
    return events.assign(participant_name=events.participant_id.map(by_id),
                         target_name=events.target_participant_id.map(by_id))


def participants_table(events: pd.DataFrame, pids: list[str], names: list[str]) -> pd.DataFrame:
    """Per-person metrics (the columns the page reads) counted from ``events``."""
    turns = events[events.kind == "speech_turn"]
    lengths = turns.end_s - turns.start_s
    talk = lengths.groupby(turns.participant_id).sum().reindex(pids, fill_value=0.0)
    inter = events[events.kind == "interruption"]
    count = lambda frame, col: frame[col].value_counts().reindex(pids, fill_value=0)  # noqa: E731
    return pd.DataFrame({
        "participant_id": pids, "name": names, "talk_s": talk.values, "talk_share": (talk / talk.sum()).values,
        "floor_s": talk.values, "floor_share": (talk / talk.sum()).values,
        "turn_count": turns.participant_id.value_counts().reindex(pids, fill_value=0).values,
        "mean_turn_s": lengths.groupby(turns.participant_id).mean().reindex(pids).values,
        "longest_turn_s": lengths.groupby(turns.participant_id).max().reindex(pids).values,
        "interruptions_made": count(inter, "participant_id").values,
        "interruptions_received": count(inter, "target_participant_id").values,
        "successful_interruptions_made": 0, "unsuccessful_interruptions_made": 0,
        "backchannels_given": count(events[events.kind == "backchannel"], "participant_id").values,
        "overlap_s": 0.0, "mean_latency_s": np.nan})


def matrix_table(events: pd.DataFrame, pids: list[str]) -> pd.DataFrame:
    """Who interrupts whom by id (rows interrupter), every pair present."""
    inter = events[events.kind == "interruption"]
    m = pd.crosstab(inter.participant_id, inter.target_participant_id).reindex(index=pids, columns=pids, fill_value=0)
    m.index.name, m.columns.name = "interrupter", None
    return m


def arousal_table(events: pd.DataFrame) -> pd.DataFrame:
    """A vocal arousal point every second of each person's turns (``participant_id`` + the tone columns)."""
    rng = np.random.default_rng(1)
    rows = [(t.participant_id, float(s)) for t in events[events.kind == "speech_turn"].itertuples()
            for s in np.arange(np.ceil(t.start_s), t.end_s)]
    curve = pd.DataFrame(rows, columns=["participant_id", "t_s"])
    curve["loudness_delta_db"] = rng.normal(0, 3, len(curve))
    curve["pitch_delta_st"] = rng.normal(0, 1, len(curve))
    curve["arousal"] = np.clip(rng.normal(0.3, 0.3, len(curve)), -0.5, 1.6)
    return curve


def synthetic_review(names: list[str] = NAMES, duration_s: float = DURATION_S, **kw):
    """A :class:`analysis.review.Review` of a synthetic session (see :func:`synthetic_events`)."""
    from analysis.review import Review

    pids = [f"p{i + 1}" for i in range(len(names))]
    events = synthetic_events(names, duration_s, **kw)
    manifest = {"session_id": "synthetic", "duration_s": duration_s, "source_name": "synthetic.mp4",
                "participants": [{"id": p, "name": n} for p, n in zip(pids, names)],
                "media": {"video": "media/original.mp4", "original": "media/original.mp4"}}
    matrix = matrix_table(events, pids).rename(index=dict(zip(pids, names)), columns=dict(zip(pids, names)))
    curve = arousal_table(events)
    return Review("synthetic", manifest, True, events, participants_table(events, pids, names), matrix, [],
                  "synthetic", {}, curve.assign(name=curve.participant_id.map(dict(zip(pids, names)))))


def faces_table(pids: list[str], duration_s: float, *, rate_hz: float = 10.0, seed: int = 0) -> pd.DataFrame:
    """A faces table as the faces stage writes it (:data:`analysis.stages.faces.COLUMNS`) at
    ``rate_hz`` samples a second: each person seated in their own place across the frame, moving
    a little, found 95 % of the time; random blendshapes (its size, not its content, matters)."""
    from analysis.stages import faces

    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, 1.0 / rate_hz)
    parts = []
    for i, pid in enumerate(pids):
        seen = rng.random(len(t)) > 0.05
        table = pd.DataFrame(rng.random((len(t), len(faces.COLUMNS))).astype(float), columns=faces.COLUMNS)
        table = table.assign(participant_id=pid, t_s=t, detected=seen, track_id=np.where(seen, i, -1),
                             face_x=(i + 0.5) / len(pids) + 0.01 * np.sin(t / 7), face_y=0.45, face_w=0.5 / len(pids))
        table.loc[~seen, faces.COLUMNS[3:-1]] = np.nan
        parts.append(table)
    return pd.concat(parts, ignore_index=True)[faces.COLUMNS]


def signals_table(faces: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Expression signals (:data:`analysis.stages.expressions.SIGNALS`, 0-1, NaN without a
    face) for every row of a faces table: random, at the size a real session has."""
    from analysis.stages import expressions

    rng = np.random.default_rng(seed)
    values = rng.random((len(faces), len(expressions.SIGNALS))) ** 4
    values[~faces.detected.to_numpy(bool)] = np.nan
    return pd.concat([faces[["participant_id", "t_s"]].reset_index(drop=True),
                      pd.DataFrame(values, columns=list(expressions.SIGNALS))], axis=1)


def small_video(path: Path, duration_s: float, *, fps: int = 1, size=(320, 180)) -> Path:
    """A tiny H.264 video of ``duration_s`` seconds showing its own clock (no audio)."""
    import av
    from PIL import Image, ImageDraw

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"g": "5", "preset": "ultrafast"}
        for i in range(int(duration_s * fps)):
            image = Image.new("RGB", size, (40, 60, 90))
            ImageDraw.Draw(image).text((20, 70), f"{i // 60}:{i % 60:02d}", fill="white", font_size=40)
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def synthetic_store_session(store, folder: Path, names: list[str] = NAMES, duration_s: float = DURATION_S) -> str:
    """A session in ``store`` as the review page reads it: a generated video imported for
    ``names``, then the synthetic events and the derived tables ``load_review`` reads."""
    from analysis.core import events as ev
    from capture.ingest import import_media

    session_id = import_media(store, small_video(folder / "synthetic.mp4", duration_s), ",".join(names))
    manifest = store.manifest(session_id)
    pids, names = [p["id"] for p in manifest["participants"]], [p["name"] for p in manifest["participants"]]
    review = synthetic_review(names, float(manifest["duration_s"]))
    assert [p["id"] for p in review.manifest["participants"]] == pids
    events = review.events.drop(columns=["participant_name", "target_name"]).assign(session_id=session_id)
    store.write_table(session_id, ev.EVENTS_TABLE, ev.conform(events, ev.EVENT_COLUMNS))
    store.write_table(session_id, "derived/participants.parquet", review.participants.drop(columns="name"))
    store.write_table(session_id, "derived/matrix.parquet", matrix_table(review.events, pids).reset_index())
    store.write_json(session_id, "derived/speakers.run.json", {"backend": "synthetic (test)", "params": {}})
    faces = faces_table(pids, float(manifest["duration_s"]))
    store.write_table(session_id, "derived/faces.parquet", faces)
    store.write_table(session_id, "derived/expression_signals.parquet", signals_table(faces))
    store.write_table(session_id, "derived/arousal.parquet", review.arousal.drop(columns="name"))
    store.set_status(session_id, "analysed")
    return session_id
