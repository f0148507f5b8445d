"""Issue 17: error paths end in one readable line (exit code 2), never a traceback; exports are
safe to open (no spreadsheet formulas) and private (0600); the lock-out never says "0 s"; a
refused passphrase writes nothing; the locked dashboard names no store, session or person;
attested imports attest only the streams a file holds; a video without sound says so; a
truncated faststart mp4 keeps what decodes."""
from __future__ import annotations

import contextlib
import csv
import io
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from conftest import ROOT, TEST_PASSPHRASE
from media_factory import make_media

from capture.errors import WrongPassphraseError
from capture.store import SCHEMA_VERSION, Store

FORMULA_NAME = "=1+2"
OTHER_NAME = "@Sam"


def playback(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("playback"), lines[0]
    return lines[0]


def exportable_session(store: Store) -> str:
    """A session with a manifest and the tables ``playback export`` reads (no media needed)."""
    from analysis.core.events import LEGACY_COLUMNS as EVENT_COLUMNS  # a table written before the structured fields

    with store.new_session(duration_s=10.0) as session_id:
        store.write_json(session_id, "manifest.json", {
            "schema_version": SCHEMA_VERSION, "session_id": session_id, "duration_s": 10.0,
            "participants": [{"id": "p1", "name": FORMULA_NAME, "role": "client", "seat": 0},
                             {"id": "p2", "name": OTHER_NAME, "role": "client", "seat": 1}],
            "source_name": "x.mp4", "media": {"original": "media/x.mp4", "audio": None, "video": None}})
        events = pd.DataFrame([
            [session_id, "e00000", 0.0, 2.0, "speech_turn", "p1", None, "turn", 2.0, 1.0, "dynamics", "0.1.0",
             f"{FORMULA_NAME} held the floor from 0.0 s to 2.0 s."],
            [session_id, "e00001", 2.0, 3.0, "interruption", "p2", "p1", "successful", -0.5, 0.9, "dynamics",
             "0.1.0", f"{OTHER_NAME} came in while {FORMULA_NAME} was talking."],
        ], columns=EVENT_COLUMNS)
        store.write_table(session_id, "derived/events.parquet", events)
        store.write_table(session_id, "derived/speakers.parquet", pd.DataFrame(
            {"start_s": [0.0, 2.0], "end_s": [2.0, 3.0], "participant_id": ["p1", "p2"], "confidence": [1.0, 1.0]}))
    return session_id


@pytest.fixture
def exportable(store):
    return store, exportable_session(store)


# ----- 1. export to a bad place: one line, exit 2 ------------------------------------------------
@pytest.mark.parametrize("where", ["missing folder", "a folder", "/proc"])
def test_export_to_a_bad_path_is_one_line(exportable, tmp_path, where):
    store, session_id = exportable
    out = {"missing folder": tmp_path / "no" / "such" / "x.csv", "a folder": tmp_path,
           "/proc": Path("/proc/x.csv")}[where]
    line = assert_one_line_error(playback("--store", store.root, "export", session_id, "--format", "csv",
                                          "--out", out))
    assert str(out) in line and "Cannot write the export" in line
    assert "export" not in [e["action"] for e in store.audit_log.entries()]   # nothing was exported


def test_store_that_is_a_file_is_one_line(exportable, tmp_path):
    _, session_id = exportable
    not_a_folder = tmp_path / "store.txt"
    not_a_folder.write_text("not a store")
    line = assert_one_line_error(playback("--store", not_a_folder, "export", session_id, "--format", "csv",
                                          "--out", tmp_path / "x.csv"))
    assert "is a file, not a folder" in line


def _cases(session_id: str, tmp: Path, afile: Path) -> list[tuple[str, list]]:
    out = tmp / "out.csv"
    cases = [
        # missing arguments (argparse, one line too)
        ("no command", []), ("unknown command", ["frobnicate"]), ("analyze: no id", ["analyze"]),
        ("export: no id", ["export"]), ("export: no format", ["export", session_id, "--out", out]),
        ("export: bad format", ["export", session_id, "--format", "xls", "--out", out]),
        ("withdraw: no id", ["withdraw"]), ("withdraw: no participant", ["withdraw", session_id]),
        ("consent: no id", ["consent"]), ("delete: no id", ["delete"]), ("retention: no id", ["retention"]),
        ("import: no participants", ["import", tmp / "x.mp4"]), ("record: no participants", ["record"]),
        ("audit: no subcommand", ["audit"]), ("audit: bad subcommand", ["audit", "erase"]),
        ("audit: bad --last", ["audit", "show", "--last", "many"]),
        ("dashboard: bad port", ["dashboard", "--port", "eighty"]), ("demo: bad port", ["demo", "--port", "x"]),
        ("retention: bad days", ["retention", session_id, "--days", "ten"]),
        # unknown session ids
        ("analyze: unknown id", ["analyze", "nope"]),
        ("export: unknown id", ["export", "nope", "--format", "csv", "--out", out]),
        ("export rttm: unknown id", ["export", "nope", "--format", "rttm", "--out", out]),
        ("withdraw: unknown id", ["withdraw", "nope", "--participant", "Alex", "--yes"]),
        ("withdraw: unknown person", ["withdraw", session_id, "--participant", "Nobody", "--yes"]),
        ("consent: unknown id", ["consent", "nope"]), ("delete: unknown id", ["delete", "nope", "--yes"]),
        ("retention: unknown id", ["retention", "nope"]),
        ("retention: set unknown id", ["retention", "nope", "--until", "2030-01-01"]),
        ("retention: bad date", ["retention", session_id, "--until", "someday"]),
        # bad paths
        ("import: missing file", ["import", tmp / "missing.mp4", "--participants", "A,B"]),
        ("import: a folder", ["import", tmp, "--participants", "A,B"]),
        ("import: missing track", ["import", "--track", f"A={tmp / 'missing.wav'}", "--participants", "A"]),
        ("import: /proc", ["import", "/proc/version", "--participants", "A,B"]),
        ("export: missing folder", ["export", session_id, "--format", "rttm", "--out", tmp / "no" / "x.rttm"]),
        ("export: a folder", ["export", session_id, "--format", "rttm", "--out", tmp]),
        ("sessions: store in /proc", ["--store", "/proc/playback-store", "sessions"]),
    ]
    for command in (["import", tmp / "x.mp4", "--participants", "A,B"], ["analyze", session_id],
                    ["export", session_id, "--format", "csv", "--out", out], ["sessions"], ["delete", session_id, "--yes"],
                    ["sweep"], ["audit", "verify"], ["audit", "show"], ["passphrase"], ["retention", session_id],
                    ["retention", session_id, "--days", "3"], ["withdraw", session_id, "--participant", "A", "--yes"],
                    ["consent", session_id], ["recover"], ["dashboard"], ["demo", "--no-dashboard"],
                    ["record", "--participants", "A,B", "--simulate", "--consent-all", "all", "--duration", "1"]):
        words = " ".join(w for w in map(str, command) if w != session_id and not w.startswith("/"))
        cases.append((f"store is a file: {words}", ["--store", afile, *command]))
    return cases


CASE_NAMES = [name for name, _ in _cases("S", Path("/t"), Path("/f"))]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_every_command_fails_in_one_line(exportable, tmp_path, case):
    """Every subcommand (devices excepted) with a missing, unknown or bad argument."""
    store, session_id = exportable
    afile = tmp_path / "a-file"
    afile.write_text("not a store")
    args = dict(_cases(session_id, tmp_path, afile))[case]
    if "--store" not in map(str, args):
        args = ["--store", store.root, *args]
    assert_one_line_error(playback(*args))
    assert store.list_sessions(), "an error path changed the store"


def test_unexpected_exception_becomes_one_line(monkeypatch, capsys, tmp_path):
    import analysis.cli as cli

    def broken(args):
        raise ValueError("a value\nspread over lines")
    monkeypatch.setattr(cli, "cmd_sessions", broken)
    monkeypatch.delenv("PLAYBACK_DEBUG", raising=False)
    assert cli.main(["--store", str(tmp_path), "sessions"]) == 2
    assert capsys.readouterr().err == "playback: ValueError: a value spread over lines\n"

    def oserror(args):
        raise PermissionError(13, "Permission denied", "/somewhere")
    monkeypatch.setattr(cli, "cmd_sessions", oserror)
    assert cli.main(["--store", str(tmp_path), "sessions"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("playback: PermissionError: ") and err.count("\n") == 1
    monkeypatch.setenv("PLAYBACK_DEBUG", "1")                  # developers can still see the traceback
    with pytest.raises(PermissionError):
        cli.main(["--store", str(tmp_path), "sessions"])


# ----- 2. CSV formula injection ------------------------------------------------------------------
def test_csv_export_escapes_formulas(exportable):
    from analysis.export import events_csv, safe_cell

    store, session_id = exportable
    rows = list(csv.DictReader(io.StringIO(events_csv(store, session_id))))
    assert rows[0]["participant_name"] == "'=1+2" and rows[1]["participant_name"] == "'@Sam"
    assert rows[1]["target_name"] == "'=1+2" and rows[0]["explanation"].startswith("'=1+2 held the floor")
    assert rows[1]["explanation"].startswith("'@Sam came in")
    assert rows[1]["value"] == "-0.500"                          # numbers stay numbers
    dangerous = [cell for row in rows for cell in row.values() if cell and cell[0] in "=+-@\t\r"]
    assert dangerous == ["-0.500"]
    assert [safe_cell(v) for v in ("+1", "-x", "\tA", "\rB", "Alex", None, -1.0)] == \
        ["'+1", "'-x", "'\tA", "'\rB", "Alex", None, -1.0]


# ----- 3. exports are private files ---------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "rttm", "eaf"])
def test_exported_files_are_owner_only(exportable, tmp_path, fmt):
    store, session_id = exportable
    fresh = tmp_path / f"new.{fmt}"
    existing = tmp_path / f"old.{fmt}"
    existing.write_text("old contents that are longer than nothing")
    existing.chmod(0o644)
    for out in (fresh, existing):
        result = playback("--store", store.root, "export", session_id, "--format", fmt, "--out", out)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o600, oct(out.stat().st_mode)
    assert "old contents" not in existing.read_text() and FORMULA_NAME.replace(" ", "_") in fresh.read_text()


# ----- 4. the lock-out never says "wait 0 s" -----------------------------------------------------
def test_lockout_message_rounds_up_to_a_whole_second(store, monkeypatch):
    import capture.store as store_module

    now = 1_000_000.0
    with contextlib.closing(sqlite3.connect(store.root / "index.sqlite")) as con, con:
        con.execute("UPDATE vault SET failed_attempts = 3, last_failure = ?", (now - 4.6,))   # 0.4 s of 5 s left
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: now))
    with pytest.raises(WrongPassphraseError) as caught:
        Store(store.root, TEST_PASSPHRASE).unlock()
    assert "wait 1 s" in str(caught.value) and "0 s" not in str(caught.value)
    assert [store_module._wait_text(s) for s in (0.001, 0.4, 1.0, 4.01, 5.0)] == ["1 s", "1 s", "1 s", "5 s", "5 s"]


# ----- 5. a refused passphrase writes nothing -------------------------------------------------------
def test_too_short_passphrase_creates_no_index(tmp_path, monkeypatch):
    root = tmp_path / "new-store"
    with pytest.raises(WrongPassphraseError, match="at least 8"):
        Store(root, "short").unlock()
    assert not (root / "index.sqlite").exists()
    line = assert_one_line_error(playback("--store", root, "analyze", "x", env={"PLAYBACK_PASSPHRASE": "short"}))
    assert "at least 8 characters" in line and not (root / "index.sqlite").exists()
    # asked on a terminal: refused before the index is made too
    import analysis.cli.vault as vault_cli

    monkeypatch.delenv("PLAYBACK_PASSPHRASE", raising=False)
    monkeypatch.delenv("PLAYBACK_NEW_PASSPHRASE", raising=False)
    monkeypatch.setattr(vault_cli, "_interactive", lambda: True)
    monkeypatch.setattr(vault_cli, "_ask", lambda prompt: "short")
    with pytest.raises(WrongPassphraseError):
        vault_cli.open_store(root)
    assert not (root / "index.sqlite").exists()


# ----- 6. the locked dashboard names no store, session or person ------------------------------------
def _page_text(at) -> str:
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "error", "warning", "success",
                 "text", "code", "exception"):
        for element in getattr(at, kind, []):
            parts.append(str(getattr(element, "value", element)))
    for element in at.text_input:
        parts.append(f"{element.label} {element.value}")
    return "\n".join(parts)


