"""A store's session files: encrypted bytes, JSON, tables (Parquet) and media, and their folders.

``sessions/<session_id>/`` holds a finished session's files, ``staging/<session_id>/`` one being
created. Each file is encrypted with its session's data key (chunks of ``vault.CHUNK_BYTES``
bytes, AES-256-GCM, its session-relative path bound to the ciphertext) and written atomically
(temporary ``.tmp-*`` file in the same folder, then rename).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from capture.errors import (
    ArtifactError,
    IntegrityError,
    PlaybackError,
    SessionNotFoundError,
)
from capture.store import vault
from capture.store.index import SCHEMA_VERSION

try:
    import fcntl  # POSIX only: the lock of a live recording
except ImportError:                  # Windows: the store works, capture_lock does not
    fcntl = None



class Files:
    """The files of the sessions under ``root``.

    ``data_key(session_id)`` gives a session's data key (it may unlock the store); None keeps
    files in plaintext (the encryption benchmark only).
    """

    def __init__(self, root: Path, data_key: Callable[[str], bytes] | None):
        self.root = root
        self.staging_root = root / "staging"
        self._data_key = data_key
        self._staging: dict[str, Path] = {}    # sessions being created by this process

    # ----- folders ----------------------------------------------------------------------------------
    def begin_staging(self, session_id: str) -> None:
        """Create the staging folder of a new session; its files go there until :meth:`publish`."""
        staging = self.staging_root / session_id
        staging.mkdir(parents=True, mode=0o700)
        self._staging[session_id] = staging

    def end_staging(self, session_id: str) -> None:
        """Stop sending ``session_id``'s files to staging (published or discarded)."""
        self._staging.pop(session_id, None)

    def is_staging(self, session_id: str) -> bool:
        """Whether this process is creating ``session_id`` now."""
        return session_id in self._staging

    def discard_staging(self, session_id: str) -> None:
        """Remove the staging folder of a session whose creation failed."""
        shutil.rmtree(self.staging_root / session_id, ignore_errors=True)

    def publish(self, session_id: str) -> None:
        """Move a session's folder from staging into sessions/ (if it is still in staging)."""
        staging = self.staging_root / session_id
        if staging.is_dir():
            final = self.root / "sessions" / session_id
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(staging, final)

    def has_folder(self, session_id: str) -> bool:
        """Whether ``session_id`` has a folder, in staging or in sessions/."""
        return (self.staging_root / session_id).is_dir() or (self.root / "sessions" / session_id).is_dir()

    def remove_session(self, session_id: str) -> None:
        """Remove a session's folder and everything in it."""
        shutil.rmtree(self.root / "sessions" / session_id, ignore_errors=True)

    def session_dir(self, session_id: str) -> Path:
        """The folder of ``session_id`` (staging while it is created); raises :class:`SessionNotFoundError`."""
        staging = self._staging.get(session_id)
        if staging is not None:
            return staging
        path = self.root / "sessions" / session_id
        if not path.is_dir():
            raise SessionNotFoundError(
                f"No session '{session_id}' in the store at {self.root}; "
                "run 'playback sessions' to list the ids."
            )
        return path

    def path(self, session_id: str, rel: str) -> Path:
        """The absolute path of ``rel``; refuses one outside the session folder."""
        base = self.session_dir(session_id)
        path = (base / rel).resolve()
        if base.resolve() not in path.parents:
            raise PlaybackError(f"Refusing a path outside the session folder: {rel}")
        return path

    def _aad_name(self, session_id: str, path: Path) -> str:
        """The file's path inside its session, bound to its ciphertext."""
        return path.relative_to(self.session_dir(session_id).resolve()).as_posix()

    # ----- bytes ---------------------------------------------------------------------------------------
    def exists(self, session_id: str, rel: str) -> bool:
        return self.path(session_id, rel).is_file()

    def version(self, session_id: str, rel: str) -> tuple[int, int, int] | None:
        """``(inode, modified time in ns, size in bytes)`` of ``rel``, None when absent: it
        changes whenever the file is written again (every write is a new file renamed into
        place, so a new inode even within one tick of the clock)."""
        try:
            stat = self.path(session_id, rel).stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def write_bytes(self, session_id: str, rel: str, data: bytes) -> None:
        """Encrypt and write atomically (temporary file in the same folder, then rename), one
        1 MiB slice of ``data`` at a time (no second copy of it)."""
        view = memoryview(data)
        self._write_blocks(session_id, rel, (view[i:i + vault.CHUNK_BYTES] for i in range(0, len(view), vault.CHUNK_BYTES)))

    def _write_blocks(self, session_id: str, rel: str, blocks) -> None:
        path = self.path(session_id, rel)
        key = None if self._data_key is None else self._data_key(session_id)
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
        path = self.path(session_id, rel)
        if not path.is_file():
            raise ArtifactError(
                f"Session {session_id} has no '{rel}'; run 'playback analyze {session_id}'."
            )
        if self._data_key is None:
            return path.read_bytes()
        key = self._data_key(session_id)
        with open(path, "rb") as fh:
            return b"".join(vault.iter_decrypt(key, self._aad_name(session_id, path), fh))

    def is_intact(self, session_id: str, rel: str) -> bool:
        """Whether ``rel`` exists and every chunk of it authenticates (streamed, nothing kept)."""
        path = self.path(session_id, rel)
        if not path.is_file():
            return False
        if self._data_key is None:
            return True
        key = self._data_key(session_id)
        try:
            with open(path, "rb") as fh:
                for _chunk in vault.iter_decrypt(key, self._aad_name(session_id, path), fh):
                    pass
        except IntegrityError:
            return False
        return True

    def add_file(self, session_id: str, rel: str, source: Path) -> None:
        """Copy an outside file (e.g. imported media) into the session, encrypting as it streams."""
        with open(source, "rb") as fh:
            self._write_blocks(session_id, rel, iter(lambda: fh.read(vault.CHUNK_BYTES), b""))

    @contextlib.contextmanager
    def open_media(self, session_id: str, rel: str) -> Iterator[BinaryIO]:
        """A read-only, seekable binary file of the session file ``rel``'s plaintext, valid inside
        the ``with``: decrypted one 1 MiB chunk at a time as it is read
        (:class:`vault.DecryptingReader`), so the plaintext is never on disk and never whole in
        memory, whatever the recording's length. Damage raises :class:`IntegrityError`."""
        path = self.path(session_id, rel)
        if not path.is_file():
            raise ArtifactError(f"Session {session_id} has no media file '{rel}'.")
        fh = open(path, "rb")
        if self._data_key is None:
            with fh:
                yield fh
            return
        try:
            reader = vault.DecryptingReader(self._data_key(session_id), self._aad_name(session_id, path), fh)
        except BaseException:
            fh.close()
            raise
        with io.BufferedReader(reader, buffer_size=1 << 16) as buffered:
            yield buffered

    # ----- JSON and tables -----------------------------------------------------------------------------
    def write_json(self, session_id: str, rel: str, obj) -> None:
        self.write_bytes(session_id, rel, json.dumps(obj, indent=2, default=_json_default).encode())

    def read_json(self, session_id: str, rel: str):
        return json.loads(self.read_bytes(session_id, rel))

    def write_table(self, session_id: str, rel: str, frame: pd.DataFrame, meta: dict | None = None) -> None:
        """Write a DataFrame as Parquet with ``meta`` (JSON) in the file's metadata."""
        table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"playback": json.dumps(meta or {}, default=_json_default).encode()}
        )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self.write_bytes(session_id, rel, buffer.getvalue())

    def read_table(self, session_id: str, rel: str, columns: list[str] | None = None) -> tuple[pd.DataFrame, dict]:
        """Read a table written by :meth:`write_table`: only ``columns`` when given (decoding a
        few columns of a 50-minute faces table is ten times quicker than all), each of which must
        be present."""
        parquet = pq.ParquetFile(io.BytesIO(self.read_bytes(session_id, rel)))
        schema = parquet.schema_arrow
        if columns is not None:
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise ArtifactError(
                    f"Artifact '{rel}' of session {session_id} lacks columns {missing}; "
                    f"re-run 'playback analyze {session_id}'."
                )
        meta = json.loads((schema.metadata or {}).get(b"playback", b"{}"))
        return parquet.read(columns, use_pandas_metadata=True).to_pandas(), meta

    def manifest(self, session_id: str) -> dict:
        """``manifest.json``; refuses one of another schema version."""
        manifest = self.read_json(session_id, "manifest.json")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"Session {session_id} was written by a different version of Playback "
                f"(schema {manifest.get('schema_version')}, expected {SCHEMA_VERSION})."
            )
        return manifest

    # ----- live capture support (capture/live/recorder.py, capture/live/recovery.py) ---------------------
    # A recording is a session that exists while it is written: its sealed segments live under
    # ``spool/`` (each written with write_bytes, i.e. atomically renamed, so a killed process
    # leaves only whole segments plus ignorable ``.tmp-*`` files); recovery assembles them.
    def list_files(self, session_id: str, under: str) -> list[str]:
        """Session-relative paths of the complete files below ``under`` (sorted; temporary
        files of unfinished writes excluded)."""
        base = self.session_dir(session_id)
        folder = self.path(session_id, under) if under else base
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(base)) for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith((".tmp-", ".lock")))

    def delete_file(self, session_id: str, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(session_id, rel))

    def remove_temporary(self, session_id: str) -> int:
        """Remove ``.tmp-*`` leftovers of writes interrupted by a crash; returns how many."""
        base = self.session_dir(session_id)
        leftovers = [p for p in base.rglob(".tmp-*") if p.is_file()]
        for p in leftovers:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        return len(leftovers)

    def capture_lock(self, session_id: str, *, wait: bool = False):
        """An exclusive OS lock held by the process recording ``session_id`` (released by the
        kernel when that process dies, however it dies). Returns an open file object holding
        the lock, or None when another live process holds it (and ``wait`` is False)."""
        if fcntl is None:
            raise ModuleNotFoundError("No module named 'fcntl'", name="fcntl")
        fh = open(self.session_dir(session_id) / ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.close()
            return None
        return fh


def _json_default(value):
    """JSON for numpy scalars (their Python value) and paths (their string)."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
