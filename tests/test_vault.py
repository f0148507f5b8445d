"""The vault (PRIVACY_SECURITY.md E1-E5, A1, A2): encryption at rest, crypto-erase, integrity,
passphrases, retention, no plaintext temporary files, dashboard lock and re-authentication."""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from conftest import ARTIFACTS, ROOT, SAMPLE, TEST_PASSPHRASE, dashboard_server, launch_chromium, listening_sockets

from capture.store import vault
from capture.errors import IntegrityError, SessionNotFoundError, StoreLockedError, WrongPassphraseError
from capture.store import Store

APP = str(ROOT / "app.py")

# Distinctive strings: short names like "Sam" would turn up by chance in megabytes of ciphertext.
NAMES = ("Wilhelmina Quartermaine", "Bartholomew Fairweather")
NOTE = "therapist note: the marigold umbrella argument"
CONSENT_DETAIL = "consent collected by Dr Persimmon Oakhollow"


def playback(*args: str, store: Path, env: dict | None = None, input_text: str | None = None):
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store), *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, input=input_text)


def small_session(store: Store, payload: bytes = b"x" * 10) -> str:
    with store.new_session(duration_s=1.0) as session_id:
        store.write_json(session_id, "manifest.json", {
            "schema_version": 1, "session_id": session_id, "participants": [{"id": "p1", "name": NAMES[0], "seat": 0}],
            "duration_s": 1.0, "source_name": "private.mp4",
            "media": {"original": "media/blob.bin", "audio": None, "video": None}})
        store.write_bytes(session_id, "media/blob.bin", payload)
    return session_id


def session_files(store: Store, session_id: str) -> dict[str, bytes]:
    folder = store.root / "sessions" / session_id
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ----- E1: nothing readable at rest ---------------------------------------------------------
SIGNATURES = {
    "mp4/mov (ftyp)": lambda head: head[4:8] == b"ftyp",
    "WAV/AVI (RIFF)": lambda head: head[:4] == b"RIFF",
    "Matroska/WebM": lambda head: head[:4] == b"\x1a\x45\xdf\xa3",
    "JPEG": lambda head: head[:3] == b"\xff\xd8\xff",
    "PNG": lambda head: head[:8] == b"\x89PNG\r\n\x1a\n",
    "Parquet (PAR1)": lambda head: head[:4] == b"PAR1",
    "SQLite": lambda head: head[:16] == b"SQLite format 3\x00",
}


