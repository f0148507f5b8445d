"""The audit log (PRIVACY_SECURITY.md A4): hash-chained, keyed, anchored outside the store,
tamper-evident, no personal content. Forgeries against a whole store: tests/test_attacks.py."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from conftest import ROOT, TEST_PASSPHRASE

from capture.store.audit import AuditLog, anchor_dir
from capture.errors import AuditError, PlaybackError
from capture.store import Store


@pytest.fixture(autouse=True)
def anchors(tmp_path, monkeypatch):
    """Outside anchors go to this test's folder, not the real per-user state folder."""
    folder = tmp_path / "state" / "anchors"
    monkeypatch.setenv("PLAYBACK_AUDIT_ANCHOR_DIR", str(folder))
    return folder


def verify_cli(root) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"}     # no vault: no passphrase
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(root), "audit", "verify"],
                          cwd=ROOT, capture_output=True, text=True, env=env)


@pytest.fixture
def log(tmp_path):
    log = AuditLog(tmp_path)
    for action, session_id, detail in [("unlock", None, ""), ("view", "20261124-aaaaaa", ""),
                                       ("play", "20261124-aaaaaa", ""), ("export", "20261124-aaaaaa", "csv"),
                                       ("unlock_failed", None, "wrong_passphrase"), ("delete", "20261124-aaaaaa", "")]:
        log.append(action, session_id, detail=detail)
    return log


def lines(log) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_intact_log_verifies(log):
    assert log.verify().entries == 6
    result = verify_cli(log.root)
    assert result.returncode == 0 and "6 entries" in result.stdout
    assert "unauthenticated up to entry 6" in result.stdout      # no vault, so no key: said, not hidden
    first, second = log.entries()[:2]
    assert second["prev"] == first["hash"] and set(first) == {"seq", "utc", "role", "action", "session_id",
                                                               "detail", "auth", "prev", "hash", "mac"}
    assert (first["auth"], first["mac"]) == ("pending", None)


def _edit(log):
    entries = lines(log)
    entry = json.loads(entries[3])
    entry["detail"] = "rttm"                      # claim a different export
    entries[3] = json.dumps(entry, sort_keys=True) + "\n"
    log.path.write_text("".join(entries))


def _edit_and_rehash(log):
    """Edit an entry and recompute its own hash: the next entry no longer follows it."""
    from capture.store.audit import entry_hash

    entries = lines(log)
    entry = json.loads(entries[2])
    entry["action"] = "view"
    entry["hash"] = entry_hash(entry)
    entries[2] = json.dumps(entry, sort_keys=True) + "\n"
    log.path.write_text("".join(entries))


def _delete_middle(log):
    entries = lines(log)
    del entries[4]                                # hide a failed unlock
    log.path.write_text("".join(entries))


def _delete_last(log):
    log.path.write_text("".join(lines(log)[:-1]))


def _truncate_inside_entry(log):
    data = log.path.read_bytes()
    log.path.write_bytes(data[:-40])


def _empty(log):
    log.path.write_text("")


@pytest.mark.parametrize("tamper", [_edit, _edit_and_rehash, _delete_middle, _delete_last, _truncate_inside_entry,
                                    _empty])
