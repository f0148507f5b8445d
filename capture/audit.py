"""The audit log: hash-chained, append-only, free of personal content.

``<store>/audit.log`` holds one JSON object per line::

    {"seq": 7, "utc": "2026-11-24T10:02:03+00:00", "role": "therapist", "action": "export",
     "session_id": "20261124-1a2b3c", "detail": "csv", "prev": "<hash of entry 6>", "hash": "..."}

``hash = sha256(prev + canonical JSON of the entry without its hash)``; the first entry's
``prev`` is 64 zeros. The latest ``seq`` and ``hash`` are also kept in ``index.sqlite``
(table ``audit_head``), so cutting entries off the end is detected too. Only a role, an action
from a closed vocabulary, a random session id, a UTC time and a short code are recorded: never
a name, a note or a file name (:func:`append` refuses anything else).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from capture.errors import AuditError, PlaybackError

LOG_NAME = "audit.log"
GENESIS = "0" * 64
ACTIONS = frozenset({
    "unlock", "unlock_failed", "lock", "idle_lock", "reauth", "reauth_failed", "view", "play", "export",
    "import", "record", "analyse", "delete", "consent", "withdraw", "sweep", "retention", "passphrase_change",
    "vault_created", "migrate",
})
ROLES = frozenset({"therapist", "client", "supervisor", "system"})
_CODE = re.compile(r"^[a-z0-9_.:-]{0,40}$")
_SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Verification:
    entries: int
    head: str


def _canonical(entry: dict) -> bytes:
    return json.dumps({k: entry[k] for k in sorted(entry) if k != "hash"}, separators=(",", ":"),
                      sort_keys=True).encode()


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(entry["prev"].encode() + _canonical(entry)).hexdigest()


class AuditLog:
    """The audit log of the store at ``root``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.path = self.root / LOG_NAME

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        con = sqlite3.connect(self.root / "index.sqlite", timeout=30)
        con.execute("CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
                    " seq INTEGER NOT NULL, hash TEXT NOT NULL)")
        return con

    @contextlib.contextmanager
    def _locked(self):
        """Serialise writers across processes (the CLI and the dashboard may both append)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root / ".audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:  # Windows: single-process use
                pass
            yield
        finally:
            os.close(fd)

    def append(self, action: str, session_id: str | None = None, *, role: str = "therapist",
               detail: str = "") -> dict:
        """Add one entry. ``detail`` is a short lower-case code (``csv``, ``expired``, ...)."""
        if action not in ACTIONS:
            raise PlaybackError(f"Unknown audit action {action!r}; use one of {', '.join(sorted(ACTIONS))}.")
        if role not in ROLES:
            raise PlaybackError(f"Unknown audit role {role!r}; use one of {', '.join(sorted(ROLES))}.")
        if session_id is not None and not _SESSION.match(session_id):
            raise PlaybackError("An audit entry names a session by its id only.")
        if not _CODE.match(detail or ""):
            raise PlaybackError("An audit detail is a short code (a-z, 0-9, _.:-), never free text.")
        with self._locked(), contextlib.closing(self._connect()) as con, con:
            row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            seq, prev = row if row else (0, GENESIS)
            entry = {"seq": seq + 1, "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "role": role, "action": action, "session_id": session_id, "detail": detail or "", "prev": prev}
            entry["hash"] = entry_hash(entry)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, json.dumps(entry, sort_keys=True).encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            con.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", (entry["seq"], entry["hash"]))
        return entry

    def entries(self) -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AuditError(f"Audit log entry {number} is not readable: the log was edited or cut.") from None
        return out

    def verify(self) -> Verification:
        """Check the whole chain and its head; raise :class:`AuditError` naming the first bad entry."""
        prev = GENESIS
        entries = self.entries()
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not {"seq", "prev", "hash", "action"} <= set(entry):
                raise AuditError(f"Audit log entry {number} is malformed: the log was edited.")
            if entry["seq"] != number:
                raise AuditError(f"Audit log entry {number} has number {entry['seq']}: an entry was removed or added.")
            if entry["prev"] != prev:
                raise AuditError(f"Audit log entry {number} does not follow entry {number - 1}: an entry was removed.")
            if entry_hash(entry) != entry["hash"]:
                raise AuditError(f"Audit log entry {number} was edited (its hash does not match).")
            prev = entry["hash"]
        with contextlib.closing(self._connect()) as con:
            row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        seq, head = row if row else (0, GENESIS)
        if (len(entries), prev) != (seq, head):
            raise AuditError(f"The audit log ends at entry {len(entries)} but {seq} were written: "
                             "entries were cut off the end.")
        return Verification(len(entries), prev)


__all__ = ["AuditLog", "ACTIONS", "ROLES", "Verification", "entry_hash"]
