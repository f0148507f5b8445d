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
rest lives in this module only. Session ids carry no personal names.

The vault: every session file is encrypted with the session's own data key (chunked
AES-256-GCM, see :mod:`capture.store.vault`); data keys are wrapped by a master key derived from the
therapist's passphrase. A store is *locked* until it has the passphrase: ``Store(root,
passphrase)``, ``store.unlock(passphrase)``, or ``PLAYBACK_PASSPHRASE`` in the environment
(scripted use; ``from_env=False`` ignores it, as the dashboard does). Reading a session file
while locked raises :class:`StoreLockedError`. Deleting a session destroys its key
(crypto-erase); the retention sweep and withdrawal of consent use the same path.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd

from capture.store import vault
from capture.store.audit import AuditLog
from capture.errors import (ArtifactError, IntegrityError, PlaybackError, SessionNotFoundError,
                            StoreIndexMissingError, StoreLockedError, WrongPassphraseError)

SCHEMA_VERSION = 1
DEFAULT_RETENTION_DAYS = 90          # editable per session; PLAYBACK_RETENTION_DAYS changes the default
MIN_PASSPHRASE_CHARS = 8
FREE_ATTEMPTS = 3                    # wrong passphrases before waiting is enforced
MEMORY_FILE_MAX_BYTES = 1 << 30      # media_path decrypts into memory up to this size
INDEX_NAME = "index.sqlite"
PENDING = "pending:"                 # status prefix of a session whose creation has not finished


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


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_session_id() -> str:
    """An id like ``20261124-1a2b3c``: date of creation plus random hex, no personal content."""
    return datetime.now(timezone.utc).strftime("%Y%m%d") + "-" + secrets.token_hex(3)


