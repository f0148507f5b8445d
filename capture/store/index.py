"""The store's SQLite index, ``index.sqlite``: one row per session, plus the vault's row.

A session row holds its id, creation time (UTC, ISO seconds), status, duration (seconds),
retention date (ISO), wrapped data key and the id of its case: no personal content. A case (a
couple or a group) has a row of its own whose name and people are sealed under the master key
(:mod:`capture.store.cases`). A session being created has a
status starting with :data:`PENDING` until its folder is in ``sessions/``. The index holds the
keys, so a store that lost (or had replaced) its index is refused rather than given a new one.
"""
from __future__ import annotations

import contextlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from capture.errors import SessionNotFoundError, StoreIndexMissingError

SCHEMA_VERSION = 1
INDEX_NAME = "index.sqlite"
PENDING = "pending:"                 # status prefix of a session whose creation has not finished

_ROW = "session_id, created_utc, status, duration_s, retention_until, case_id"


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_session_id() -> str:
    """An id like ``20261124-1a2b3c``: date of creation plus random hex, no personal content."""
    return datetime.now(timezone.utc).strftime("%Y%m%d") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    created_utc: str                     # ISO UTC time
    status: str
    duration_s: float | None             # seconds
    retention_until: str | None = None   # ISO date; the sweep destroys the session after it
    case_id: str | None = None           # the couple or group it belongs to (capture.store.cases)


