"""Forging the audit log (issue 17): real forgeries against a real store on disk, checked by the
real ``playback audit verify``. The attacker edits files only (audit.log, index.sqlite, the
anchor when they can reach it); they know every algorithm but not the passphrase."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TEST_PASSPHRASE

from capture.store import Store

SESSION = "20261124-aaaaaa"


@pytest.fixture(autouse=True)
def anchors(tmp_path, monkeypatch) -> Path:
    """The outside anchors for this test: a per-user state folder that is not the store."""
    folder = tmp_path / "state" / "anchors"
    monkeypatch.setenv("PLAYBACK_AUDIT_ANCHOR_DIR", str(folder))
    return folder


def playback(*args: str, root: Path, passphrase: str | None = TEST_PASSPHRASE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"}
    if passphrase is not None:
        env["PLAYBACK_PASSPHRASE"] = passphrase
    return subprocess.run([sys.executable, "-m", "analysis.cli", "--store", str(root), *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


def verify(root: Path) -> subprocess.CompletedProcess:
    return playback("audit", "verify", root=root)


def assert_detected(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("playback: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "intact" not in result.stdout
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def root(tmp_path) -> Path:
    """A store used for a while: a session imported and viewed, locked, unlocked again through
    the command line (so the last entries are authenticated: ``unlock``, ``retention``)."""
    root = tmp_path / "store"
    store = Store(root, TEST_PASSPHRASE).unlock()
    with store.new_session(duration_s=1.0) as session_id:
        store.write_bytes(session_id, "media/blob.bin", b"x" * 100)
    store.audit("view", session_id)
    store.audit("export", session_id, detail="csv")
    store.lock()
    result = playback("retention", session_id, "--days", "30", root=root)     # a real unlock by the CLI
    assert result.returncode == 0, result.stderr
    actions = [e["action"] for e in read_log(root)]
    assert actions[-3:] == ["lock", "unlock", "retention"]
    return root


# ----- what the attacker does --------------------------------------------------------------------
def read_log(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "audit.log").read_text().splitlines()]


def write_log(root: Path, entries: list[dict]) -> None:
    (root / "audit.log").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


def rehash(entries: list[dict], start: int = 0) -> None:
    """Recompute the chain from ``entries[start]`` on: sha256(prev + canonical JSON without hash
    and MAC), exactly as Playback does; MACs cannot be recomputed without the passphrase."""
    prev = entries[start - 1]["hash"] if start else "0" * 64
    for entry in entries[start:]:
        entry["prev"] = prev
        body = json.dumps({k: v for k, v in entry.items() if k not in ("hash", "mac")}, separators=(",", ":"),
                          sort_keys=True)
        entry["hash"] = prev = hashlib.sha256(prev.encode() + body.encode()).hexdigest()


def set_head(root: Path, entries: list[dict]) -> None:
    """Point index.sqlite's head at the last entry; move every head column the attacker can compute."""
    with sqlite3.connect(root / "index.sqlite") as con:
        con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (len(entries), entries[-1]["hash"]))
        columns = {row[1] for row in con.execute("PRAGMA table_info(audit_head)")}
        if "sealed_seq" in columns:
            sealed = [e for e in entries if e.get("auth") == "hmac"]
            if sealed:
                con.execute("UPDATE audit_head SET sealed_seq = ?, sealed_hash = ? WHERE id = 1",
                            (sealed[-1]["seq"], sealed[-1]["hash"]))


def clear_head(root: Path, *names: str) -> None:
    """Blank these columns of index.sqlite's audit head (those that exist)."""
    with sqlite3.connect(root / "index.sqlite") as con:
        columns = {row[1] for row in con.execute("PRAGMA table_info(audit_head)")}
        for name in set(names) & columns:
            con.execute(f"UPDATE audit_head SET {name} = NULL WHERE id = 1")


# ----- the attacks -------------------------------------------------------------------------------
def test_an_untouched_log_verifies(root, anchors):
    result = verify(root)
    assert result.returncode == 0, result.stderr
    n = len(read_log(root))
    assert f"intact: {n} entries" in result.stdout and f"authenticated up to entry {n}" in result.stdout
    assert "outside anchor matches" in result.stdout and "legacy" not in result.stdout
    assert {e["auth"] for e in read_log(root)} == {"hmac"} and all(len(e["mac"]) == 64 for e in read_log(root))
    assert [p.name for p in anchors.iterdir()] and not any(anchors.glob(".tmp-*"))
    assert len(read_log(root)) == n                  # verifying wrote nothing, did not unlock


def test_cutting_the_last_two_entries_and_moving_the_head_is_detected(root):
    """(a) Cut the last two entries, set the head in index.sqlite to the new last one."""
    entries = read_log(root)[:-2]
    write_log(root, entries)
    set_head(root, entries)
    assert_detected(verify(root), "cut off the end")


