"""The session store: the one place that reads and writes session files.

Layout under the store root (``--store DIR``, else ``PLAYBACK_STORE``, else a per-user data
directory)::

    index.sqlite                 session ids, creation time (UTC), status, duration, retention
                                 date, wrapped session keys, vault parameters: no personal content
    audit.log                    hash-chained audit log (capture/store/audit.py)
    sessions/<session_id>/
        manifest.json            participants, media streams, duration_s, offsets
        media/                   original and normalised media
        derived/                 one artifact per analysis stage + <stage>.run.json
    staging/<session_id>/        a session being created; moved into sessions/ when complete

Every read and write of a session's files goes through :class:`Store`, so that encryption at
rest lives in this package only. Session ids carry no personal names.

The vault: every session file is encrypted with the session's own data key (chunked
AES-256-GCM, see :mod:`capture.store.vault`); data keys are wrapped by a master key derived from the
therapist's passphrase. A store is *locked* until it has the passphrase: ``Store(root,
passphrase)``, ``store.unlock(passphrase)``, or ``PLAYBACK_PASSPHRASE`` in the environment
(scripted use; ``from_env=False`` ignores it, as the dashboard does). Reading a session file
while locked raises :class:`StoreLockedError`. Deleting a session destroys its key
(crypto-erase); the retention sweep and withdrawal of consent use the same path.

:class:`Store` is a facade over its parts, each also reachable as an attribute:
``store.index`` (:mod:`capture.store.index`, the SQLite index), ``store.files``
(:mod:`capture.store.files`, encrypted files, JSON, tables, media), ``store.keys``
(:mod:`capture.store.keys`, the vault and session keys), ``store.retention``
(:mod:`capture.store.retention`, retention dates, deletion, sweep) and ``store.audit_log``
(:mod:`capture.store.audit`).
"""
from __future__ import annotations

import contextlib
import os
import time
from datetime import date
from pathlib import Path
from typing import BinaryIO, Iterator

import pandas as pd

from capture.store.audit import AuditLog, Verification
from capture.store.cases import Case, Cases
from capture.store.files import Files
from capture.store.index import (
    INDEX_NAME,
    PENDING,
    SCHEMA_VERSION,
    Index,
    SessionRow,
    new_session_id,
    utc_now,
)
from capture.store.keys import (
    FREE_ATTEMPTS,
    MIN_PASSPHRASE_CHARS,
    Keys,
    _retry_wait,
    _wait_text,
)
from capture.store.retention import (
    DEFAULT_RETENTION_DAYS,
    Retention,
    default_retention_days,
    retention_until,
)

__all__ = [
    "Case", "DEFAULT_RETENTION_DAYS", "FREE_ATTEMPTS", "INDEX_NAME", "MIN_PASSPHRASE_CHARS",
    "PENDING", "SCHEMA_VERSION", "SessionRow", "Store", "default_retention_days", "default_store_root",
    "new_session_id", "utc_now", "_retry_wait", "_wait_text",
]


def default_store_root() -> Path:
    """``PLAYBACK_STORE`` if set, else the per-user data directory (XDG on Linux)."""
    if os.environ.get("PLAYBACK_STORE"):
        return Path(os.environ["PLAYBACK_STORE"]).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "playback"


def _clock() -> float:
    """Seconds since the epoch, through this module's ``time`` (so one clock serves every part)."""
    return time.time()