class Index:
    """The index of the store rooted at ``root`` (``root / INDEX_NAME``)."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / INDEX_NAME

    def connect(self) -> sqlite3.Connection:
        """An open connection, the tables created (or migrated) first; refuses a lost index."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            self.refuse_lost_index()
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA secure_delete = ON")   # a deleted wrapped key is overwritten, not left in a free page
        con.execute(
            "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, created_utc TEXT"
            " NOT NULL, status TEXT NOT NULL, duration_s REAL, schema_version INTEGER NOT NULL,"
            " retention_until TEXT, wrapped_key BLOB)"
        )
        columns = {row[1] for row in con.execute("PRAGMA table_info(sessions)")}
        for column, kind in (("retention_until", "TEXT"), ("wrapped_key", "BLOB"), ("case_id", "TEXT")):
            if column not in columns:      # a store made before the vault (or before cases)
                con.execute(f"ALTER TABLE sessions ADD COLUMN {column} {kind}")
        con.execute(
            "CREATE TABLE IF NOT EXISTS vault (id INTEGER PRIMARY KEY CHECK (id = 1), kdf TEXT NOT NULL,"
            " check_blob BLOB NOT NULL, created_utc TEXT NOT NULL, failed_attempts INTEGER NOT NULL DEFAULT 0,"
            " last_failure REAL NOT NULL DEFAULT 0)"
        )
        con.execute("CREATE TABLE IF NOT EXISTS cases (case_id TEXT PRIMARY KEY, created_utc TEXT NOT NULL,"
                    " sealed BLOB NOT NULL)")
        return con

    def _execute(self, sql: str, *params) -> None:
        """Run one statement in its own transaction."""
        with contextlib.closing(self.connect()) as con, con:
            con.execute(sql, params)

    # ----- a lost or replaced index ---------------------------------------------------------------
    def refuse_lost_index(self) -> None:
        """A store that has sessions or an audit log but no index lost its keys: say so, and never
        create a fresh index (and vault) over it."""
        sessions = self.root / "sessions"
        folders = [p for p in sessions.iterdir() if p.is_dir()] if sessions.is_dir() else []
        if folders or (self.root / "audit.log").is_file():
            raise StoreIndexMissingError(
                f"The store at {self.root} has {len(folders)} session folder(s) and an audit log but no "
                f"{INDEX_NAME}, which holds the session keys: restore {INDEX_NAME} from your backup into "
                "that folder; Playback will not create a new one over existing sessions.")

    def refuse_replaced_index(self) -> None:
        """An index without a vault beside an audit log or session folders it does not list was
        replaced (or emptied): a new vault over it would orphan those sessions for good."""
        log = self.root / "audit.log"
        orphans = self.orphan_folders()
        legacy = bool(self.list_sessions())   # a store made before the vault: its rows get keys now
        if orphans or (log.is_file() and log.stat().st_size > 0 and not legacy):
            raise StoreIndexMissingError(
                f"The store at {self.root} has an audit log or {len(orphans)} session folder(s) that its "
                f"{INDEX_NAME} does not know: the index was replaced or emptied. Restore {INDEX_NAME} from your "
                "backup; Playback will not create a new vault over existing sessions.")

    def orphan_folders(self) -> list[Path]:
        """Session folders with no row in the index: their key is not here, so they cannot be read."""
        folder = self.root / "sessions"
        if not folder.is_dir():
            return []
        known = {row.session_id for row in self.list_sessions()}
        return sorted(path for path in folder.iterdir() if path.is_dir() and path.name not in known)

    # ----- rows -------------------------------------------------------------------------------------
    def list_sessions(self) -> list[SessionRow]:
        """All sessions, newest first (ids, dates and status only: no key needed)."""
        with contextlib.closing(self.connect()) as con:
            rows = con.execute(
                f"SELECT {_ROW} FROM sessions ORDER BY created_utc DESC, session_id"
            ).fetchall()
        return [SessionRow(*row) for row in rows]

    def session_row(self, session_id: str) -> SessionRow:
        """The row of ``session_id``; raises :class:`SessionNotFoundError` if there is none."""
        with contextlib.closing(self.connect()) as con:
            row = con.execute(
                f"SELECT {_ROW} FROM sessions WHERE session_id=?",
                (session_id,),
            ).fetchone()
        if row is None:
            raise SessionNotFoundError(
                f"No session '{session_id}' in the store at {self.root}; "
                "run 'playback sessions' to list the ids."
            )
        return SessionRow(*row)

    def set_status(self, session_id: str, status: str) -> None:
        """Give an existing session ``status`` (raises :class:`SessionNotFoundError`)."""
        self.session_row(session_id)
        self.write_status(session_id, status)

    def write_status(self, session_id: str, status: str) -> None:
        """Set the status column, unchecked."""
        self._execute("UPDATE sessions SET status=? WHERE session_id=?", status, session_id)

    def set_duration(self, session_id: str, duration_s: float | None) -> None:
        """Set the duration (seconds)."""
        self._execute("UPDATE sessions SET duration_s=? WHERE session_id=?", duration_s, session_id)

    def set_retention(self, session_id: str, until: str) -> None:
        """Set the retention date (ISO)."""
        self._execute("UPDATE sessions SET retention_until=? WHERE session_id=?", until, session_id)

    def erase_row(self, session_id: str) -> None:
        """Overwrite the row's wrapped key, then delete the row (one transaction)."""
        with contextlib.closing(self.connect()) as con, con:
            con.execute("UPDATE sessions SET wrapped_key = NULL WHERE session_id=?", (session_id,))
            con.execute("DELETE FROM sessions WHERE session_id=?", (session_id,))

    # ----- keys in rows -------------------------------------------------------------------------------
    def wrapped_key(self, session_id: str) -> tuple | None:
        """``(wrapped key or None,)`` for ``session_id``, None if it has no row."""
        with contextlib.closing(self.connect()) as con:
            return con.execute("SELECT wrapped_key FROM sessions WHERE session_id=?", (session_id,)).fetchone()

    def unkeyed_sessions(self) -> list[str]:
        """Ids of rows without a wrapped key: sessions written before the vault existed."""
        with contextlib.closing(self.connect()) as con:
            return [r[0] for r in con.execute("SELECT session_id FROM sessions WHERE wrapped_key IS NULL")]

    def set_key(self, session_id: str, wrapped: bytes, retention_until: str) -> None:
        """Store a session's first wrapped key; ``retention_until`` (ISO) only if it has no date."""
        self._execute("UPDATE sessions SET wrapped_key=?, retention_until=COALESCE(retention_until, ?)"
                      " WHERE session_id=?", wrapped, retention_until, session_id)

    # ----- pending rows: sessions being created ---------------------------------------------------------
    def insert_pending(self, session_id: str, status: str, duration_s: float | None, retention_until: str,
                       wrapped: bytes | None, case_id: str | None = None) -> None:
        """Add the row of a session being created, its status ``PENDING + status``."""
        self._execute(
            "INSERT INTO sessions (session_id, created_utc, status, duration_s, schema_version,"
            " retention_until, wrapped_key, case_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            session_id, utc_now(), PENDING + status, duration_s, SCHEMA_VERSION, retention_until, wrapped, case_id,
        )

    def set_case(self, session_id: str, case_id: str | None) -> None:
        """Put an existing session in case ``case_id`` (None: in no case)."""
        self.session_row(session_id)
        self._execute("UPDATE sessions SET case_id=? WHERE session_id=?", case_id, session_id)

    def case_sessions(self, case_id: str) -> list[SessionRow]:
        """The sessions of ``case_id``, oldest first (in the order they were made)."""
        with contextlib.closing(self.connect()) as con:
            rows = con.execute(f"SELECT {_ROW} FROM sessions WHERE case_id=? ORDER BY created_utc, rowid",
                               (case_id,)).fetchall()
        return [SessionRow(*row) for row in rows]

    # ----- cases: sealed rows ---------------------------------------------------------------------
    def case_rows(self) -> list[tuple[str, str, bytes]]:
        """``(case id, created UTC, sealed details)`` of every case, oldest first (in the order made)."""
        with contextlib.closing(self.connect()) as con:
            return con.execute("SELECT case_id, created_utc, sealed FROM cases ORDER BY created_utc, rowid").fetchall()

    def insert_case(self, case_id: str, sealed: bytes) -> None:
        self._execute("INSERT INTO cases (case_id, created_utc, sealed) VALUES (?, ?, ?)", case_id, utc_now(), sealed)

    def update_case(self, case_id: str, sealed: bytes) -> None:
        self._execute("UPDATE cases SET sealed=? WHERE case_id=?", sealed, case_id)

    def delete_case(self, case_id: str) -> None:
        """Delete a case's row; its sessions are left in no case."""
        with contextlib.closing(self.connect()) as con, con:
            con.execute("UPDATE sessions SET case_id = NULL WHERE case_id=?", (case_id,))
            con.execute("DELETE FROM cases WHERE case_id=?", (case_id,))

    def discard_pending(self, session_id: str) -> None:
        """Delete the row of ``session_id`` if it is still pending."""
        self._execute("DELETE FROM sessions WHERE session_id=? AND status LIKE ?", session_id, PENDING + "%")

    def pending(self) -> list[tuple[str, str]]:
        """``(session id, status it will have)`` of every pending row."""
        with contextlib.closing(self.connect()) as con:
            rows = con.execute("SELECT session_id, status FROM sessions WHERE status LIKE ?", (PENDING + "%",)).fetchall()
        return [(session_id, status[len(PENDING):]) for session_id, status in rows]