def scan(folders: list[Path], secrets: list[str], allowed_sqlite: Path) -> list[str]:
    """Every plaintext media/table/database file and every secret string found in ``folders``."""
    problems = []
    for folder in folders:
        for path in (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            data = path.read_bytes()
            for kind, matches in SIGNATURES.items():
                if matches(data[:16]) and not (kind == "SQLite" and path == allowed_sqlite):
                    problems.append(f"{path}: plaintext {kind}")
            for secret in secrets:
                for encoded in {secret.encode("utf-8"), secret.encode("utf-16-le")}:
                    if encoded in data:
                        problems.append(f"{path}: contains {secret!r}")
    return problems


@pytest.mark.slow
def test_full_import_analyse_export_leaves_no_plaintext_anywhere(tmp_path):
    """E1 + E4: import, analyse and export the sample with the real CLI, with its temporary
    directory and caches pointed at folders we then scan."""
    store_root, tmp, cache, out = (tmp_path / name for name in ("store", "tmp", "cache", "out"))
    for folder in (tmp, cache, out):
        folder.mkdir()
    env = {"TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache), "NUMBA_CACHE_DIR": str(cache / "numba"),
           "MPLCONFIGDIR": str(cache / "matplotlib")}
    imported = playback("import", str(SAMPLE / "session.mp4"), "--participants", ",".join(NAMES), store=store_root, env=env)
    assert imported.returncode == 0, imported.stderr
    session_id = imported.stdout.strip().splitlines()[-1]
    analysed = playback("analyze", session_id, store=store_root, env=env)
    assert analysed.returncode == 0, analysed.stderr
    for fmt in ("csv", "rttm"):
        exported = playback("export", session_id, "--format", fmt, "--out", str(out / f"x.{fmt}"), store=store_root, env=env)
        assert exported.returncode == 0, exported.stderr
    assert NAMES[0].replace(" ", "_") in (out / "x.rttm").read_text()       # the export the user asked for is readable
    store = Store(store_root)
    store.write_json(session_id, "notes.json", {"notes": [{"t_s": 12.0, "text": NOTE}]})
    store.write_json(session_id, "consent.json", {"p1": {"collected_by": CONSENT_DETAIL, "scopes": ["audio"]}})
    assert store.read_json(session_id, "notes.json")["notes"][0]["text"] == NOTE

    home_cache = Path.home() / ".cache" / "playback"
    folders = [store_root, tmp, cache] + ([home_cache] if home_cache.is_dir() else [])
    secrets = [*NAMES, NOTE, CONSENT_DETAIL, "session.mp4", "marigold"]
    assert scan(folders, secrets, allowed_sqlite=store_root / "index.sqlite") == []
    assert not any(tmp.iterdir()), f"left in the temporary directory: {list(tmp.iterdir())}"
    derived = list((store_root / "sessions" / session_id / "derived").glob("*.parquet"))
    assert len(derived) >= 6 and all(p.read_bytes()[:8] == vault.MAGIC for p in derived)

    # the index holds ids, dates, status, retention, wrapped keys and sealed case details only
    with contextlib.closing(sqlite3.connect(store_root / "index.sqlite")) as con:
        columns = {table: [c[1] for c in con.execute(f"PRAGMA table_info({table})")]
                   for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert columns["sessions"] == ["session_id", "created_utc", "status", "duration_s", "schema_version",
                                   "retention_until", "wrapped_key", "case_id"]
    assert columns["cases"] == ["case_id", "created_utc", "sealed"]
    assert set(columns) == {"sessions", "vault", "audit_head", "cases"}


# ----- E3: destroy means crypto-erase ---------------------------------------------------------
def test_copy_taken_before_delete_cannot_be_decrypted_afterwards(store, tmp_path):
    kept = small_session(store)
    doomed = import_sample(store)
    copy = session_files(store, doomed)
    with contextlib.closing(sqlite3.connect(store.root / "index.sqlite")) as con:
        (wrapped,) = con.execute("SELECT wrapped_key FROM sessions WHERE session_id=?", (doomed,)).fetchone()
    store.delete_session(doomed)

    assert not (store.root / "sessions" / doomed).exists()
    with pytest.raises(SessionNotFoundError):
        store.read_bytes(doomed, "manifest.json")
    # the wrapped key is gone from the index file itself (secure_delete), not just unlisted
    assert wrapped not in (store.root / "index.sqlite").read_bytes()
    # every key the store still holds (master, remaining session keys) fails on the copy
    fresh = Store(store.root, TEST_PASSPHRASE).unlock()
    candidates = [fresh._master, fresh._data_key(kept)]
    for rel, blob in copy.items():
        for key in candidates:
            with pytest.raises(IntegrityError):
                vault.decrypt_bytes(key, rel, blob)
    # putting the copy back into the store does not bring it back either
    for rel, blob in copy.items():
        target = store.root / "sessions" / doomed / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    with pytest.raises(SessionNotFoundError):
        fresh.manifest(doomed)
    assert ("delete", doomed) in [(e["action"], e["session_id"]) for e in store.audit_log.entries()]


def import_sample(store: Store) -> str:
    from capture.ingest import import_media

    return import_media(store, SAMPLE / "session.mp4", ",".join(NAMES))


# ----- integrity: truncated or edited files fail loudly --------------------------------------
@pytest.mark.parametrize("damage", ["cut_one_byte", "cut_at_chunk_boundary", "cut_to_header", "flip_header",
                                    "flip_middle", "flip_last_tag", "append_byte", "moved_file"])
def test_truncated_or_modified_file_fails_with_a_clear_error(store, damage):
    payload = os.urandom(int(2.5 * vault.CHUNK_BYTES))
    session_id = small_session(store, payload)
    assert store.read_bytes(session_id, "media/blob.bin") == payload
    path = store.root / "sessions" / session_id / "media" / "blob.bin"
    data = bytearray(path.read_bytes())
    rel = "media/blob.bin"
    if damage == "cut_one_byte":
        data = data[:-1]
    elif damage == "cut_at_chunk_boundary":
        data = data[:vault.HEADER_BYTES + 2 * (vault.CHUNK_BYTES + vault.TAG_BYTES)]
    elif damage == "cut_to_header":
        data = data[:vault.HEADER_BYTES]
    elif damage == "flip_header":
        data[12] ^= 1
    elif damage == "flip_middle":
        data[len(data) // 2] ^= 0x40
    elif damage == "flip_last_tag":
        data[-1] ^= 1
    elif damage == "append_byte":
        data += b"\0"
    elif damage == "moved_file":
        rel = "media/other.bin"
        path = path.with_name("other.bin")
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="failed its integrity check.*truncated or modified"):
        store.read_bytes(session_id, rel)
    with pytest.raises(IntegrityError):
        with store.open_media(session_id, rel) as media:
            media.read()


def test_damaged_table_is_a_readable_cli_error(store):
    import pandas as pd

    session_id = small_session(store)
    store.write_table(session_id, "derived/speakers.parquet", pd.DataFrame({"start_s": [0.0], "end_s": [1.0],
                                                                            "participant_id": ["p1"]}))
    path = store.root / "sessions" / session_id / "derived" / "speakers.parquet"
    path.write_bytes(path.read_bytes()[:-20])
    result = playback("export", session_id, "--format", "rttm", "--out", str(store.root / "x.rttm"), store=store.root)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "failed its integrity check" in result.stderr


# ----- E2: passphrase, master key, wrapped keys ------------------------------------------------
def test_locked_store_says_how_to_unlock(tmp_path):
    Store(tmp_path, TEST_PASSPHRASE).unlock()
    session_id = small_session(Store(tmp_path, TEST_PASSPHRASE))
    locked = Store(tmp_path, from_env=False)
    assert [r.session_id for r in locked.list_sessions()] == [session_id]     # ids only: no key needed
    with pytest.raises(StoreLockedError, match="PLAYBACK_PASSPHRASE"):
        locked.read_json(session_id, "manifest.json")
    env = {k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"}
    result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(tmp_path), "analyze", session_id],
                            cwd=ROOT, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and result.stderr.startswith("playback: The store at") and "locked" in result.stderr
    assert result.stderr.count("\n") == 1


def test_wrong_passphrases_are_rate_limited_and_audited(store):
    session_id = small_session(store)
    for _ in range(3):
        with pytest.raises(WrongPassphraseError, match="does not open"):
            Store(store.root, "not the passphrase").unlock()
    with pytest.raises(WrongPassphraseError, match=r"wait \d+ s"):
        Store(store.root, TEST_PASSPHRASE).unlock()           # even the right one waits now
    actions = [(e["action"], e["detail"]) for e in store.audit_log.entries()]
    assert actions.count(("unlock_failed", "wrong_passphrase")) == 3 and ("unlock_failed", "rate_limited") in actions
    with contextlib.closing(sqlite3.connect(store.root / "index.sqlite")) as con, con:
        con.execute("UPDATE vault SET last_failure = last_failure - 600")       # the wait has passed
    again = Store(store.root, TEST_PASSPHRASE).unlock()
    assert again.read_json(session_id, "manifest.json")["participants"][0]["name"] == NAMES[0]
    assert store.audit_log.entries()[-1]["action"] == "unlock"
    assert all(NAMES[0] not in line for line in store.audit_log.path.read_text().splitlines())


def test_changing_the_passphrase_rewraps_keys_only(store):
    session_id = small_session(store, os.urandom(3 * vault.CHUNK_BYTES))
    before = {rel: hashlib.sha256(blob).hexdigest() for rel, blob in session_files(store, session_id).items()}
    env = {"PLAYBACK_NEW_PASSPHRASE": "a brand new passphrase"}
    result = playback("passphrase", store=store.root, env=env)
    assert result.returncode == 0, result.stderr
    assert "1 session keys re-wrapped" in result.stderr
    after = {rel: hashlib.sha256(blob).hexdigest() for rel, blob in session_files(store, session_id).items()}
    assert after == before                                   # media and tables untouched
    with pytest.raises(WrongPassphraseError):
        Store(store.root, TEST_PASSPHRASE).unlock()
    reopened = Store(store.root, "a brand new passphrase")
    assert reopened.read_json(session_id, "manifest.json")["participants"][0]["name"] == NAMES[0]


def test_store_made_before_the_vault_is_encrypted_on_first_unlock(tmp_path):
    plain = Store(tmp_path, _plaintext=True)
    session_id = small_session(plain, b"RIFF old plaintext")
    assert (tmp_path / "sessions" / session_id / "media" / "blob.bin").read_bytes().startswith(b"RIFF")
    store = Store(tmp_path, TEST_PASSPHRASE).unlock()
    assert (tmp_path / "sessions" / session_id / "media" / "blob.bin").read_bytes()[:8] == vault.MAGIC
    assert store.read_bytes(session_id, "media/blob.bin") == b"RIFF old plaintext"
    assert Store(tmp_path, TEST_PASSPHRASE).read_json(session_id, "manifest.json")["participants"][0]["name"] == NAMES[0]


# ----- E4: no plaintext temporary files --------------------------------------------------------
def test_open_media_decrypts_chunk_by_chunk_and_leaves_no_plaintext(store, tmp_path, monkeypatch):
    from capture.media import iter_video_frames

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    session_id = import_sample(store)
    plain = np.random.default_rng(0).bytes(5 * vault.CHUNK_BYTES + 12345)
    store.write_bytes(session_id, "media/blob.bin", plain)
    with store.open_media(session_id, "media/blob.bin") as media:
        assert isinstance(media.raw, vault.DecryptingReader) and media.raw.size == len(plain)
        for offset in (0, vault.CHUNK_BYTES - 3, 3 * vault.CHUNK_BYTES + 17, len(plain) - 10, 2, len(plain) + 5):
            media.seek(offset)                                  # any order, across chunk ends
            assert media.read(vault.CHUNK_BYTES + 40) == plain[offset:offset + vault.CHUNK_BYTES + 40]
        assert len(media.raw._cached[1]) <= vault.CHUNK_BYTES   # one chunk of plaintext at a time
    with store.open_media(session_id, "media/original.mp4") as media:
        assert media.read(8)[4:8] == b"ftyp"
        media.seek(0)
        t, frame = next(iter_video_frames(media, fps=1))               # a decoder reads it as a file
        assert frame.ndim == 3
        assert [p for p in tmp.rglob("*")] == []                # nothing written anywhere
    assert list(tmp.iterdir()) == []


# ----- E5: retention and sweep -----------------------------------------------------------------
def test_retention_date_and_sweep(store):
    expired, current = small_session(store), small_session(store)
    row = store.session_row(current)
    assert date.fromisoformat(row.retention_until) > date.today()
    result = playback("retention", expired, "--until", (date.today() - timedelta(days=1)).isoformat(), store=store.root)
    assert result.returncode == 0, result.stderr
    bad = playback("retention", expired, "--until", "next tuesday", store=store.root)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    env = {k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"}
    swept = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(store.root), "sweep"], cwd=ROOT,
                           capture_output=True, text=True, env=env)             # no passphrase needed
    assert swept.returncode == 0 and f"Destroyed session {expired}" in swept.stderr
    assert [r.session_id for r in store.list_sessions()] == [current]
    assert not (store.root / "sessions" / expired).exists()
    entry = store.audit_log.entries()[-1]
    assert (entry["action"], entry["session_id"], entry["role"]) == ("sweep", expired, "system")
    assert playback("audit", "verify", store=store.root).returncode == 0


# ----- A1: the dashboard server ----------------------------------------------------------------
def test_streamlit_config_is_locked_down():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1" and config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False
    from analysis.cli import dashboard_command

    command = dashboard_command(Path("/tmp/x"), 8599)
    flags = dict(zip(command[::1], command[1::1]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.enableXsrfProtection"] == "true"


@pytest.mark.browser
def test_server_on_loopback_only_unlock_page_and_reauth_prompt_in_chromium(tmp_path):
    """A1 + A2 in a real browser; saves tests/artifacts/unlock.png and reauth.png."""
    from playwright.sync_api import sync_playwright

    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    session_id = small_session(store)
    with dashboard_server(store.root) as port:
        assert listening_sockets(port) == [f"0100007F:{port:04X}"]      # 127.0.0.1 only, no 0.0.0.0 or ::
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_text("Playback is locked").wait_for(timeout=60_000)
            assert session_id not in page.content()
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / "unlock.png"))
            page.get_by_label("Passphrase").fill("wrong passphrase")
            page.get_by_role("button", name="Unlock").click()
            page.get_by_text("does not open").wait_for(timeout=30_000)
            page.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
            page.get_by_role("button", name="Unlock").click()
            page.get_by_text(f"Session {session_id}").wait_for(timeout=60_000)
            page.get_by_role("button", name="Delete session…").click()
            page.get_by_text("Confirm it is you").wait_for(timeout=30_000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / "reauth.png"), full_page=True)
            browser.close()
    actions = [e["action"] for e in store.audit_log.entries()]
    assert "unlock_failed" in actions and actions.count("view") == 1


