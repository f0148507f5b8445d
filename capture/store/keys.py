"""The vault of a store: its passphrase, master key and per-session data keys.

Every session file is encrypted with the session's own data key (:mod:`capture.store.vault`);
data keys are kept in the index wrapped by a master key derived from the therapist's passphrase
(scrypt; the ``vault`` table holds its parameters and a check blob). Wrong passphrases are
counted and, after :data:`FREE_ATTEMPTS`, rate-limited (seconds, see :func:`_retry_wait`).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Callable

from capture.errors import PlaybackError, StoreLockedError, WrongPassphraseError
from capture.store import vault
from capture.store.audit import AuditLog, Verification
from capture.store.index import Index, utc_now
from capture.store.retention import retention_until

MIN_PASSPHRASE_CHARS = 8


def case_label(case_id: str) -> str:
    """What a case's sealed details are authenticated with (ties them to their row)."""
    return f"case|{case_id}"

FREE_ATTEMPTS = 3                    # wrong passphrases before waiting is enforced


class Keys:
    """Master and session keys of the store indexed by ``index``.

    ``passphrase`` unlocks on first need; ``plaintext`` (the encryption benchmark only) keeps no
    keys at all. ``audit`` is :meth:`Store.audit`; ``clock()`` is the time in seconds since the
    epoch (for the rate limit).
    """

    def __init__(self, index: Index, audit_log: AuditLog, *, audit: Callable, passphrase: str | None,
                 plaintext: bool, clock: Callable[[], float]):
        self.index = index
        self.root = index.root
        self.audit_log = audit_log
        self._audit = audit
        self._clock = clock
        self.passphrase = passphrase
        self.plaintext = plaintext
        self.master: bytes | None = None
        self._held: dict[str, bytes] = {}   # session id -> data key, while unlocked

    @property
    def has_vault(self) -> bool:
        with contextlib.closing(self.index.connect()) as con:
            return con.execute("SELECT 1 FROM vault WHERE id = 1").fetchone() is not None

    @property
    def unlocked(self) -> bool:
        return self.plaintext or self.master is not None

    def locked_message(self) -> str:
        return (f"The store at {self.root} is locked. Give its passphrase: set PLAYBACK_PASSPHRASE for "
                "scripted use, run the command in a terminal to be asked, or unlock the dashboard.")

    # ----- the passphrase --------------------------------------------------------------------------
    @staticmethod
    def _vault_row(con) -> tuple | None:
        return con.execute("SELECT kdf, check_blob, failed_attempts, last_failure FROM vault WHERE id = 1").fetchone()

    def check_passphrase(self, passphrase: str, *, failure_action: str) -> bytes:
        """The master key for ``passphrase``; wrong ones are counted, rate-limited and audited."""
        with contextlib.closing(self.index.connect()) as con:
            row = self._vault_row(con)
        if row is None:
            raise StoreLockedError(f"The store at {self.root} has no vault yet; unlock it once to create it.")
        kdf, check, failed, last_failure = row
        wait = _retry_wait(failed) - (self._clock() - last_failure)
        if wait > 0:
            self._audit(failure_action, detail="rate_limited")
            raise WrongPassphraseError(
                f"Too many wrong passphrases ({failed}); wait {_wait_text(wait)} before trying again.")
        master = vault.derive_master(passphrase or "", json.loads(kdf))
        if not vault.passphrase_matches(master, check):
            with contextlib.closing(self.index.connect()) as con, con:
                con.execute("UPDATE vault SET failed_attempts = failed_attempts + 1, last_failure = ? WHERE id = 1",
                            (self._clock(),))
            self._audit(failure_action, detail="wrong_passphrase")
            later = _retry_wait(failed + 1)
            raise WrongPassphraseError(
                f"That passphrase does not open the store at {self.root}; check it and try again"
                + (f" in {_wait_text(later)}." if later else "."))
        if failed:
            with contextlib.closing(self.index.connect()) as con, con:
                con.execute("UPDATE vault SET failed_attempts = 0, last_failure = 0 WHERE id = 1")
        return master

    def create_vault(self, passphrase: str) -> None:
        """Set up a new store's vault with ``passphrase`` (refused if the store has one)."""
        _refuse_short(passphrase)
        self.index.refuse_replaced_index()
        params = vault.kdf_params()
        master = vault.derive_master(passphrase, params)
        with contextlib.closing(self.index.connect()) as con, con:
            if self._vault_row(con) is not None:
                raise PlaybackError(f"The store at {self.root} already has a vault; unlock it instead.")
            con.execute("INSERT INTO vault (id, kdf, check_blob, created_utc) VALUES (1, ?, ?, ?)",
                        (json.dumps(params), vault.check_blob(master), utc_now()))
        self.master = master
        self.audit_log.open(master)
        self._audit("vault_created")
        self._encrypt_legacy_sessions()

    def unlock(self, passphrase: str | None = None) -> None:
        """Unlock with ``passphrase`` (else the one given at construction); a store without a
        vault gets one with this passphrase. Raises :class:`WrongPassphraseError`."""
        passphrase = passphrase if passphrase is not None else self.passphrase
        if self.plaintext:
            return
        if not passphrase:
            raise StoreLockedError(self.locked_message())
        if len(passphrase) < MIN_PASSPHRASE_CHARS and not self.index.path.is_file():
            # a new store: refuse a short passphrase before anything (index included) is written
            self.index.refuse_lost_index()
            _refuse_short(passphrase)
        if not self.has_vault:
            self.create_vault(passphrase)
            return
        self.master = self.check_passphrase(passphrase, failure_action="unlock_failed")
        self._held.clear()
        self.audit_log.open(self.master)     # checks the log (alarm if changed), then keys entries
        self._audit("unlock")
        self._encrypt_legacy_sessions()

    def lock(self, *, reason: str = "lock") -> None:
        """Forget the master key and every session key held in memory."""
        if self.master is not None:          # audited before the key goes, so the entry is keyed
            self._audit("idle_lock" if reason == "idle" else "lock")
        self.master = None
        self.passphrase = None
        self._held.clear()
        self.audit_log.close()

    def reauthenticate(self, passphrase: str, *, action: str) -> None:
        """Ask again before a sensitive ``action`` (export, delete): the passphrase must match;
        failures count towards the same rate limit and are audited."""
        self.check_passphrase(passphrase, failure_action="reauth_failed")
        self._audit("reauth", detail=action)

    def change_passphrase(self, old: str, new: str) -> int:
        """Re-wrap every session key under a key from ``new``; media is not re-encrypted.
        Returns the number of session keys re-wrapped."""
        _refuse_short(new)
        old_master = self.check_passphrase(old, failure_action="unlock_failed")
        self.audit_log.open(old_master)       # check the log and seal it under the old key first
        params = vault.kdf_params()
        new_master = vault.derive_master(new, params)
        with self.audit_log.exclusive(), contextlib.closing(self.index.connect()) as con, con:
            rows = con.execute("SELECT session_id, wrapped_key FROM sessions WHERE wrapped_key IS NOT NULL").fetchall()
            for session_id, wrapped in rows:
                key = vault.unwrap(old_master, wrapped, session_id)
                con.execute("UPDATE sessions SET wrapped_key=? WHERE session_id=?",
                            (vault.wrap(new_master, key, session_id), session_id))
            for case_id, sealed in con.execute("SELECT case_id, sealed FROM cases").fetchall():
                label = case_label(case_id)
                con.execute("UPDATE cases SET sealed=? WHERE case_id=?",
                            (vault.wrap(new_master, vault.unwrap(old_master, sealed, label), label), case_id))
            con.execute("UPDATE vault SET kdf=?, check_blob=? WHERE id = 1",
                        (json.dumps(params), vault.check_blob(new_master)))
            self.audit_log.rotate(con, old_master, new_master)   # same transaction as the vault
        self.master = new_master
        self.passphrase = None
        self._audit("passphrase_change")
        return len(rows)

    def verify_audit(self, passphrase: str | None = None) -> Verification:
        """Check the audit log: chain, MACs, heads and outside anchor (:meth:`AuditLog.verify`).
        A store with a vault needs its passphrase (else the one held, or the master key when
        unlocked); this neither unlocks the store nor writes an entry (a wrong passphrase does)."""
        if self.plaintext or self.master is not None or not self.has_vault:
            return self.audit_log.verify(self.master)
        passphrase = passphrase if passphrase is not None else self.passphrase
        if not passphrase:
            raise StoreLockedError(self.locked_message())
        return self.audit_log.verify(self.check_passphrase(passphrase, failure_action="unlock_failed"))

    # ----- session keys ------------------------------------------------------------------------------
    def master_key(self) -> bytes:
        """The master key, unlocking with the held passphrase if need be."""
        if self.master is None:
            if not self.passphrase:
                raise StoreLockedError(self.locked_message())
            self.unlock(self.passphrase)
        return self.master

    def data_key(self, session_id: str) -> bytes:
        """The data key of ``session_id`` (unwrapped on first use, then held)."""
        key = self._held.get(session_id)
        if key is not None:
            return key
        master = self.master_key()
        key = self._held.get(session_id)      # unlock may have created it (legacy sessions)
        if key is not None:
            return key
        row = self.index.wrapped_key(session_id)
        if row is None:
            self.index.session_row(session_id)      # raises SessionNotFoundError
        if row[0] is None:
            raise StoreLockedError(f"Session {session_id} has no key in this store: it was destroyed.")
        key = self._held[session_id] = vault.unwrap(master, row[0], session_id)
        return key

    def new_key(self, session_id: str) -> tuple[bytes | None, bytes | None]:
        """A fresh data key for a new session and that key wrapped (both None in plaintext)."""
        if self.plaintext:
            return None, None
        key = vault.new_key()
        return key, vault.wrap(self.master_key(), key, session_id)

    def seal(self, label: str, data: bytes) -> bytes:
        """``data`` encrypted under the master key, ``label`` authenticated (as is, in plaintext)."""
        return data if self.plaintext else vault.wrap(self.master_key(), data, label)

    def unseal(self, label: str, blob: bytes) -> bytes:
        """What :meth:`seal` sealed under ``label``."""
        return blob if self.plaintext else vault.unwrap(self.master_key(), blob, label)

    def hold(self, session_id: str, key: bytes | None) -> None:
        """Keep ``key`` as the data key of ``session_id`` (nothing if None)."""
        if key is not None:
            self._held[session_id] = key

    def forget(self, session_id: str) -> None:
        """Drop the held data key of ``session_id``, if any."""
        self._held.pop(session_id, None)

    def _encrypt_legacy_sessions(self) -> None:
        """Encrypt sessions written before the vault existed (plaintext files, no key)."""
        for session_id in self.index.unkeyed_sessions():
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
            self.index.set_key(session_id, vault.wrap(self.master, key, session_id), retention_until())
            self._held[session_id] = key
            self._audit("migrate", session_id)


def _refuse_short(passphrase: str | None) -> None:
    """Refuse a new passphrase shorter than :data:`MIN_PASSPHRASE_CHARS` characters."""
    if len(passphrase or "") < MIN_PASSPHRASE_CHARS:
        raise WrongPassphraseError(f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")


def _retry_wait(failed: int) -> float:
    """Seconds to wait after ``failed`` wrong passphrases in a row: none for the first few,
    then 5 s doubling up to 5 minutes."""
    return 0.0 if failed < FREE_ATTEMPTS else float(min(5 * 2 ** (failed - FREE_ATTEMPTS), 300))


def _wait_text(seconds: float) -> str:
    """A wait for a message, rounded up to whole seconds and never "0 s" (0.2 s left is "1 s")."""
    return f"{max(1, int(-(-seconds // 1)))} s"
