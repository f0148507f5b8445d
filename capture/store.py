"""The session store: the one place that reads and writes session files.

Layout under the store root (``--store DIR``, else ``PLAYBACK_STORE``, else a per-user data
directory)::

    index.sqlite                 session ids, creation time (UTC), status, duration
    sessions/<session_id>/
        manifest.json            participants, media streams, duration_s, offsets
        media/                   original and normalised media
        derived/                 one artifact per analysis stage + <stage>.run.json
    staging/<session_id>/        a session being created; moved into sessions/ when complete

Every read and write of a session's files goes through :class:`Store`, so that encryption at
rest changes this module only. Session ids carry no personal names.
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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd

from capture.errors import ArtifactError, PlaybackError, SessionNotFoundError

SCHEMA_VERSION = 1


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


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    created_utc: str
    status: str
    duration_s: float | None


class Store:
    """Session store rooted at ``root`` (created on first use, private to the user)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root).expanduser() if root else default_store_root()

    # ----- index -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        con = sqlite3.connect(self.root / "index.sqlite")
        con.execute(
            "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, created_utc TEXT"
            " NOT NULL, status TEXT NOT NULL, duration_s REAL, schema_version INTEGER NOT NULL)"
        )
        return con

    def list_sessions(self) -> list[SessionRow]:
        """All sessions, newest first."""
        with contextlib.closing(self._connect()) as con:
            rows = con.execute(
                "SELECT session_id, created_utc, status, duration_s FROM sessions"
                " ORDER BY created_utc DESC, session_id"
            ).fetchall()
        return [SessionRow(*row) for row in rows]

    def session_row(self, session_id: str) -> SessionRow:
        with contextlib.closing(self._connect()) as con:
            row = con.execute(
                "SELECT session_id, created_utc, status, duration_s FROM sessions WHERE session_id=?",
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
    def new_session(self, duration_s: float | None = None) -> Iterator[str]:
        """Create a session atomically: files are written in staging and the session appears
        (folder moved, index row added) only if the ``with`` body completes. On any error the
        staging folder is removed, so no half-made session is left behind."""
        session_id = new_session_id()
        staging = self.root / "staging" / session_id
        staging.mkdir(parents=True, mode=0o700)
        self._staging = getattr(self, "_staging", {})
        self._staging[session_id] = staging
        try:
            yield session_id
            final = self.root / "sessions" / session_id
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(staging, final)
            with contextlib.closing(self._connect()) as con, con:
                con.execute(
                    "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                    (session_id, utc_now(), "imported", duration_s, SCHEMA_VERSION),
                )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            self._staging.pop(session_id, None)

    def delete_session(self, session_id: str) -> None:
        self.session_row(session_id)
        shutil.rmtree(self._session_dir(session_id), ignore_errors=True)
        with contextlib.closing(self._connect()) as con, con:
            con.execute("DELETE FROM sessions WHERE session_id=?", (session_id,))

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

    def exists(self, session_id: str, rel: str) -> bool:
        return self._path(session_id, rel).is_file()

    def write_bytes(self, session_id: str, rel: str, data: bytes) -> None:
        """Write atomically (temporary file in the same folder, then rename)."""
        path = self._path(session_id, rel)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read_bytes(self, session_id: str, rel: str) -> bytes:
        path = self._path(session_id, rel)
        if not path.is_file():
            raise ArtifactError(
                f"Session {session_id} has no '{rel}'; run 'playback analyze {session_id}'."
            )
        return path.read_bytes()

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
        """Copy an outside file (e.g. imported media) into the session."""
        self.write_bytes(session_id, rel, Path(source).read_bytes())

    @contextlib.contextmanager
    def media_path(self, session_id: str, rel: str) -> Iterator[Path]:
        """A path a decoder can open for the session file ``rel``, valid inside the ``with``."""
        path = self._path(session_id, rel)
        if not path.is_file():
            raise ArtifactError(f"Session {session_id} has no media file '{rel}'.")
        yield path

    def manifest(self, session_id: str) -> dict:
        manifest = self.read_json(session_id, "manifest.json")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"Session {session_id} was written by a different version of Playback "
                f"(schema {manifest.get('schema_version')}, expected {SCHEMA_VERSION})."
            )
        return manifest


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
