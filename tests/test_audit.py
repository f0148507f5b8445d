"""The audit log (PRIVACY_SECURITY.md A4): hash-chained, tamper-evident, no personal content."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

from capture.audit import AuditLog
from capture.errors import AuditError, PlaybackError


def verify_cli(root) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PLAYBACK_PASSPHRASE"}     # needs no passphrase
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
    first, second = log.entries()[:2]
    assert second["prev"] == first["hash"] and set(first) == {"seq", "utc", "role", "action", "session_id",
                                                               "detail", "prev", "hash"}


def _edit(log):
    entries = lines(log)
    entry = json.loads(entries[3])
    entry["detail"] = "rttm"                      # claim a different export
    entries[3] = json.dumps(entry, sort_keys=True) + "\n"
    log.path.write_text("".join(entries))


def _edit_and_rehash(log):
    """Edit an entry and recompute its own hash: the next entry no longer follows it."""
    from capture.audit import entry_hash

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
    from capture.importer import import_media
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