# ----- A2: lock when idle, ask again before export and delete (AppTest) -----------------------
def _unlocked_app(root: Path, monkeypatch, idle_min: str = "15"):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PLAYBACK_STORE", str(root))
    monkeypatch.setenv("PLAYBACK_IDLE_LOCK_MIN", idle_min)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert [t.value for t in at.title] == ["🔒 Playback is locked"] and not at.sidebar.radio
    at.text_input(key="vault_passphrase").input(TEST_PASSPHRASE)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_dashboard_locks_after_idle_time(store, monkeypatch):
    session_id = small_session(store)
    at = _unlocked_app(store.root, monkeypatch, idle_min="5")
    assert at.title[0].value == f"Session {session_id}"
    at.session_state["vault_last_activity"] = time.time() - 4 * 60     # 4 minutes idle: still open
    at.run()
    assert at.title[0].value == f"Session {session_id}"
    at.session_state["vault_last_activity"] = time.time() - 6 * 60     # 6 minutes idle: locked
    at.run()
    assert [t.value for t in at.title] == ["🔒 Playback is locked"]
    assert "Locked after 5 minutes without activity" in at.info[0].value
    assert "vault_store" not in at.session_state
    assert [e["action"] for e in store.audit_log.entries()][-1] == "idle_lock"