class Store:
    """Session store rooted at ``root`` (created on first use, private to the user).

    ``passphrase`` (else ``PLAYBACK_PASSPHRASE`` when ``from_env``) unlocks it on first need;
    the first unlock of a new store creates its vault with that passphrase. ``role`` is what
    the audit log records as *who*. ``_plaintext`` is for the encryption benchmark only.
    """

    def __init__(self, root: Path | str | None = None, passphrase: str | None = None, *, from_env: bool = True,
                 role: str = "therapist", _plaintext: bool = False):
        self.root = Path(root).expanduser() if root else default_store_root()
        if passphrase is None and from_env:
            passphrase = os.environ.get("PLAYBACK_PASSPHRASE") or None
        self.role = role
        self.audit_log = AuditLog(self.root)
        self.index = Index(self.root)
        self.keys = Keys(self.index, self.audit_log, audit=self.audit, passphrase=passphrase,
                         plaintext=_plaintext, clock=_clock)
        self.files = Files(self.root, None if _plaintext else self.keys.data_key)
        self.cases = Cases(self.index, self.keys, audit=self.audit)   # couples and groups, sealed
        self.retention = Retention(self.index, self.files, forget_key=self.keys.forget, audit=self.audit,
                                   clock=_clock)

    @classmethod
    def for_one_session(cls, root: Path | str, session_id: str, data_key: bytes | None) -> "Store":
        """A store that can read and write ``session_id`` only: an analysis worker's. It holds
        that session's data key and never the passphrase or the master key (None: a plaintext
        store, the encryption benchmark's)."""
        store = cls(root, from_env=False, role="system", _plaintext=data_key is None)
        store.keys.hold(session_id, data_key)
        return store

    # ----- index -------------------------------------------------------------------------------
    def list_sessions(self) -> list[SessionRow]:
        """All sessions, newest first (ids, dates and status only: no key needed)."""
        return self.index.list_sessions()

    def session_row(self, session_id: str) -> SessionRow:
        return self.index.session_row(session_id)

    def set_status(self, session_id: str, status: str) -> None:
        self.index.set_status(session_id, status)

    def set_duration(self, session_id: str, duration_s: float | None) -> None:
        """Set the duration (seconds)."""
        self.index.set_duration(session_id, duration_s)

    def orphan_folders(self) -> list[Path]:
        """Session folders with no row in the index: their key is not here, so they cannot be read."""
        return self.index.orphan_folders()

    def _refuse_lost_index(self) -> None:
        self.index.refuse_lost_index()

    # ----- creating sessions -------------------------------------------------------------------
    @contextlib.contextmanager
    def new_session(self, duration_s: float | None = None, *, retention_days: int | None = None,
                    status: str = "imported", case_id: str | None = None) -> Iterator[str]:
        """Create a session atomically: files are written in staging and the session appears
        (folder moved, index row with its wrapped key added) only if the ``with`` body
        completes. On any error the staging folder is removed and the new key forgotten, so no
        half-made session is left behind (and leftovers could not be read anyway).
        ``duration_s`` is seconds, ``retention_days`` days (default: default_retention_days());
        ``case_id`` the couple or group it belongs to (checked first)."""
        if case_id is not None:
            self.cases.get(case_id)
        session_id = new_session_id()
        key, wrapped = self.keys.new_key(session_id)
        self.files.begin_staging(session_id)
        self.keys.hold(session_id, key)
        until = retention_until(retention_days)
        try:
            yield session_id
            # The row (with the key) is written before the folder moves, marked pending: a kill
            # at any point leaves either nothing readable or a pending row that
            # recover_pending() finishes. The folder never sits in sessions/ without its key.
            self.index.insert_pending(session_id, status, duration_s, until, wrapped, case_id)
            self._publish(session_id, status)
        except BaseException:
            self.files.discard_staging(session_id)
            self.keys.forget(session_id)
            with contextlib.suppress(Exception):
                self.index.discard_pending(session_id)
            raise
        finally:
            self.files.end_staging(session_id)
        self.audit("record" if status == "recording" else "import", session_id)

    def _publish(self, session_id: str, status: str) -> None:
        """Move a pending session's folder from staging into sessions/ and give it ``status``."""
        self.files.publish(session_id)
        self.index.write_status(session_id, status)

    def recover_pending(self) -> list[str]:
        """Finish sessions whose creation was killed after their files were complete (row
        marked pending); a pending row whose folder is gone is erased. Returns the finished ids."""
        finished = []
        for session_id, status in self.index.pending():
            if self.files.has_folder(session_id):
                self._publish(session_id, status)
                finished.append(session_id)
            else:
                self.index.erase_row(session_id)
        return finished

    # ----- retention and deletion ----------------------------------------------------------------
    def delete_session(self, session_id: str, *, reason: str = "delete", role: str | None = None) -> None:
        """Crypto-erase ``session_id`` (:meth:`Retention.delete_session`)."""
        self.retention.delete_session(session_id, reason=reason, role=role)

    def set_retention(self, session_id: str, until: date | str) -> str:
        """Keep ``session_id`` until ``until`` (an ISO date); returns that date (ISO)."""
        return self.retention.set_retention(session_id, until)

    def sweep(self, today: date | None = None) -> list[str]:
        """Destroy the sessions past their retention date; returns their ids."""
        return self.retention.sweep(today)

    # ----- files of a session --------------------------------------------------------------------
    def exists(self, session_id: str, rel: str) -> bool:
        return self.files.exists(session_id, rel)

    def is_intact(self, session_id: str, rel: str) -> bool:
        """Whether ``rel`` exists and every chunk of it authenticates."""
        return self.files.is_intact(session_id, rel)

    def write_bytes(self, session_id: str, rel: str, data: bytes) -> None:
        self.files.write_bytes(session_id, rel, data)

    def read_bytes(self, session_id: str, rel: str) -> bytes:
        return self.files.read_bytes(session_id, rel)

    def write_json(self, session_id: str, rel: str, obj) -> None:
        self.files.write_json(session_id, rel, obj)

    def read_json(self, session_id: str, rel: str):
        return self.files.read_json(session_id, rel)

    def write_table(self, session_id: str, rel: str, frame: pd.DataFrame, meta: dict | None = None) -> None:
        self.files.write_table(session_id, rel, frame, meta)

    def read_table(self, session_id: str, rel: str, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
        return self.files.read_table(session_id, rel, columns)

    def add_file(self, session_id: str, rel: str, source: Path) -> None:
        self.files.add_file(session_id, rel, source)

    def open_media(self, session_id: str, rel: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A seekable plaintext reader of ``rel`` inside the ``with``, decrypted chunk by chunk
        (:meth:`Files.open_media`)."""
        return self.files.open_media(session_id, rel)

    def manifest(self, session_id: str) -> dict:
        return self.files.manifest(session_id)

    def list_files(self, session_id: str, under: str) -> list[str]:
        return self.files.list_files(session_id, under)

    def version(self, session_id: str, rel: str) -> tuple[int, int, int] | None:
        return self.files.version(session_id, rel)

    def delete_file(self, session_id: str, rel: str) -> None:
        self.files.delete_file(session_id, rel)

    def remove_temporary(self, session_id: str) -> int:
        return self.files.remove_temporary(session_id)

    def capture_lock(self, session_id: str, *, wait: bool = False):
        return self.files.capture_lock(session_id, wait=wait)

    # ----- the vault: unlock, lock, passphrase, keys ------------------------------------------------
    @property
    def has_vault(self) -> bool:
        return self.keys.has_vault

    @property
    def unlocked(self) -> bool:
        return self.keys.unlocked

    @property
    def _master(self) -> bytes | None:
        return self.keys.master

    def _data_key(self, session_id: str) -> bytes:
        return self.keys.data_key(session_id)

    def _locked_message(self) -> str:
        return self.keys.locked_message()

    def create_vault(self, passphrase: str) -> None:
        self.keys.create_vault(passphrase)

    def unlock(self, passphrase: str | None = None) -> "Store":
        """Unlock (:meth:`Keys.unlock`); returns the store."""
        self.keys.unlock(passphrase)
        return self

    def lock(self, *, reason: str = "lock") -> None:
        self.keys.lock(reason=reason)

    def reauthenticate(self, passphrase: str, *, action: str) -> None:
        self.keys.reauthenticate(passphrase, action=action)

    def change_passphrase(self, old: str, new: str) -> int:
        """Re-wrap every session key under ``new``; returns how many."""
        return self.keys.change_passphrase(old, new)

    # ----- audit ---------------------------------------------------------------------------------------
    def audit(self, action: str, session_id: str | None = None, *, role: str | None = None, detail: str = "") -> None:
        """Append to the audit log (ids and short codes only, see :mod:`capture.store.audit`): keyed
        while unlocked, pending (sealed at the next unlock) while locked."""
        self.audit_log.append(action, session_id, role=role or self.role, detail=detail)

    def verify_audit(self, passphrase: str | None = None) -> Verification:
        """Check the audit log (:meth:`Keys.verify_audit`)."""
        return self.keys.verify_audit(passphrase)