def test_any_tampering_makes_verification_fail(log, tamper):
    tamper(log)
    with pytest.raises(AuditError):
        log.verify()
    result = verify_cli(log.root)
    assert result.returncode == 2
    assert result.stderr.startswith("playback: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_entries_cannot_carry_personal_content(tmp_path):
    log = AuditLog(tmp_path)
    with pytest.raises(PlaybackError):
        log.append("export", "20261124-aaaaaa", detail="events for Alex Smith")
    with pytest.raises(PlaybackError):
        log.append("export", "Alex Smith's session")
    with pytest.raises(PlaybackError):
        log.append("gossip")
    assert log.entries() == []


def test_store_actions_are_audited_without_names(store):
    from capture.ingest import import_media
    from conftest import SAMPLE

    session_id = import_media(store, SAMPLE / "session.mp4", "Wilhelmina Quartermaine,Bartholomew Fairweather")
    store.set_retention(session_id, "2099-01-01")
    store.delete_session(session_id)
    entries = store.audit_log.entries()
    pairs = [(e["action"], e["session_id"]) for e in entries]
    assert pairs[0] == ("vault_created", None) and pairs[-2:] == [("retention", session_id), ("delete", session_id)]
    assert ("import", session_id) in pairs
    assert {e["role"] for e in entries} == {"therapist"}
    text = store.audit_log.path.read_text()
    assert "Wilhelmina" not in text and "Bartholomew" not in text and "session.mp4" not in text
    assert store.audit_log.verify().entries == len(entries)


# ----- keys, anchors, legacy logs ---------------------------------------------------------------
def _playback(*args, root, passphrase=TEST_PASSPHRASE):
    env = {**os.environ, "PLAYBACK_PASSPHRASE": passphrase}
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(root), *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


def test_the_anchor_lives_in_the_state_folder_and_holds_no_names(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYBACK_AUDIT_ANCHOR_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert anchor_dir() == tmp_path / "xdg-state" / "playback" / "anchors"
    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    store.audit("view", "20261124-aaaaaa")
    (anchor,) = anchor_dir().iterdir()
    data = json.loads(anchor.read_text())
    assert set(data) == {"store_id", "seq", "hash", "sealed_seq", "sealed_hash", "seal"}
    assert anchor.name == f"{data['store_id']}.json" and data["seq"] == data["sealed_seq"] == 2
    assert (anchor.stat().st_mode & 0o077) == 0 and (store.root not in anchor.parents)
    assert store.verify_audit().anchored


def test_a_legacy_log_verifies_as_unauthenticated_up_to_its_last_entry(tmp_path, anchors):
    """A store from before keyed entries: old-format log, a head with seq and hash only."""
    root = tmp_path / "store"
    Store(root, TEST_PASSPHRASE).unlock().lock()
    old = AuditLog(tmp_path / "elsewhere")              # old-format entries: no auth, no mac
    for action in ("import", "view", "export"):
        old.append(action, "20261124-aaaaaa")
    entries = [{k: v for k, v in e.items() if k not in ("auth", "mac")} for e in old.entries()]
    from capture.store.audit import entry_hash

    prev = "0" * 64
    for entry in entries:
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
    (root / "audit.log").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    with sqlite3.connect(root / "index.sqlite") as con:
        con.execute("UPDATE audit_head SET seq = 3, hash = ?, store_id = NULL, sealed_seq = NULL, sealed_hash = NULL,"
                    " seal = NULL, audit_keys = NULL", (prev,))
    shutil.rmtree(anchors)

    result = _playback("audit", "verify", root=root)
    assert result.returncode == 0, result.stderr
    assert "intact: 3 entries" in result.stdout and "legacy, unauthenticated up to entry 3" in result.stdout
    assert "no outside anchor" in result.stdout
    Store(root, TEST_PASSPHRASE).unlock()                 # entries from now on are keyed
    result = _playback("audit", "verify", root=root)
    assert result.returncode == 0, result.stderr
    assert "legacy, unauthenticated up to entry 3; authenticated up to entry 4" in result.stdout
    assert "outside anchor matches" in result.stdout
    # the first keyed entry froze the legacy ones: editing one now is detected
    entries = [json.loads(line) for line in (root / "audit.log").read_text().splitlines()]
    entries[1]["action"] = "play"
    prev = entries[0]["hash"]
    for entry in entries[1:]:
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
    (root / "audit.log").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    with sqlite3.connect(root / "index.sqlite") as con:
        con.execute("UPDATE audit_head SET hash = ?, sealed_hash = ?", (prev, prev))
    result = _playback("audit", "verify", root=root)
    assert result.returncode == 2 and "entry 4 was edited" in result.stderr and result.stderr.count("\n") == 1


def test_a_new_passphrase_starts_a_new_audit_key(tmp_path):
    root = tmp_path / "store"
    store = Store(root, TEST_PASSPHRASE).unlock()
    dashboard = Store(root, TEST_PASSPHRASE).unlock()    # another holder of the old key
    store.audit("view", "20261124-aaaaaa")
    store.change_passphrase(TEST_PASSPHRASE, "a brand new passphrase")
    dashboard.audit("play", "20261124-aaaaaa")            # its key is no longer the newest: left pending
    store.audit("export", "20261124-aaaaaa", detail="csv")
    with sqlite3.connect(root / "index.sqlite") as con:
        (keys,) = con.execute("SELECT audit_keys FROM audit_head").fetchone()
    starts = [item["from"] for item in json.loads(keys)]
    entries = store.audit_log.entries()
    change = next(e["seq"] for e in entries if e["action"] == "passphrase_change")
    assert starts == [1, change]
    assert [(e["action"], e["auth"]) for e in entries[-2:]] == [("play", "pending"), ("export", "hmac")]
    result = Store(root, from_env=False).verify_audit("a brand new passphrase")
    assert result.entries == len(entries) and result.authenticated_to == len(entries) and result.anchored
    with pytest.raises(PlaybackError, match="does not open"):
        Store(root, from_env=False).verify_audit(TEST_PASSPHRASE)