def default_retention_days() -> int:
    try:
        return max(1, int(os.environ.get("PLAYBACK_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)))
    except ValueError:
        return DEFAULT_RETENTION_DAYS


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    created_utc: str
    status: str
    duration_s: float | None
    retention_until: str | None = None   # ISO date; the sweep destroys the session after it


_ROW = "session_id, created_utc, status, duration_s, retention_until"


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
        self._passphrase = passphrase
        self.role = role
        self._plaintext = _plaintext
        self._master: bytes | None = None
        self._keys: dict[str, bytes] = {}
        self._staging: dict[str, Path] = {}
        self.audit_log = AuditLog(self.root)

    # ----- index -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (self.root / INDEX_NAME).exists():
            self._refuse_lost_index()
        con = sqlite3.connect(self.root / INDEX_NAME, timeout=30)
        con.execute("PRAGMA secure_delete = ON")   # a deleted wrapped key is overwritten, not left in a free page
        con.execute(
            "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, created_utc TEXT"
            " NOT NULL, status TEXT NOT NULL, duration_s REAL, schema_version INTEGER NOT NULL,"
            " retention_until TEXT, wrapped_key BLOB)"
        )
        columns = {row[1] for row in con.execute("PRAGMA table_info(sessions)")}
        for column, kind in (("retention_until", "TEXT"), ("wrapped_key", "BLOB")):
            if column not in columns:      # a store made before the vault
                con.execute(f"ALTER TABLE sessions ADD COLUMN {column} {kind}")
        con.execute(
            "CREATE TABLE IF NOT EXISTS vault (id INTEGER PRIMARY KEY CHECK (id = 1), kdf TEXT NOT NULL,"
            " check_blob BLOB NOT NULL, created_utc TEXT NOT NULL, failed_attempts INTEGER NOT NULL DEFAULT 0,"
            " last_failure REAL NOT NULL DEFAULT 0)"
        )
        return con

    def _refuse_lost_index(self) -> None:
        """A store that has sessions or an audit log but no index lost its keys: say so, and never
        create a fresh index (and vault) over it."""
        sessions = self.root / "sessions"
        folders = [p for p in sessions.iterdir() if p.is_dir()] if sessions.is_dir() else []
        if folders or (self.root / "audit.log").is_file():
            raise StoreIndexMissingError(
                f"The store at {self.root} has {len(folders)} session folder(s) and an audit log but no "
                f"{INDEX_NAME}, which holds the session keys: restore {INDEX_NAME} from your backup into "
                "that folder; Playback will not create a new one over existing sessions.")

    def _refuse_replaced_index(self) -> None:
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

    def list_sessions(self) -> list[SessionRow]:
        """All sessions, newest first (ids, dates and status only: no key needed)."""
        with contextlib.closing(self._connect()) as con:
            rows = con.execute(
                f"SELECT {_ROW} FROM sessions ORDER BY created_utc DESC, session_id"
            ).fetchall()
        return [SessionRow(*row) for row in rows]

    def session_row(self, session_id: str) -> SessionRow:
        with contextlib.closing(self._connect()) as con:
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
        self.session_row(session_id)
        with contextlib.closing(self._connect()) as con, con:
            con.execute("UPDATE sessions SET status=? WHERE session_id=?", (status, session_id))

    # ----- creating and deleting sessions ---------------------------------------------------
    @contextlib.contextmanager
    def new_session(self, duration_s: float | None = None, *, retention_days: int | None = None,
                    status: str = "imported") -> Iterator[str]:
        """Create a session atomically: files are written in staging and the session appears
        (folder moved, index row with its wrapped key added) only if the ``with`` body
        completes. On any error the staging folder is removed and the new key forgotten, so no
        half-made session is left behind (and leftovers could not be read anyway)."""
        wrapped = None
        session_id = new_session_id()
        key = None
        if not self._plaintext:
            key = vault.new_key()
            wrapped = vault.wrap(self._master_key(), key, session_id)
        staging = self.root / "staging" / session_id
        staging.mkdir(parents=True, mode=0o700)
        self._staging[session_id] = staging
        if key is not None:
            self._keys[session_id] = key
        until = (date.today() + timedelta(days=retention_days or default_retention_days())).isoformat()
        try:
            yield session_id
            # The row (with the key) is written before the folder moves, marked pending: a kill
            # at any point leaves either nothing readable or a pending row that
            # recover_pending() finishes. The folder never sits in sessions/ without its key.
            with contextlib.closing(self._connect()) as con, con:
                con.execute(
                    "INSERT INTO sessions (session_id, created_utc, status, duration_s, schema_version,"
                    " retention_until, wrapped_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (session_id, utc_now(), PENDING + status, duration_s, SCHEMA_VERSION, until, wrapped),
                )
            self._publish(session_id, status)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            self._keys.pop(session_id, None)
            with contextlib.suppress(Exception), contextlib.closing(self._connect()) as con, con:
                con.execute("DELETE FROM sessions WHERE session_id=? AND status LIKE ?", (session_id, PENDING + "%"))
            raise
        finally:
            self._staging.pop(session_id, None)
        self.audit("record" if status == "recording" else "import", session_id)

    def _publish(self, session_id: str, status: str) -> None:
        """Move a pending session's folder from staging into sessions/ and give it ``status``."""
        staging = self.root / "staging" / session_id
        if staging.is_dir():
            final = self.root / "sessions" / session_id
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(staging, final)
        with contextlib.closing(self._connect()) as con, con:
            con.execute("UPDATE sessions SET status=? WHERE session_id=?", (status, session_id))

    def recover_pending(self) -> list[str]:
        """Finish sessions whose creation was killed after their files were complete (row
        marked pending); a pending row whose folder is gone is erased. Returns the finished ids."""
        finished = []
        with contextlib.closing(self._connect()) as con:
            rows = con.execute("SELECT session_id, status FROM sessions WHERE status LIKE ?", (PENDING + "%",)).fetchall()
        for session_id, status in rows:
            if (self.root / "staging" / session_id).is_dir() or (self.root / "sessions" / session_id).is_dir():
                self._publish(session_id, status[len(PENDING):])
                finished.append(session_id)
            else:
                with contextlib.closing(self._connect()) as con, con:
                    con.execute("UPDATE sessions SET wrapped_key = NULL WHERE session_id=?", (session_id,))
                    con.execute("DELETE FROM sessions WHERE session_id=?", (session_id,))
        return finished

    def orphan_folders(self) -> list[Path]:
        """Session folders with no row in the index: their key is not here, so they cannot be read."""
        folder = self.root / "sessions"
        if not folder.is_dir():
            return []
        known = {row.session_id for row in self.list_sessions()}
        return sorted(path for path in folder.iterdir() if path.is_dir() and path.name not in known)

    def delete_session(self, session_id: str, *, reason: str = "delete", role: str | None = None) -> None:
        """Crypto-erase: destroy the session's wrapped key (overwritten in the index), then
        remove its files. Copies of the files anywhere (backups, SSD blocks) stay unreadable.
        ``reason`` is the audit action: ``delete``, ``withdraw`` or ``sweep``."""
        self.session_row(session_id)
        with contextlib.closing(self._connect()) as con, con:
            con.execute("UPDATE sessions SET wrapped_key = NULL WHERE session_id=?", (session_id,))
            con.execute("DELETE FROM sessions WHERE session_id=?", (session_id,))
        self._keys.pop(session_id, None)
        shutil.rmtree(self.root / "sessions" / session_id, ignore_errors=True)
        self.audit(reason if reason in ("delete", "withdraw", "sweep") else "delete", session_id, role=role)

    # ----- retention ---------------------------------------------------------------------------
    def set_retention(self, session_id: str, until: date | str) -> str:
        """Keep ``session_id`` until ``until`` (an ISO date); the sweep destroys it after that day."""
        self.session_row(session_id)
        try:
            day = until if isinstance(until, date) else date.fromisoformat(str(until))
        except ValueError:
            raise PlaybackError(f"'{until}' is not a date; write it as YYYY-MM-DD, e.g. 2027-01-31.") from None
        with contextlib.closing(self._connect()) as con, con:
            con.execute("UPDATE sessions SET retention_until=? WHERE session_id=?", (day.isoformat(), session_id))
        self.audit("retention", session_id)
        return day.isoformat()

    def sweep(self, today: date | None = None) -> list[str]:
        """Destroy every session whose retention date has passed (and leftovers of crashed
        imports); returns the destroyed ids. Needs no passphrase: destroying a key needs none."""
        today = today or date.today()
        expired = [row.session_id for row in self.list_sessions()
                   if row.retention_until and date.fromisoformat(row.retention_until) < today]
        for session_id in expired:
            self.delete_session(session_id, reason="sweep", role="system")
        staging = self.root / "staging"
        if staging.is_dir():
            known = {row.session_id for row in self.list_sessions()}   # pending ones: recover_pending finishes them
            for leftover in staging.iterdir():
                if leftover.name not in self._staging and leftover.name not in known and time.time() - leftover.stat().st_mtime > 24 * 3600:
                    shutil.rmtree(leftover, ignore_errors=True)
        if expired:
            return expired
        self.audit("sweep", None, role="system", detail="none_expired")
        return expired

    # ----- files of a session ----------------------------------------------------------------
    def _session_dir(self, session_id: str) -> Path:
        staging = getattr(self, "_staging", {}).get(session_id)
        if staging is not None:
            return staging
        path = self.root / "sessions" / session_id
        if not path.is_dir():
            raise SessionNotFoundError(
                f"No session '{session_id}' in the store at {self.root}; "
                "run 'playback sessions' to list the ids."
            )
        return path

    def _path(self, session_id: str, rel: str) -> Path:
        base = self._session_dir(session_id)
        path = (base / rel).resolve()
        if base.resolve() not in path.parents:
            raise PlaybackError(f"Refusing a path outside the session folder: {rel}")
        return path

    def _aad_name(self, session_id: str, path: Path) -> str:
        """The file's path inside its session, bound to its ciphertext."""
        return path.relative_to(self._session_dir(session_id).resolve()).as_posix()

    def exists(self, session_id: str, rel: str) -> bool:
        return self._path(session_id, rel).is_file()

    def write_bytes(self, session_id: str, rel: str, data: bytes) -> None:
        """Encrypt and write atomically (temporary file in the same folder, then rename)."""
        self._write_blocks(session_id, rel, [data])

    def _write_blocks(self, session_id: str, rel: str, blocks) -> None:
        path = self._path(session_id, rel)
        key = None if self._plaintext else self._data_key(session_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                if key is None:
                    for block in blocks:
                        fh.write(block)
                else:
                    vault.encrypt_stream(key, self._aad_name(session_id, path), blocks, fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read_bytes(self, session_id: str, rel: str) -> bytes:
        """Read and decrypt (in memory); a truncated or modified file raises IntegrityError."""
        path = self._path(session_id, rel)
        if not path.is_file():
            raise ArtifactError(
                f"Session {session_id} has no '{rel}'; run 'playback analyze {session_id}'."
            )
        if self._plaintext:
            return path.read_bytes()
        key = self._data_key(session_id)
        with open(path, "rb") as fh:
            return b"".join(vault.iter_decrypt(key, self._aad_name(session_id, path), fh))

    def is_intact(self, session_id: str, rel: str) -> bool:
        """Whether ``rel`` exists and every chunk of it authenticates (streamed, nothing kept)."""
        path = self._path(session_id, rel)
        if not path.is_file():
            return False
        if self._plaintext:
            return True
        key = self._data_key(session_id)
        try:
            with open(path, "rb") as fh:
                for _chunk in vault.iter_decrypt(key, self._aad_name(session_id, path), fh):
                    pass
        except IntegrityError:
            return False
        return True

    def write_json(self, session_id: str, rel: str, obj) -> None:
        self.write_bytes(session_id, rel, json.dumps(obj, indent=2, default=_json_default).encode())

    def read_json(self, session_id: str, rel: str):
        return json.loads(self.read_bytes(session_id, rel))

    def write_table(self, session_id: str, rel: str, frame: pd.DataFrame, meta: dict | None = None) -> None:
        """Write a DataFrame as Parquet with ``meta`` (JSON) in the file's metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"playback": json.dumps(meta or {}, default=_json_default).encode()}
        )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.write_bytes(session_id, rel, buffer.getvalue())

    def read_table(self, session_id: str, rel: str, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
        """Read a table written by :meth:`write_table`; checks that ``columns`` are present."""
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(self.read_bytes(session_id, rel)))
        meta = json.loads((table.schema.metadata or {}).get(b"playback", b"{}"))
        frame = table.to_pandas()
        if columns is not None:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ArtifactError(
                    f"Artifact '{rel}' of session {session_id} lacks columns {missing}; "
                    f"re-run 'playback analyze {session_id}'."
                )
        return frame, meta

    def add_file(self, session_id: str, rel: str, source: Path) -> None:
        """Copy an outside file (e.g. imported media) into the session, encrypting as it streams."""
        with open(source, "rb") as fh:
            self._write_blocks(session_id, rel, iter(lambda: fh.read(vault.CHUNK_BYTES), b""))

    @contextlib.contextmanager
    def media_path(self, session_id: str, rel: str) -> Iterator[Path]:
        """A path a decoder can open for the session file ``rel``, valid inside the ``with``.

        The plaintext never lands in a named file: on Linux it is an anonymous in-memory file
        (``memfd``) reached through ``/proc/self/fd``; elsewhere, and above
        ``MEMORY_FILE_MAX_BYTES``, a private temporary file (0600 in a 0700 folder) that is
        unlinked as soon as it is open where the OS allows it, and removed in a ``finally``.
        """
        path = self._path(session_id, rel)
        if not path.is_file():
            raise ArtifactError(f"Session {session_id} has no media file '{rel}'.")
        if self._plaintext:
            yield path
            return
        key = self._data_key(session_id)
        with open(path, "rb") as src:
            chunks = vault.iter_decrypt(key, self._aad_name(session_id, path), src)
            with _private_plaintext_file(chunks, path.stat().st_size, suffix=path.suffix) as plain:
                yield plain

    def manifest(self, session_id: str) -> dict:
        manifest = self.read_json(session_id, "manifest.json")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"Session {session_id} was written by a different version of Playback "
                f"(schema {manifest.get('schema_version')}, expected {SCHEMA_VERSION})."
            )
        return manifest

    # ----- the vault: unlock, lock, passphrase, keys ---------------------------------------------
    @property
    def has_vault(self) -> bool:
        with contextlib.closing(self._connect()) as con:
            return con.execute("SELECT 1 FROM vault WHERE id = 1").fetchone() is not None

    @property
    def unlocked(self) -> bool:
        return self._plaintext or self._master is not None

    def audit(self, action: str, session_id: str | None = None, *, role: str | None = None, detail: str = "") -> None:
        """Append to the audit log (ids and short codes only, see :mod:`capture.store.audit`): keyed
        while unlocked, pending (sealed at the next unlock) while locked."""
        self.audit_log.append(action, session_id, role=role or self.role, detail=detail)

    def verify_audit(self, passphrase: str | None = None):
        """Check the audit log: chain, MACs, heads and outside anchor (:meth:`AuditLog.verify`).
        A store with a vault needs its passphrase (else the one held, or the master key when
        unlocked); this neither unlocks the store nor writes an entry (a wrong passphrase does)."""
        if self._plaintext or self._master is not None or not self.has_vault:
            return self.audit_log.verify(self._master)
        passphrase = passphrase if passphrase is not None else self._passphrase
        if not passphrase:
            raise StoreLockedError(self._locked_message())
        return self.audit_log.verify(self._check_passphrase(passphrase, failure_action="unlock_failed"))

    def _vault_row(self, con) -> tuple | None:
        return con.execute("SELECT kdf, check_blob, failed_attempts, last_failure FROM vault WHERE id = 1").fetchone()

    def _check_passphrase(self, passphrase: str, *, failure_action: str) -> bytes:
        """The master key for ``passphrase``; wrong ones are counted, rate-limited and audited."""
        import json as _json

        with contextlib.closing(self._connect()) as con:
            row = self._vault_row(con)
        if row is None:
            raise StoreLockedError(f"The store at {self.root} has no vault yet; unlock it once to create it.")
        kdf, check, failed, last_failure = row
        wait = _retry_wait(failed) - (time.time() - last_failure)
        if wait > 0:
            self.audit(failure_action, detail="rate_limited")
            raise WrongPassphraseError(
                f"Too many wrong passphrases ({failed}); wait {_wait_text(wait)} before trying again.")
        master = vault.derive_master(passphrase or "", _json.loads(kdf))
        if not vault.passphrase_matches(master, check):
            with contextlib.closing(self._connect()) as con, con:
                con.execute("UPDATE vault SET failed_attempts = failed_attempts + 1, last_failure = ? WHERE id = 1",
                            (time.time(),))
            self.audit(failure_action, detail="wrong_passphrase")
            later = _retry_wait(failed + 1)
            raise WrongPassphraseError(
                f"That passphrase does not open the store at {self.root}; check it and try again"
                + (f" in {_wait_text(later)}." if later else "."))
        if failed:
            with contextlib.closing(self._connect()) as con, con:
                con.execute("UPDATE vault SET failed_attempts = 0, last_failure = 0 WHERE id = 1")
        return master

    def create_vault(self, passphrase: str) -> None:
        """Set up a new store's vault with ``passphrase`` (refused if the store has one)."""
        import json as _json

        if len(passphrase or "") < MIN_PASSPHRASE_CHARS:
            raise WrongPassphraseError(f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")
        self._refuse_replaced_index()
        params = vault.kdf_params()
        master = vault.derive_master(passphrase, params)
        with contextlib.closing(self._connect()) as con, con:
            if self._vault_row(con) is not None:
                raise PlaybackError(f"The store at {self.root} already has a vault; unlock it instead.")
            con.execute("INSERT INTO vault (id, kdf, check_blob, created_utc) VALUES (1, ?, ?, ?)",
                        (_json.dumps(params), vault.check_blob(master), utc_now()))
        self._master = master
        self.audit_log.open(master)
        self.audit("vault_created")
        self._encrypt_legacy_sessions()

    def unlock(self, passphrase: str | None = None) -> "Store":
        """Unlock with ``passphrase`` (else the one given at construction); a store without a
        vault gets one with this passphrase. Raises :class:`WrongPassphraseError`."""
        passphrase = passphrase if passphrase is not None else self._passphrase
        if self._plaintext:
            return self
        if not passphrase:
            raise StoreLockedError(self._locked_message())
        if len(passphrase) < MIN_PASSPHRASE_CHARS and not (self.root / INDEX_NAME).is_file():
            # a new store: refuse a short passphrase before anything (index included) is written
            self._refuse_lost_index()
            raise WrongPassphraseError(f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")
        if not self.has_vault:
            self.create_vault(passphrase)
            return self
        self._master = self._check_passphrase(passphrase, failure_action="unlock_failed")
        self._keys.clear()
        self.audit_log.open(self._master)     # checks the log (alarm if changed), then keys entries
        self.audit("unlock")
        self._encrypt_legacy_sessions()
        return self

    def lock(self, *, reason: str = "lock") -> None:
        """Forget the master key and every session key held in memory."""
        if self._master is not None:          # audited before the key goes, so the entry is keyed
            self.audit("idle_lock" if reason == "idle" else "lock")
        self._master = None
        self._passphrase = None
        self._keys.clear()
        self.audit_log.close()

    def reauthenticate(self, passphrase: str, *, action: str) -> None:
        """Ask again before a sensitive ``action`` (export, delete): the passphrase must match;
        failures count towards the same rate limit and are audited."""
        self._check_passphrase(passphrase, failure_action="reauth_failed")
        self.audit("reauth", detail=action)

    def change_passphrase(self, old: str, new: str) -> int:
        """Re-wrap every session key under a key from ``new``; media is not re-encrypted.
        Returns the number of session keys re-wrapped."""
        import json as _json

        if len(new or "") < MIN_PASSPHRASE_CHARS:
            raise WrongPassphraseError(f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")
        old_master = self._check_passphrase(old, failure_action="unlock_failed")
        self.audit_log.open(old_master)       # check the log and seal it under the old key first
        params = vault.kdf_params()
        new_master = vault.derive_master(new, params)
        with self.audit_log.exclusive(), contextlib.closing(self._connect()) as con, con:
            rows = con.execute("SELECT session_id, wrapped_key FROM sessions WHERE wrapped_key IS NOT NULL").fetchall()
            for session_id, wrapped in rows:
                key = vault.unwrap(old_master, wrapped, session_id)
                con.execute("UPDATE sessions SET wrapped_key=? WHERE session_id=?",
                            (vault.wrap(new_master, key, session_id), session_id))
            con.execute("UPDATE vault SET kdf=?, check_blob=? WHERE id = 1",
                        (_json.dumps(params), vault.check_blob(new_master)))
            self.audit_log.rotate(con, old_master, new_master)   # same transaction as the vault
        self._master = new_master
        self._passphrase = None
        self.audit("passphrase_change")
        return len(rows)

    def _locked_message(self) -> str:
        return (f"The store at {self.root} is locked. Give its passphrase: set PLAYBACK_PASSPHRASE for "
                "scripted use, run the command in a terminal to be asked, or unlock the dashboard.")

    def _master_key(self) -> bytes:
        if self._master is None:
            if not self._passphrase:
                raise StoreLockedError(self._locked_message())
            self.unlock(self._passphrase)
        return self._master

    def _data_key(self, session_id: str) -> bytes:
        key = self._keys.get(session_id)
        if key is not None:
            return key
        master = self._master_key()
        key = self._keys.get(session_id)      # unlock may have created it (legacy sessions)
        if key is not None:
            return key
        with contextlib.closing(self._connect()) as con:
            row = con.execute("SELECT wrapped_key FROM sessions WHERE session_id=?", (session_id,)).fetchone()
        if row is None:
            self.session_row(session_id)      # raises SessionNotFoundError
        if row[0] is None:
            raise StoreLockedError(f"Session {session_id} has no key in this store: it was destroyed.")
        key = self._keys[session_id] = vault.unwrap(master, row[0], session_id)
        return key

    def _encrypt_legacy_sessions(self) -> None:
        """Encrypt sessions written before the vault existed (plaintext files, no key)."""
        with contextlib.closing(self._connect()) as con:
            legacy = [r[0] for r in con.execute("SELECT session_id FROM sessions WHERE wrapped_key IS NULL")]
        for session_id in legacy:
            folder = self.root / "sessions" / session_id
            key = vault.new_key()
            if folder.is_dir():
                for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
                    with open(path, "rb") as fh:
                        if vault.is_encrypted(fh.read(len(vault.MAGIC))):
                            continue
                    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
                    with os.fdopen(fd, "wb") as out, open(path, "rb") as fh:
                        vault.encrypt_stream(key, path.relative_to(folder).as_posix(), iter(lambda: fh.read(vault.CHUNK_BYTES), b""), out)
                    os.replace(tmp, path)
            with contextlib.closing(self._connect()) as con, con:
                con.execute("UPDATE sessions SET wrapped_key=?, retention_until=COALESCE(retention_until, ?)"
                            " WHERE session_id=?",
                            (vault.wrap(self._master, key, session_id),
                             (date.today() + timedelta(days=default_retention_days())).isoformat(), session_id))
            self._keys[session_id] = key
            self.audit("migrate", session_id)

    # ----- live capture support (capture/live/recorder.py, capture/live/recovery.py) ---------------------
    # A recording is a session that exists while it is written: its sealed segments live under
    # ``spool/`` (each written with write_bytes, i.e. atomically renamed, so a killed process
    # leaves only whole segments plus ignorable ``.tmp-*`` files); recovery assembles them.
    def list_files(self, session_id: str, under: str) -> list[str]:
        """Session-relative paths of the complete files below ``under`` (sorted; temporary
        files of unfinished writes excluded)."""
        base = self._session_dir(session_id)
        folder = self._path(session_id, under) if under else base
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(base)) for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith((".tmp-", ".lock")))

    def delete_file(self, session_id: str, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(session_id, rel))

    def remove_temporary(self, session_id: str) -> int:
        """Remove ``.tmp-*`` leftovers of writes interrupted by a crash; returns how many."""
        base = self._session_dir(session_id)
        leftovers = [p for p in base.rglob(".tmp-*") if p.is_file()]
        for p in leftovers:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        return len(leftovers)

    def set_duration(self, session_id: str, duration_s: float | None) -> None:
        with contextlib.closing(self._connect()) as con, con:
            con.execute("UPDATE sessions SET duration_s=? WHERE session_id=?", (duration_s, session_id))

    def capture_lock(self, session_id: str, *, wait: bool = False):
        """An exclusive OS lock held by the process recording ``session_id`` (released by the
        kernel when that process dies, however it dies). Returns an open file object holding
        the lock, or None when another live process holds it (and ``wait`` is False)."""
        import fcntl

        fh = open(self._session_dir(session_id) / ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.close()
            return None
        return fh


def _retry_wait(failed: int) -> float:
    """Seconds to wait after ``failed`` wrong passphrases in a row: none for the first few,
    then 5 s doubling up to 5 minutes."""
    return 0.0 if failed < FREE_ATTEMPTS else float(min(5 * 2 ** (failed - FREE_ATTEMPTS), 300))


def _wait_text(seconds: float) -> str:
    """A wait for a message, rounded up to whole seconds and never "0 s" (0.2 s left is "1 s")."""
    return f"{max(1, int(-(-seconds // 1)))} s"


@contextlib.contextmanager
def _private_plaintext_file(chunks, size_hint: int, *, suffix: str = "") -> Iterator[Path]:
    """Write ``chunks`` where only this process can reach them; yield a path to them; remove
    them in a ``finally`` (see :meth:`Store.media_path`)."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and size_hint <= MEMORY_FILE_MAX_BYTES and os.path.isdir("/proc/self/fd"):
        fd = memfd("playback-media", getattr(os, "MFD_CLOEXEC", 0))
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.lseek(fd, 0, os.SEEK_SET)
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    folder = tempfile.mkdtemp(prefix="playback-")          # 0700
    path = os.path.join(folder, "media" + suffix)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    reader = None
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        if os.path.isdir("/proc/self/fd"):                   # keep it open, drop its name at once
            reader = os.open(path, os.O_RDONLY)
            os.unlink(path)
            yield Path(f"/proc/self/fd/{reader}")
        else:
            yield Path(path)
    finally:
        if reader is not None:
            os.close(reader)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
