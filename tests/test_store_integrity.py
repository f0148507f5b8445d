"""A store that knows itself: a lost index is refused, a killed import is finished, a damaged
artifact is re-made by ``analyze`` (issue: nothing lost, nothing forged)."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from capture.ingest import import_media
from capture.live.recovery import recover_interrupted
from capture.store import Store
from conftest import ROOT, TEST_PASSPHRASE
from media_factory import make_wav
from test_vault import playback, small_session


# ----- a lost or replaced index ----------------------------------------------------------------
def test_lost_index_is_explained_and_never_recreated(tmp_path):
    store = Store(tmp_path, TEST_PASSPHRASE).unlock()
    session_id = small_session(store)
    (tmp_path / "index.sqlite").unlink()
    for command in (["sessions"], ["analyze", session_id], ["audit", "verify"]):
        result = playback(*command, store=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "no index.sqlite" in result.stderr
        assert "restore index.sqlite from your backup" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "index.sqlite").exists(), "a new index (and vault) was made over the sessions"
    assert (tmp_path / "sessions" / session_id).is_dir()


def test_a_new_store_still_creates_its_index(tmp_path):
    result = playback("sessions", store=tmp_path / "fresh")
    assert result.returncode == 0 and (tmp_path / "fresh" / "index.sqlite").is_file()


def test_sessions_outside_the_index_are_reported_by_recover(tmp_path):
    store = Store(tmp_path, TEST_PASSPHRASE).unlock()
    small_session(store)
    stray = tmp_path / "sessions" / "20260101-stray0"
    stray.mkdir()
    result = playback("recover", store=tmp_path)
    assert result.returncode == 0 and str(stray) in result.stderr and "cannot be read" in result.stderr
    assert stray.is_dir()    # reported, never deleted behind the user's back


# ----- an import killed while it becomes a session --------------------------------------------
KILL_AT = {
    # the row with the key is written, the folder is still in staging/
    "before_move": "Store._publish = lambda self, *a: os.kill(os.getpid(), signal.SIGKILL)",
    # the folder has moved into sessions/, the row still says pending
    "after_move": textwrap.dedent("""
        real_replace = store_module.os.replace
        def replace_then_die(src, dst):
            real_replace(src, dst)
            if "sessions" in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
        store_module.os.replace = replace_then_die
    """),
}


@pytest.mark.parametrize("moment", sorted(KILL_AT))
def test_import_killed_as_it_becomes_a_session_is_finished_by_recover(tmp_path, moment):
    script = "\n".join([
        "import os, signal, sys",
        "sys.path[:0] = [%r, %r]" % (str(ROOT), str(ROOT / "tests")),
        "import conftest",
        "import capture.store as store_module",
        "from capture.store import Store",
        "from test_vault import small_session",
        "store = Store(%r, %r).unlock()" % (str(tmp_path), TEST_PASSPHRASE),
        KILL_AT[moment],
        "small_session(store)",
    ])
    Store(tmp_path, TEST_PASSPHRASE).unlock()           # the vault exists before the kill
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = Store(tmp_path, TEST_PASSPHRASE).unlock()
    assert [row.status for row in store.list_sessions()] == ["pending:imported"]
    recovered = recover_interrupted(store)
    (row,) = store.list_sessions()
    assert recovered == [row.session_id] and row.status == "imported"
    assert store.read_json(row.session_id, "manifest.json")["duration_s"] == 1.0
    assert not list((tmp_path / "staging").iterdir()) and store.orphan_folders() == []


def test_import_failing_before_its_row_leaves_nothing(tmp_path):
    store = Store(tmp_path, TEST_PASSPHRASE).unlock()
    with pytest.raises(RuntimeError):
        with store.new_session(duration_s=1.0) as session_id:
            store.write_json(session_id, "manifest.json", {"schema_version": 1})
            raise RuntimeError("disk gone")
    assert store.list_sessions() == [] and not list((tmp_path / "staging").iterdir())
    assert not (tmp_path / "sessions").exists() or not list((tmp_path / "sessions").iterdir())


# ----- analyze re-makes a damaged artifact -----------------------------------------------------
@pytest.mark.slow
def test_analyze_remakes_a_damaged_artifact_instead_of_skipping_it(tmp_path):
    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    session_id = import_media(store, make_wav(tmp_path / "voice.wav", 3.0), "Alex")
    first = playback("analyze", session_id, store=store.root)
    assert first.returncode == 0, first.stderr
    events = store.root / "sessions" / session_id / "derived" / "events.parquet"
    data = bytearray(events.read_bytes())
    data[len(data) // 2] ^= 0x01
    events.write_bytes(bytes(data))

    again = playback("analyze", session_id, store=store.root)
    assert again.returncode == 0, again.stderr
    assert "derived/events.parquet failed its integrity check" in again.stderr
    assert "faces" in again.stderr and "skipped (unchanged)" in again.stderr   # intact stages still skipped
    out = tmp_path / "events.csv"
    assert playback("export", session_id, "--format", "csv", "--out", str(out), store=store.root).returncode == 0


# ----- the dashboard server does not outlive the command that started it ----------------------
def test_stopping_playback_dashboard_stops_its_server(tmp_path):
    from conftest import dashboard_server, listening_sockets

    Store(tmp_path, TEST_PASSPHRASE).unlock()
    with dashboard_server(tmp_path) as port:
        busy = playback("dashboard", "--port", str(port), store=tmp_path)
        assert busy.returncode == 2 and busy.stderr.count("\n") == 1 and "already in use" in busy.stderr
    deadline = time.time() + 20                 # dashboard_server sent SIGTERM to `playback dashboard`
    while listening_sockets(port) and time.time() < deadline:
        time.sleep(0.3)
    assert not listening_sockets(port), "the Streamlit server kept running (and serving) after its command stopped"


def test_replaced_index_is_refused_not_given_a_new_vault(tmp_path):
    store = Store(tmp_path, TEST_PASSPHRASE).unlock()
    session_id = small_session(store)
    (tmp_path / "index.sqlite").unlink()
    other = tmp_path.parent / f"{tmp_path.name}-other"
    Store(other, "another passphrase").unlock()          # someone copies another store's empty index in
    (tmp_path / "index.sqlite").write_bytes((other / "index.sqlite").read_bytes())
    result = playback("sessions", store=tmp_path, env={"PLAYBACK_PASSPHRASE": "another passphrase"})
    assert result.returncode == 0 and session_id not in result.stdout     # lists what that index knows
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        con.execute("DELETE FROM vault")                                  # an emptied index
    result = playback("analyze", session_id, store=tmp_path, env={"PLAYBACK_PASSPHRASE": "any new passphrase"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "was replaced or emptied" in result.stderr
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM vault").fetchone() == (0,)
