"""Cases: a couple or group with its people, sealed in the index; sessions belong to them."""
from __future__ import annotations

import subprocess
import sys

import pytest

from capture.errors import PlaybackError, StoreLockedError
from capture.ingest import import_media
from capture.store import Store
from tests.conftest import ROOT, TEST_PASSPHRASE
from tests.media_factory import make_media


def test_a_case_keeps_its_people_sealed_and_its_sessions(store, tmp_path):
    case = store.cases.create("Alex & Sam", ["Alex", "Sam"])
    assert (case.name, case.people) == ("Alex & Sam", ("Alex", "Sam"))
    media = make_media(tmp_path / "a.mp4", seconds=2.0)
    first = import_media(store, media, ",".join(case.people), case_id=case.case_id)
    other = import_media(store, media, "Kim,Lou")
    assert [r.session_id for r in store.cases.sessions(case.case_id)] == [first]
    assert store.session_row(other).case_id is None
    store.cases.assign(other, case.case_id)
    assert {r.session_id for r in store.cases.sessions(case.case_id)} == {first, other}
    # the index names the case by a random id only: no name of the case or its people in it
    index = (store.root / "index.sqlite").read_bytes()
    assert case.case_id.encode() in index
    assert b"Alex & Sam" not in index and b"Sam" not in index
    # a new passphrase re-seals the case; a locked store cannot read it
    store.change_passphrase(TEST_PASSPHRASE, "another passphrase here")
    reopened = Store(store.root, "another passphrase here")
    assert reopened.cases.get(case.case_id).people == ("Alex", "Sam")
    with pytest.raises(StoreLockedError):
        Store(store.root, from_env=False).cases.all()
    with pytest.raises(PlaybackError, match="No case"):
        reopened.cases.assign(other, "case-000000")
    with pytest.raises(PlaybackError, match="same name"):
        reopened.cases.create("Group", ["Kim", "kim"])
    reopened.cases.delete(case.case_id)
    assert reopened.session_row(first).case_id is None and reopened.cases.all() == []


def test_cases_from_the_command_line(tmp_path):
    root = tmp_path / "store"

    def cli(*args):
        result = subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(root), *args], cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert "Traceback" not in result.stderr
        return result

    made = cli("case", "new", "Kim, Lou & Max", "--people", "Kim,Lou,Max")
    assert made.returncode == 0, made.stderr
    case_id = made.stdout.strip()
    media = make_media(tmp_path / "a.mp4", seconds=2.0)
    imported = cli("import", str(media), "--case", case_id)        # the case's people are the participants
    assert imported.returncode == 0, imported.stderr
    session_id = imported.stdout.strip().splitlines()[-1]
    store = Store(root, TEST_PASSPHRASE)
    assert [p["name"] for p in store.manifest(session_id)["participants"]] == ["Kim", "Lou", "Max"]
    assert store.session_row(session_id).case_id == case_id
    listing = cli("cases").stdout
    assert case_id in listing and "Kim, Lou & Max" in listing and "1 session(s)" in listing
    assert case_id in cli("sessions").stdout
    missing = cli("import", str(media))
    assert missing.returncode == 2 and "--participants" in missing.stderr