def test_locked_page_does_not_show_the_store_path(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "private-clinic-store"
    store = Store(root, TEST_PASSPHRASE).unlock()
    session_id = exportable_session(store)
    monkeypatch.setenv("PLAYBACK_STORE", str(root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert [t.value for t in at.title] == ["🔒 Playback is locked"]
    secrets = [str(root), "private-clinic-store", session_id, FORMULA_NAME, OTHER_NAME]
    text = _page_text(at)
    assert not [s for s in secrets if s in text], text
    at.text_input(key="vault_passphrase").input("not the passphrase")
    at.button[0].click().run()
    assert at.error and "does not open the store" in at.error[0].value
    text = _page_text(at)
    assert not [s for s in secrets if s in text], text


def test_hide_store_path():
    from analysis.dashboard.vault import hide_store_path

    root = Path("/home/dr/clinic")
    assert hide_store_path("That passphrase does not open the store at /home/dr/clinic; check it.", root) == \
        "That passphrase does not open the store; check it."
    assert "/home/dr/clinic" not in hide_store_path("restore /home/dr/clinic/index.sqlite", root)


# ----- 7. attested imports attest what the file holds ------------------------------------------------
def test_attested_audio_only_import_attests_no_video_or_face(store, tmp_path, capsys):
    import analysis.cli as cli
    from capture.consent import read_consent
    from capture.ingest import import_media

    audio_only = make_media(tmp_path / "call.m4a", video=False, seconds=2.0)
    session_id = import_media(store, audio_only, "Alex,Sam")
    for record in read_consent(store, session_id).values():
        assert record.method == "attested-by-therapist"
        assert record.allows("record_audio") and record.allows("analyse_voice")
        assert not record.allows("record_video") and not record.allows("analyse_face")
    silent_video = make_media(tmp_path / "silent.mp4", audio=False, seconds=2.0)
    session_id = import_media(store, silent_video, "Alex,Sam")
    for record in read_consent(store, session_id).values():
        assert record.allows("record_video") and record.allows("analyse_face")
        assert not record.allows("record_audio") and not record.allows("analyse_voice")
    assert cli.main(["--store", str(store.root), "import", str(audio_only), "--participants", "Alex,Sam"]) == 0
    err = capsys.readouterr().err
    assert "record audio, analyse voice." in err and "video" not in err and "face" not in err


# ----- 8. a video without sound says so --------------------------------------------------------------
def test_video_without_audio_says_there_is_no_audio(store, tmp_path):
    from analysis.stages.dynamics import analyse_dynamics
    from analysis.pipeline import analyze
    from capture.ingest import import_media

    session_id = import_media(store, make_media(tmp_path / "mute.mp4", audio=False, seconds=2.0), "Alex,Sam")
    analyze(store, session_id)
    events, _ = store.read_table(session_id, "derived/events.parquet")
    assert not events.explanation.str.contains("Nobody spoke|no one spoke").any(), events.explanation.tolist()
    assert "silence" not in set(events.kind)
    (row,) = events[events.kind == "no_audio"].itertuples()
    assert "no audio" in row.explanation and "no speech analysis" in row.explanation
    assert (row.start_s, row.end_s) == (0.0, pytest.approx(2.0, abs=0.15))
    # a recording with sound in which nobody spoke is still a silence
    empty = pd.DataFrame(columns=["start_s", "end_s", "participant_id"])
    quiet = analyse_dynamics(empty, names={"p1": "Alex"}, session_end_s=10.0).events
    assert list(quiet.kind) == ["silence"] and "no one spoke at all" in quiet.explanation[0]


# ----- 9. a faststart mp4 cut short keeps what decodes ------------------------------------------------
def test_truncated_faststart_mp4_imports_what_decodes(store, tmp_path):
    import av

    from capture.ingest import import_media
    from capture.media import decode_wav

    plain = make_media(tmp_path / "plain.mp4", seconds=6.0)
    fast = tmp_path / "fast.mp4"
    with av.open(str(plain)) as source, av.open(str(fast), "w", format="mp4", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    data = fast.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")               # the index is at the front
    third = tmp_path / "third.mp4"
    third.write_bytes(data[: len(data) // 3])
    session_id = import_media(store, third, "Alex,Sam")
    manifest = store.manifest(session_id)
    assert 1.0 < manifest["duration_s"] < 3.0                   # what the streams hold, not the 6 s claimed
    y, sr = decode_wav(store.read_bytes(session_id, manifest["media"]["audio"]))
    assert len(y) / sr == pytest.approx(manifest["duration_s"], abs=0.2)
