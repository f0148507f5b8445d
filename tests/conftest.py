"""Shared fixtures: real data from ../shared, a temporary store, the analysed sample session."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLE = ROOT / "sample_data"
ARTIFACTS = ROOT / "tests" / "artifacts"

os.environ.setdefault("PLAYBACK_MODEL_DIR", str(SHARED / "models"))
os.environ["PLAYBACK_OFFLINE"] = "1"
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
# The vault: tests (and the CLI they start) unlock with this passphrase; cheaper scrypt for
# vaults made inside the test process (its parameters are stored with each vault).
TEST_PASSPHRASE = "test passphrase for the vault"
os.environ["PLAYBACK_PASSPHRASE"] = TEST_PASSPHRASE
# The audit log's outside anchors (see capture/store/audit.py) go to a folder of this run, not the user's.
os.environ.setdefault("PLAYBACK_AUDIT_ANCHOR_DIR", tempfile.mkdtemp(prefix="playback-anchors-"))
import capture.store.vault  # noqa: E402

capture.store.vault.SCRYPT_N = 2**14


def shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.fail(f"missing shared test data {path}: ../shared must sit beside the project")
    return path


@pytest.fixture
def store(tmp_path):
    from capture.store import Store

    return Store(tmp_path / "store").unlock()


@pytest.fixture(scope="session")
def sample_session(tmp_path_factory):
    """The bundled sample imported as Alex (left) and Sam (right) and analysed once."""
    from analysis.pipeline import analyze
    from capture.ingest import import_media
    from capture.store import Store

    store = Store(tmp_path_factory.mktemp("sample-store"))
    session_id = import_media(store, SAMPLE / "session.mp4", "Alex,Sam")
    records = analyze(store, session_id)
    return store, session_id, records


@pytest.fixture
def sample_copy(sample_session, tmp_path, monkeypatch):
    """The analysed sample in a copy of its store, its notes (decisions, picks, vetoes, added
    moments of other tests) removed and its audit anchor copied beside it."""
    import shutil

    import capture.store.audit as audit
    from capture.store import Store

    store, session_id, _ = sample_session
    shutil.copytree(store.root, tmp_path / "store")
    shutil.copytree(audit.anchor_dir(), tmp_path / "anchors")
    monkeypatch.setenv(audit.ANCHOR_ENV, str(tmp_path / "anchors"))
    copy = Store(tmp_path / "store").unlock(TEST_PASSPHRASE)
    if copy.exists(session_id, "notes.json"):
        copy.delete_file(session_id, "notes.json")
    return copy, session_id


def unlocked_app(page: str | None = None):
    """The dashboard (``app.py``) in Streamlit's AppTest, unlocked with :data:`TEST_PASSPHRASE`,
    on ``page`` (the sidebar's choice) if given; the store is ``$PLAYBACK_STORE``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.text_input(key="vault_passphrase").input(TEST_PASSPHRASE)
    at.button[0].click().run()
    if page:
        at.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    return at


def launch_chromium(playwright):
    """Debian's headless Chromium (Playwright cannot download its own browser here), with no
    background network traffic."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


def listening_sockets(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp{,6}) with a socket listening on ``port``."""
    sockets = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            for line in open(table).read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):
                    sockets.append(fields[1])
    return sockets


@contextlib.contextmanager
def dashboard_server(store_root: Path, *, env: dict | None = None, timeout_s: float = 60):
    """``playback dashboard`` started for real on a free port; yields the port once it listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"dashboard-{port}.log", "w")      # never a pipe nobody reads: a full one blocks the app
    server = subprocess.Popen([sys.executable, "-m", "analysis.cli", "--store", str(store_root), "dashboard",
                               "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + timeout_s
        while not listening_sockets(port):
            if time.time() > deadline or server.poll() is not None:
                raise TimeoutError(f"the dashboard did not start on port {port}")
            time.sleep(0.3)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
