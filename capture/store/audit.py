"""The audit log: hash-chained, keyed, anchored outside the store, free of personal content.

``<store>/audit.log`` holds one JSON object per line::

    {"seq": 7, "utc": "2026-11-24T10:02:03+00:00", "role": "therapist", "action": "export",
     "session_id": "20261124-1a2b3c", "detail": "csv", "auth": "hmac", "prev": "<hash of entry 6>",
     "hash": "...", "mac": "..."}

*Chain.* ``hash = sha256(prev + canonical JSON of the entry without hash and mac)``; the first
entry's ``prev`` is 64 zeros.

*Keys.* While the store is unlocked every entry carries ``mac = HMAC-SHA256(audit key, "entry" |
store id | hash)`` (``"auth": "hmac"``); the hash covers every earlier entry, so one MAC covers
the log up to it. The audit key is a random 256-bit key wrapped by the vault's master key (table
``audit_head`` of ``index.sqlite``, beside a random store id), so only the passphrase opens it.
Changing the passphrase re-wraps the keys and starts a new key from the next entry, so the old
passphrase cannot authenticate anything written afterwards.

*Entries written while the store is locked* (failed unlocks, the sweep) cannot be keyed:
``"auth": "pending"``, ``"mac": null``. The next keyed entry covers them through the chain.
Before a key is used after an unlock, the whole log is checked against both heads below; if
it does not check out, an authenticated ``audit_alarm`` entry records it first, so sealing never
launders a change made while the store was locked.

*Heads.* ``audit_head`` holds the latest seq and hash and a *seal*: the MAC of the latest keyed
seq and hash. The *anchor*, a copy of the same outside the store
(``$PLAYBACK_AUDIT_ANCHOR_DIR/<store id>.json``, default ``$XDG_STATE_HOME/playback/anchors``,
i.e. ``~/.local/state/playback/anchors``), moves only forward along the chain it knows: an
append that does not continue it leaves it alone, so a cut, a rollback or a rewritten tail
stays visible. :meth:`AuditLog.verify` checks entries, MACs, the head, the seal and the anchor.

*Legacy logs* (written before entries were keyed) verify as "unauthenticated up to entry N":
the entries before the first key. They are frozen by the first keyed entry's MAC from then on.

Only a role, an action from a closed vocabulary, a random session id, a UTC time and a short
code are recorded: never a name, a note or a file name (:func:`AuditLog.append` refuses anything
else). The anchor holds the store id, sequence numbers, hashes and a MAC only.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from capture.errors import AuditError, PlaybackError, StoreLockedError
from capture.store import vault

try:
    import fcntl  # POSIX only: serialises writers across processes
except ImportError:                  # Windows: single-process use
    fcntl = None

LOG_NAME = "audit.log"
GENESIS = "0" * 64
ANCHOR_ENV = "PLAYBACK_AUDIT_ANCHOR_DIR"
ACTIONS = frozenset({
    "unlock", "unlock_failed", "lock", "idle_lock", "reauth", "reauth_failed", "view", "play", "export",
    "import", "record", "analyse", "delete", "consent", "withdraw", "sweep", "retention", "passphrase_change",
    "vault_created", "migrate", "audit_alarm", "walkthrough", "veto", "case",
})
ROLES = frozenset({"therapist", "client", "supervisor", "system"})
_CODE = re.compile(r"^[a-z0-9_.:-]{0,40}$")
_SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEAD_COLUMNS = (("store_id", "TEXT"), ("sealed_seq", "INTEGER"), ("sealed_hash", "TEXT"), ("seal", "TEXT"),
                 ("audit_keys", "TEXT"))
# What an audit_alarm's code means (the detail is "<code>:<entry>").
_ALARM_WHAT = {
    "anchor": "the log no longer matched its outside anchor",
    "head": "the log no longer matched its head in index.sqlite",
    "seal": "the authenticated head in index.sqlite did not match the log",
    "mac": "an entry's authentication code did not match",
    "hash": "an entry's hash did not match",
    "chain": "an entry did not follow the one before it",
    "seq": "an entry was missing or added",
    "unauth": "an entry had lost its authentication code",
    "nokey": "an authenticated entry had no key",
    "malformed": "an entry was malformed",
    "unreadable": "an entry was unreadable",
}


def anchor_dir() -> Path:
    """Where the outside anchors live: ``PLAYBACK_AUDIT_ANCHOR_DIR``, else the per-user state
    folder (``$XDG_STATE_HOME/playback/anchors``, default ``~/.local/state``), never the store."""
    if os.environ.get(ANCHOR_ENV):
        return Path(os.environ[ANCHOR_ENV]).expanduser()
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "playback-anchors"
    if os.uname().sysname == "Darwin":
        return Path.home() / "Library" / "Application Support" / "playback-anchors"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "playback" / "anchors"


@dataclass(frozen=True)
class Verification:
    entries: int
    head: str
    authenticated_from: int | None = None   # first entry under an audit key (None: no key yet)
    authenticated_to: int = 0               # last entry carrying a MAC (0: none)
    anchored: bool = False                  # the outside anchor was found and matches

    @property
    def legacy_until(self) -> int:
        """Entries 1..N were written before the store had an audit key: not authenticated."""
        if self.authenticated_from is None:
            return self.entries
        return min(self.authenticated_from - 1, self.entries)

    def summary(self) -> str:
        """One line for ``playback audit verify``."""
        parts = [f"Audit log intact: {self.entries} entries, chain head {self.head[:16]}"]
        if self.entries and self.legacy_until:
            parts.append(f"legacy, unauthenticated up to entry {self.legacy_until}")
        if self.authenticated_to:
            parts.append(f"authenticated up to entry {self.authenticated_to}")
        tail_from = max(self.authenticated_to, self.legacy_until) + 1
        if tail_from <= self.entries:
            which = (f"entry {tail_from} was" if tail_from == self.entries
                     else f"entries {tail_from}-{self.entries} were")
            parts.append(f"{which} written while the store was locked (sealed at the next unlock)")
        parts.append("outside anchor matches" if self.anchored else
                     "no outside anchor for this store on this machine, so the end of the log is checked "
                     "against index.sqlite only")
        return "; ".join(parts) + "."


class _Head(NamedTuple):
    seq: int
    hash: str
    store_id: str | None
    sealed_seq: int
    sealed_hash: str | None
    seal: str | None
    keys: str | None        # JSON list of {"from": first seq, "wrapped": hex}


class _Broken(AuditError):
    """A verification failure with a short code (recorded by an ``audit_alarm``)."""

    def __init__(self, code: str, at: int, message: str):
        super().__init__(message)
        self.code = code
        self.detail = f"{code}:{at}"


def _canonical(entry: dict) -> bytes:
    return json.dumps({k: entry[k] for k in sorted(entry) if k not in ("hash", "mac")}, separators=(",", ":"),
                      sort_keys=True).encode()


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(entry["prev"].encode() + _canonical(entry)).hexdigest()


def _mac(key: bytes, *parts) -> str:
    return hmac.new(key, "|".join(str(p) for p in parts).encode(), hashlib.sha256).hexdigest()


def entry_mac(key: bytes, store_id: str, hash_: str) -> str:
    return _mac(key, "playback-audit-entry-v2", store_id, hash_)


def head_seal(key: bytes, store_id: str, seq: int, hash_: str) -> str:
    return _mac(key, "playback-audit-head-v2", store_id, seq, hash_)


def _same(a, b) -> bool:
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(a, b)


def _key_label(store_id: str, start: int) -> str:
    return f"audit|{store_id}|{start}"


def _wrapped(master: bytes, key: bytes, store_id: str, start: int) -> dict:
    return {"from": start, "wrapped": vault.wrap(master, key, _key_label(store_id, start)).hex()}


def _parse_keys(raw: str | None) -> list[dict] | None:
    """The wrapped audit keys, or None when the column is not readable."""
    if not raw:
        return []
    try:
        keys = json.loads(raw)
        starts = [int(item["from"]) for item in keys]
        [bytes.fromhex(item["wrapped"]) for item in keys]
    except (ValueError, TypeError, KeyError):
        return None
    return keys if starts == sorted(set(starts)) else None


def _alarm_message(at: int, detail) -> str:
    code, _, where = str(detail or "").partition(":")
    what = _ALARM_WHAT.get(code, "the log did not check out")
    return (f"Audit log entry {at} records that the unlock before it found the log already changed ({what}, "
            f"entry {where or '?'}): it was edited while the store was locked.")


class AuditLog:
    """The audit log of the store at ``root``.

    :meth:`open` (the store calls it on unlock) gives it the vault's master key; from then on
    entries are keyed until :meth:`close` (on lock)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.path = self.root / LOG_NAME
        self._keys: list[tuple[int, bytes]] = []   # (first seq, key), while the store is unlocked
        self._master: bytes | None = None

    # ----- the head in index.sqlite -------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        con = sqlite3.connect(self.root / "index.sqlite", timeout=30)
        self._migrate(con)
        return con

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),"
                    " seq INTEGER NOT NULL, hash TEXT NOT NULL)")
        columns = {row[1] for row in con.execute("PRAGMA table_info(audit_head)")}
        for column, kind in _HEAD_COLUMNS:
            if column not in columns:          # a log made before entries were keyed
                con.execute(f"ALTER TABLE audit_head ADD COLUMN {column} {kind}")

    @staticmethod
    def _head(con: sqlite3.Connection) -> _Head:
        row = con.execute("SELECT seq, hash, store_id, sealed_seq, sealed_hash, seal, audit_keys FROM audit_head"
                          " WHERE id = 1").fetchone()
        if row is None:
            return _Head(0, GENESIS, None, 0, None, None, None)
        return _Head(row[0], row[1], row[2], row[3] or 0, row[4], row[5], row[6])

    @staticmethod
    def _ensure_id(con: sqlite3.Connection, head: _Head) -> _Head:
        """Give the store its random id (names its outside anchor) on first need."""
        if head.store_id:
            return head
        store_id = secrets.token_hex(16)
        con.execute("INSERT OR IGNORE INTO audit_head (id, seq, hash) VALUES (1, 0, ?)", (GENESIS,))
        con.execute("UPDATE audit_head SET store_id = ? WHERE id = 1", (store_id,))
        return head._replace(store_id=store_id)

    @contextlib.contextmanager
    def _locked(self):
        """Serialise writers across processes (the CLI and the dashboard may both append)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root / ".audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:   # Windows: single-process use
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    exclusive = _locked     # for Keys.change_passphrase: no entry is appended while keys rotate

    # ----- the anchor outside the store -----------------------------------------------------------
    def anchor_path(self, store_id: str) -> Path:
        return anchor_dir() / f"{store_id}.json"

    def _read_anchor(self, store_id: str | None) -> tuple[bool, dict | None]:
        """(whether the anchor exists, its content or None when unreadable)."""
        if not store_id:
            return False, None
        path = self.anchor_path(store_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return False, None
        except (OSError, ValueError):
            return True, None
        return True, data if isinstance(data, dict) else None

    def _write_anchor(self, data: dict) -> None:
        """Atomic replace; a folder that cannot be written leaves the store without an anchor
        (``verify`` says so) rather than stopping the action being audited."""
        with contextlib.suppress(OSError):
            folder = anchor_dir()
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(data, fh, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, folder / f"{data['store_id']}.json")
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def _advance_anchor(self, head: _Head, entry: dict, seal: str | None) -> None:
        exists, anchor = self._read_anchor(head.store_id)
        if exists and (anchor is None or (anchor.get("seq"), anchor.get("hash")) != (entry["seq"] - 1, entry["prev"])):
            return      # it does not continue what the anchor knows: leave the disagreement visible
        if seal is not None:
            sealed = {"sealed_seq": entry["seq"], "sealed_hash": entry["hash"], "seal": seal}
        elif anchor is not None:
            sealed = {k: anchor.get(k) for k in ("sealed_seq", "sealed_hash", "seal")}
        else:
            sealed = {"sealed_seq": head.sealed_seq, "sealed_hash": head.sealed_hash, "seal": head.seal}
        self._write_anchor({"store_id": head.store_id, "seq": entry["seq"], "hash": entry["hash"], **sealed})

    # ----- keys -----------------------------------------------------------------------------------
    @staticmethod
    def _unwrap(master: bytes, store_id: str | None, wrapped: list[dict] | None) -> list[tuple[int, bytes]]:
        if wrapped is None:
            raise _Broken("key", 0, "The audit keys in index.sqlite are unreadable: the index was edited.")
        try:
            return [(int(item["from"]), vault.unwrap(master, bytes.fromhex(item["wrapped"]),
                                                     _key_label(store_id or "", int(item["from"]))))
                    for item in wrapped]
        except (PlaybackError, ValueError, TypeError, KeyError):
            raise _Broken("key", 0, "The audit log's key in index.sqlite does not open with this passphrase: "
                                    "index.sqlite was edited or replaced.") from None

    def _current_key(self, head: _Head) -> bytes | None:
        """Our newest key, if it is still the store's newest (another process may have rotated it)."""
        if not self._keys:
            return None
        wrapped = _parse_keys(head.keys)
        if not wrapped or int(wrapped[-1]["from"]) != self._keys[-1][0]:
            return None
        return self._keys[-1][1]

    def open(self, master: bytes) -> None:
        """Open (or create) the audit keys with the vault's master key. The log is checked
        first: if it does not verify, an authenticated ``audit_alarm`` entry records why before
        anything is sealed. A key that does not open leaves entries pending (verify reports it)."""
        with self._locked(), contextlib.closing(self._connect()) as con, con:
            head = self._ensure_id(con, self._head(con))
            try:
                keys = self._unwrap(master, head.store_id, _parse_keys(head.keys))
            except _Broken:
                self._keys, self._master = [], None
                return
            if not keys:
                start, key = head.seq + 1, vault.new_key()
                raw = json.dumps([_wrapped(master, key, head.store_id, start)])
                con.execute("UPDATE audit_head SET audit_keys = ? WHERE id = 1", (raw,))
                head, keys = head._replace(keys=raw), [(start, key)]
            self._keys, self._master = keys, master
            try:
                self._examine(keys, head, self._read_entries(), self._read_anchor(head.store_id))
            except _Broken as problem:
                if problem.code != "alarm" and problem.detail != self._last_alarm():
                    self._append_locked(con, "audit_alarm", None, "system", problem.detail)

    def close(self) -> None:
        """Forget the keys (the store locked)."""
        self._keys, self._master = [], None

    def rotate(self, con: sqlite3.Connection, old_master: bytes, new_master: bytes) -> None:
        """Re-wrap the audit keys under ``new_master`` and start a new key at the next entry,
        inside the caller's transaction ``con`` and under :meth:`exclusive`."""
        self._migrate(con)
        head = self._ensure_id(con, self._head(con))
        wrapped, opened = [], []
        for item in _parse_keys(head.keys) or []:
            start = int(item["from"])
            try:
                key = vault.unwrap(old_master, bytes.fromhex(item["wrapped"]), _key_label(head.store_id, start))
            except PlaybackError:
                wrapped.append(item)            # left as found: verify reports it
                continue
            wrapped.append(_wrapped(new_master, key, head.store_id, start))
            opened.append((start, key))
        start, fresh = head.seq + 1, vault.new_key()
        if wrapped and int(wrapped[-1]["from"]) == start:   # a key that covers no entry yet
            wrapped.pop()
            opened = [k for k in opened if k[0] != start]
        wrapped.append(_wrapped(new_master, fresh, head.store_id, start))
        con.execute("UPDATE audit_head SET audit_keys = ? WHERE id = 1", (json.dumps(wrapped),))
        self._keys, self._master = opened + [(start, fresh)], new_master

    # ----- writing --------------------------------------------------------------------------------
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
            return self._append_locked(con, action, session_id, role, detail)

    def _append_locked(self, con: sqlite3.Connection, action: str, session_id: str | None, role: str,
                       detail: str) -> dict:
        head = self._ensure_id(con, self._head(con))
        key = self._current_key(head)
        entry = {"seq": head.seq + 1, "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "role": role, "action": action, "session_id": session_id, "detail": detail or "",
                 "auth": "hmac" if key else "pending", "prev": head.hash}
        entry["hash"] = entry_hash(entry)
        entry["mac"] = entry_mac(key, head.store_id, entry["hash"]) if key else None
        seal = head_seal(key, head.store_id, entry["seq"], entry["hash"]) if key else None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, json.dumps(entry, sort_keys=True).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        if key:
            con.execute("UPDATE audit_head SET seq = ?, hash = ?, sealed_seq = ?, sealed_hash = ?, seal = ?"
                        " WHERE id = 1", (entry["seq"], entry["hash"], entry["seq"], entry["hash"], seal))
        else:
            con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (entry["seq"], entry["hash"]))
        con.commit()
        self._advance_anchor(head, entry, seal)
        return entry

    # ----- reading and checking -------------------------------------------------------------------
    def _read_entries(self) -> list:
        if not self.path.is_file():
            return []
        out = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                out.append(json.loads(line))
            except ValueError:
                raise _Broken("unreadable", number,
                              f"Audit log entry {number} is not readable: the log was edited or cut.") from None
        return out

    def entries(self) -> list[dict]:
        return self._read_entries()

    def _last_alarm(self) -> str | None:
        with contextlib.suppress(AuditError):
            for entry in reversed(self._read_entries()):
                if isinstance(entry, dict) and entry.get("action") == "audit_alarm":
                    return entry.get("detail")
        return None

    def verify(self, master: bytes | None = None) -> Verification:
        """Check the chain, every MAC, the head in index.sqlite and the outside anchor; raise
        :class:`AuditError` naming the first problem. MACs need the vault's master key
        (``master``, or the one given to :meth:`open`); a store without audit keys verifies as
        legacy, unauthenticated. A store with keys and no master key raises StoreLockedError."""
        with contextlib.closing(self._connect()) as con:
            head = self._head(con)
        entries = self._read_entries()
        wrapped = _parse_keys(head.keys)
        master = master or self._master
        if master is not None:
            keys = self._unwrap(master, head.store_id, wrapped)
        elif wrapped:
            raise StoreLockedError("Checking the audit log's authentication codes needs the passphrase: set "
                                   "PLAYBACK_PASSPHRASE or run 'playback audit verify' in a terminal.")
        elif wrapped is None:
            raise _Broken("key", 0, "The audit keys in index.sqlite are unreadable: the index was edited.")
        else:
            keys = []
        return self._examine(keys, head, entries, self._read_anchor(head.store_id))

    def _examine(self, keys: list[tuple[int, bytes]], head: _Head, entries: list,
                 anchor_state: tuple[bool, dict | None]) -> Verification:
        store_id = head.store_id or ""
        first_from = keys[0][0] if keys else None

        def key_for(n: int) -> bytes | None:
            found = None
            for start, key in keys:
                if start <= n:
                    found = key
            return found

        prev, keyed_seen, last_sealed = GENESIS, False, 0
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or not {"seq", "prev", "hash", "action"} <= set(entry):
                raise _Broken("malformed", number, f"Audit log entry {number} is malformed: the log was edited.")
            if entry["seq"] != number:
                raise _Broken("seq", number, f"Audit log entry {number} has number {entry['seq']}: "
                                             "an entry was removed or added.")
            if entry["prev"] != prev:
                raise _Broken("chain", number, f"Audit log entry {number} does not follow entry {number - 1}: "
                                               "an entry was removed.")
            if entry_hash(entry) != entry["hash"]:
                raise _Broken("hash", number, f"Audit log entry {number} was edited (its hash does not match).")
            auth = entry.get("auth")
            if auth is None:
                if keyed_seen or (first_from is not None and number >= first_from):
                    raise _Broken("unauth", number, f"Audit log entry {number} lost its authentication code: "
                                                    "the log was rewritten.")
            elif auth == "pending" and entry.get("mac") is None:
                keyed_seen = True
            elif auth == "hmac":
                keyed_seen = True
                key = key_for(number)
                if key is None:
                    raise _Broken("nokey", number, f"Audit log entry {number} carries an authentication code but "
                                                   "index.sqlite holds no audit key for it: the index was edited.")
                if not _same(entry.get("mac"), entry_mac(key, store_id, entry["hash"])):
                    raise _Broken("mac", number, f"Audit log entry {number} was edited "
                                                 "(its authentication code does not match).")
                last_sealed = number
                if entry["action"] == "audit_alarm":
                    raise _Broken("alarm", number, _alarm_message(number, entry.get("detail")))
            else:
                raise _Broken("malformed", number, f"Audit log entry {number} is malformed: the log was edited.")
            prev = entry["hash"]
        count = len(entries)

        if (count, prev) != (head.seq, head.hash):
            if head.seq > count:
                raise _Broken("head", count, f"The audit log ends at entry {count} but {head.seq} were written: "
                                             "entries were cut off the end.")
            raise _Broken("head", count, f"The audit log does not end where index.sqlite says (entry {head.seq}): "
                                         "entries were cut, added or changed.")
        exists, anchor = anchor_state
        if exists:
            path = self.anchor_path(store_id)
            if anchor is None or anchor.get("store_id") != store_id:
                raise _Broken("anchor", count, f"The audit log's outside anchor {path} is unreadable: it was edited.")
            at, at_hash = anchor.get("seq"), anchor.get("hash")
            if (at, at_hash) != (count, prev):
                if not isinstance(at, int) or at > count:
                    raise _Broken("anchor", count, f"The audit log ends at entry {count} but its outside anchor "
                                                   f"records {at}: entries were cut off the end or the store was "
                                                   "rolled back to an older copy.")
                if at >= 1 and entries[at - 1]["hash"] == at_hash:
                    raise _Broken("anchor", at + 1, f"Audit log entries {at + 1}-{count} are missing from the "
                                                    "outside anchor: they were added behind Playback's back.")
                raise _Broken("anchor", at, f"Audit log entry {at} no longer matches the copy of its hash kept "
                                            "outside the store: entries were changed and their hashes recomputed.")
        sealed_hash = entries[last_sealed - 1]["hash"] if last_sealed else None
        if (head.sealed_seq, head.sealed_hash if head.sealed_seq else None) != (last_sealed, sealed_hash):
            raise _Broken("seal", count, f"index.sqlite says entry {head.sealed_seq} is the last authenticated one "
                                         f"but the log's is entry {last_sealed}: entries were cut off the end or "
                                         "rewritten.")
        if last_sealed and not _same(head.seal, head_seal(key_for(last_sealed), store_id, last_sealed, sealed_hash)):
            raise _Broken("seal", count, "The audit head in index.sqlite does not authenticate: it was moved or edited "
                                         "(entries cut off the end or rewritten).")

        if exists:
            s_seq = anchor.get("sealed_seq") or 0
            if (s_seq, anchor.get("sealed_hash") if s_seq else None) != (last_sealed, sealed_hash) or (
                    last_sealed and not _same(anchor.get("seal"),
                                              head_seal(key_for(last_sealed), store_id, last_sealed, sealed_hash))):
                raise _Broken("anchor", count, f"The outside anchor's authenticated head (entry {s_seq}) does not "
                                               "match the log: the log or the anchor was rewritten.")
        return Verification(count, prev, first_from, last_sealed, exists)


__all__ = ["AuditLog", "ACTIONS", "ROLES", "Verification", "anchor_dir", "entry_hash", "entry_mac", "head_seal"]
