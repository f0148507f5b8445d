"""Exports of a session's results: speaker turns as RTTM, all events as CSV, and an ELAN
annotation file (EAF 2.8, the format ``pympi-ling`` writes and ELAN reads) with one tier per
person and kind."""
from __future__ import annotations

import io
import mimetypes
import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pandas as pd

from analysis.core import events as ev
from analysis.core.rttm import to_rttm
from capture.errors import PlaybackError
from capture.store import Store

# A cell starting with one of these is taken as a formula by spreadsheets (CSV injection);
# such cells get a leading single quote (OWASP's recommendation).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _names(store: Store, session_id: str) -> dict[str, str]:
    return {p["id"]: p["name"] for p in store.manifest(session_id)["participants"]}


def speakers_rttm(store: Store, session_id: str) -> str:
    """RTTM text of the speaker turns, labelled with participant names (spaces as ``_``)."""
    turns, _ = store.read_table(session_id, "derived/speakers.parquet", ["start_s", "end_s", "participant_id"])
    names = _names(store, session_id)
    named = turns.assign(name=[names.get(pid, pid) for pid in turns.participant_id])
    return to_rttm(named, session_id, label="name")


def events_csv(store: Store, session_id: str) -> str:
    """CSV text of the events table with participant names beside their ids."""
    events = ev.read(store, session_id)
    names = _names(store, session_id)
    events = events.assign(
        participant_name=events.participant_id.map(names),
        target_name=events.target_participant_id.map(names),
    )
    for column in events.columns:
        if not pd.api.types.is_numeric_dtype(events[column]):
            events[column] = events[column].map(safe_cell)
    buffer = io.StringIO()
    events.to_csv(buffer, index=False, float_format="%.3f")
    return buffer.getvalue()


def events_eaf(store: Store, session_id: str) -> str:
    """EAF XML of the events: one tier per person and kind (``"Alex - Interruption"``;
    events of nobody in particular on ``"everyone - <kind>"``), each annotation the event's
    label (``"-> Sam"`` added for an event towards someone), times in milliseconds. The linked
    media is the recording's original file name, for the researcher to point at their copy."""
    from pympi.Elan import Eaf, to_adocument

    manifest = store.manifest(session_id)
    names = _names(store, session_id)
    events = ev.read(store, session_id)
    eaf = Eaf(author="Playback")
    eaf.remove_tier("default")
    if manifest.get("source_name"):
        source = manifest["source_name"]
        eaf.add_linked_file(source, relpath=source, mimetype=mimetypes.guess_type(source)[0] or "video/mp4")
    for event in events.itertuples():
        tier = f"{names.get(event.participant_id, event.participant_id or 'everyone')} - {ev.KINDS[event.kind].title}"
        if tier not in eaf.tiers:
            eaf.add_tier(tier)
        value = str(event.label or ev.KINDS[event.kind].title)
        if event.target_participant_id:
            value += f" -> {names.get(event.target_participant_id, event.target_participant_id)}"
        start = int(round(float(event.start_s) * 1000))
        eaf.add_annotation(tier, start, max(start + 1, int(round(float(event.end_s) * 1000))), value)
    return ElementTree.tostring(to_adocument(eaf, True), encoding="unicode", xml_declaration=True)


def safe_cell(value):
    """A text cell a spreadsheet will not run as a formula: one starting with ``= + - @``, a tab
    or a carriage return gets a leading single quote. Other values are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export(store: Store, session_id: str, fmt: str) -> str:
    if fmt == "rttm":
        return speakers_rttm(store, session_id)
    if fmt == "csv":
        return events_csv(store, session_id)
    if fmt == "eaf":
        return events_eaf(store, session_id)
    raise ValueError(f"unknown export format {fmt!r}")


def write_export(path: Path | str, text: str) -> Path:
    """Write an export as a new file readable by its owner only (0600: it holds names in plain
    text; an existing file is truncated and made 0600 too). Problems with ``path`` raise
    :class:`PlaybackError` with one readable line."""
    path = Path(path)
    what = f"Cannot write the export to {path}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except IsADirectoryError:
        raise PlaybackError(f"{what}: it is a folder; give a file name, e.g. {path / 'events.csv'}.") from None
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise PlaybackError(f"{what}: the folder {path.parent} does not exist.") from None
        raise PlaybackError(f"{what}: files cannot be created there.") from None
    except OSError as exc:
        raise PlaybackError(f"{what}: {exc.strerror or exc}.") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise PlaybackError(f"{what}: {exc.strerror or exc}.") from None
    return path


__all__ = ["export", "speakers_rttm", "events_csv", "events_eaf", "safe_cell", "write_export"]
