"""Exports of a session's results: speaker turns as RTTM, all events as CSV."""
from __future__ import annotations

import io


from capture.store import Store


def _names(store: Store, session_id: str) -> dict[str, str]:
    return {p["id"]: p["name"] for p in store.manifest(session_id)["participants"]}


def speakers_rttm(store: Store, session_id: str) -> str:
    """RTTM text of the speaker turns, labelled with participant names (spaces as ``_``)."""
    turns, _ = store.read_table(session_id, "derived/speakers.parquet", ["start_s", "end_s", "participant_id"])
    names = _names(store, session_id)
    lines = [
        f"SPEAKER {session_id} 1 {r.start_s:.3f} {r.end_s - r.start_s:.3f} <NA> <NA> "
        f"{names.get(r.participant_id, r.participant_id).replace(' ', '_')} <NA> <NA>"
        for r in turns.sort_values("start_s").itertuples()
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def events_csv(store: Store, session_id: str) -> str:
    """CSV text of the events table with participant names beside their ids."""
    events, _ = store.read_table(session_id, "derived/events.parquet", ["event_id", "start_s", "kind", "explanation"])
    names = _names(store, session_id)
    events = events.assign(
        participant_name=events.participant_id.map(names),
        target_name=events.target_participant_id.map(names),
    )
    buffer = io.StringIO()
    events.to_csv(buffer, index=False, float_format="%.3f")
    return buffer.getvalue()


def export(store: Store, session_id: str, fmt: str) -> str:
    if fmt == "rttm":
        return speakers_rttm(store, session_id)
    if fmt == "csv":
        return events_csv(store, session_id)
    raise ValueError(f"unknown export format {fmt!r}")


__all__ = ["export", "speakers_rttm", "events_csv"]