def test_dashboard_asks_again_before_delete(store, monkeypatch):
    session_id = small_session(store)
    at = _unlocked_app(store.root, monkeypatch)
    at.button(key="delete_start").click().run()
    assert "Confirm it is you" in " ".join(m.value for m in at.markdown)
    assert not [b for b in at.button if b.key == "delete_confirm"]
    at.text_input(key="reauth_pw_delete").input("wrong passphrase")
    next(b for b in at.button if b.label == "Confirm delete").click().run()
    assert "does not open" in at.error[0].value and store.list_sessions()
    at.text_input(key="reauth_pw_delete").input(TEST_PASSPHRASE)
    next(b for b in at.button if b.label == "Confirm delete").click().run()
    at.button(key="delete_confirm").click().run()
    assert not at.exception, at.exception
    assert store.list_sessions() == [] and not (store.root / "sessions" / session_id).exists()
    actions = [(e["action"], e["detail"]) for e in store.audit_log.entries()]
    assert ("reauth_failed", "wrong_passphrase") in actions and ("reauth", "delete") in actions
    assert actions[-1] == ("delete", "")


@pytest.mark.slow
def test_dashboard_asks_again_before_export(sample_session, monkeypatch):
    store, session_id, _ = sample_session
    at = _unlocked_app(store.root, monkeypatch)
    assert at.title[0].value == f"Session {session_id}"
    assert not [b for b in at.get("download_button")]
    at.button(key="export_start").click().run()
    assert not at.get("download_button")
    at.text_input(key="reauth_pw_export").input(TEST_PASSPHRASE)
    next(b for b in at.button if b.label == "Confirm export").click().run()
    assert not at.exception, at.exception
    (download,) = at.get("download_button")
    assert "Download Events (CSV)" in str(download.proto.label)
    assert ("reauth", "export") in [(e["action"], e["detail"]) for e in store.audit_log.entries()]