def test_rolling_the_whole_store_back_to_an_older_copy_is_detected(root, tmp_path):
    """(a') A consistent older copy of audit.log and index.sqlite (a backup, a snapshot) put back:
    everything in the store agrees, only the anchor outside it remembers."""
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for name in ("audit.log", "index.sqlite"):
        shutil.copy2(root / name, snapshot / name)
    session_id = read_log(root)[-1]["session_id"]
    assert playback("retention", session_id, "--days", "40", root=root).returncode == 0
    assert playback("delete", session_id, "--yes", root=root).returncode == 0
    for name in ("audit.log", "index.sqlite"):
        shutil.copy2(snapshot / name, root / name)
    assert_detected(verify(root), "rolled back")


def test_rewriting_an_unlock_as_a_delete_is_detected(root):
    """(b) Change an entry from unlock to delete, recompute every hash and the head."""
    entries = read_log(root)
    at = max(i for i, e in enumerate(entries) if e["action"] == "unlock")
    entries[at].update(action="delete", session_id=SESSION)
    rehash(entries, at)
    write_log(root, entries)
    set_head(root, entries)
    assert_detected(verify(root), f"entry {at + 1} was edited")


def test_rewriting_an_unlock_and_dropping_every_authentication_code_is_detected(root):
    """(b') The same, with the MACs stripped (entries marked as written while locked) and the
    audit keys and authenticated head removed from index.sqlite: the anchor outside remembers."""
    entries = read_log(root)
    at = max(i for i, e in enumerate(entries) if e["action"] == "unlock")
    entries[at].update(action="delete", session_id=SESSION)
    for entry in entries:
        entry.update(auth="pending", mac=None)
    rehash(entries)
    write_log(root, entries)
    set_head(root, entries)
    clear_head(root, "sealed_seq", "sealed_hash", "seal", "audit_keys")
    assert_detected(verify(root), "outside")


def _fail_an_unlock(root: Path) -> int:
    """A wrong passphrase through the command line: written while the store is locked."""
    session_id = next(e["session_id"] for e in read_log(root) if e["action"] == "import")
    wrong = playback("retention", session_id, "--days", "30", root=root, passphrase="not the passphrase")
    assert wrong.returncode == 2 and "does not open" in wrong.stderr
    entries = read_log(root)
    assert entries[-1]["action"] == "unlock_failed"      # "auth": "pending": it carries no MAC
    return len(entries) - 1


def _hide_the_failed_unlock(root: Path, at: int) -> None:
    entries = read_log(root)
    entries[at].update(action="lock", detail="")
    rehash(entries, at)
    write_log(root, entries)
    set_head(root, entries)


def test_editing_an_entry_written_while_locked_is_detected(root):
    """(c) The failed unlock (written while locked, no MAC yet) turned into a harmless lock."""
    at = _fail_an_unlock(root)
    assert verify(root).returncode == 0
    _hide_the_failed_unlock(root, at)
    assert_detected(verify(root), f"entry {at + 1}", "outside the store")


def test_an_edit_made_while_locked_is_recorded_by_the_next_unlock(root, anchors):
    """(c) continued: the next unlock does not seal the edit; it records an authenticated alarm
    that stays even when the attacker also deletes the outside anchor."""
    at = _fail_an_unlock(root)
    _hide_the_failed_unlock(root, at)
    session_id = next(e["session_id"] for e in read_log(root) if e["action"] == "import")
    unlocked = playback("retention", session_id, "--days", "31", root=root)
    assert unlocked.returncode == 0, unlocked.stderr             # the therapist is not locked out
    assert_detected(verify(root), "while the store was locked")
    actions = [(e["action"], e.get("auth")) for e in read_log(root)]
    assert ("audit_alarm", "hmac") in actions and actions[-1] == ("retention", "hmac")
    shutil.rmtree(anchors)
    assert_detected(verify(root), "while the store was locked")


def test_editing_a_locked_time_entry_after_the_unlock_sealed_it_is_detected(root):
    """(c) once sealed: the unlock's MAC covers the failed unlock through the chain."""
    at = _fail_an_unlock(root)
    session_id = next(e["session_id"] for e in read_log(root) if e["action"] == "import")
    assert playback("retention", session_id, "--days", "31", root=root).returncode == 0
    assert verify(root).returncode == 0
    _hide_the_failed_unlock(root, at)
    assert_detected(verify(root), f"entry {at + 2} was edited")


def test_without_head_and_anchor_authenticated_entries_still_verify(root, anchors):
    """What is left to someone who can write to the store *and* the state folder: with both
    heads gone a cut at the end passes, but an edited authenticated entry still fails."""
    clear_head(root, "sealed_seq", "sealed_hash", "seal")
    shutil.rmtree(anchors)
    entries = read_log(root)
    entries[1]["detail"] = "rttm"
    rehash(entries, 1)
    write_log(root, entries)
    set_head(root, entries)
    assert_detected(verify(root), "entry 2 was edited")


def test_verifying_needs_the_passphrase(root):
    before = len(read_log(root))
    result = playback("audit", "verify", root=root, passphrase=None)
    assert result.returncode == 2 and "PLAYBACK_PASSPHRASE" in result.stderr and result.stderr.count("\n") == 1
    wrong = playback("audit", "verify", root=root, passphrase="not the passphrase")
    assert wrong.returncode == 2 and "does not open" in wrong.stderr
    entries = read_log(root)
    assert len(entries) == before + 1 and entries[-1]["action"] == "unlock_failed"   # a wrong one is audited
