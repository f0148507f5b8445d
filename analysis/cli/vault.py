"""The vault's side of the ``playback`` command line: unlocking, delete, sweep, audit,
passphrase and retention commands. :mod:`analysis.cli` wires them in.

The passphrase comes from ``PLAYBACK_PASSPHRASE`` (scripted use) or is asked for on the
terminal (twice when the vault is being created). It is never a command-line argument, which
other users of the machine could read in the process list.
"""
from __future__ import annotations

import getpass
import os
import sys
from datetime import date, timedelta
from pathlib import Path

from capture.errors import PlaybackError, StoreLockedError, WrongPassphraseError
from capture.store import INDEX_NAME, MIN_PASSPHRASE_CHARS, Store


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _ask(prompt: str) -> str:
    return getpass.getpass(prompt)


def ask_new_passphrase(what: str = "the new vault") -> str:
    """A new passphrase: ``PLAYBACK_NEW_PASSPHRASE`` for scripts, else asked twice."""
    if os.environ.get("PLAYBACK_NEW_PASSPHRASE"):
        return os.environ["PLAYBACK_NEW_PASSPHRASE"]
    if not _interactive():
        raise StoreLockedError("Set PLAYBACK_NEW_PASSPHRASE, or run this command in a terminal to be asked.")
    first = _ask(f"Choose a passphrase for {what} (at least {MIN_PASSPHRASE_CHARS} characters): ")
    if len(first) < MIN_PASSPHRASE_CHARS:
        raise WrongPassphraseError(f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")
    if _ask("Type it again: ") != first:
        raise WrongPassphraseError("The two passphrases differ; nothing was changed.")
    return first


def store_at(root: Path | None) -> Store:
    """The (locked) store at ``root``; a ``--store`` that is not a folder is refused in one line."""
    store = Store(root)
    if store.root.exists() and not store.root.is_dir():
        raise PlaybackError(f"The store {store.root} is a file, not a folder; give --store a folder "
                            "(a new one is created).")
    return store


def open_store(root: Path | None, *, unlock: bool = True) -> Store:
    """The store at ``root``, unlocked when ``unlock``: with ``PLAYBACK_PASSPHRASE``, else by
    asking on the terminal. A new store's vault is created here (the passphrase asked twice)."""
    store = store_at(root)
    if not unlock:
        return store
    passphrase = os.environ.get("PLAYBACK_PASSPHRASE") or None
    if passphrase is None:
        if not _interactive():
            raise StoreLockedError(store._locked_message())
        if not (store.root / INDEX_NAME).is_file():
            store._refuse_lost_index()          # nothing is written before the new passphrase passed
        if (store.root / INDEX_NAME).is_file() and store.has_vault:
            passphrase = _ask(f"Passphrase for the Playback store at {store.root}: ")
        else:
            print(f"Creating an encrypted store at {store.root}. Everything in it is readable only with "
                  "this passphrase: keep it safe, it cannot be recovered.", file=sys.stderr)
            passphrase = ask_new_passphrase("this store")
    return store.unlock(passphrase)


# ----- commands ------------------------------------------------------------------------------
def cmd_delete(args) -> int:
    store = open_store(args.store)
    store.session_row(args.session_id)
    if not args.yes:
        if not _interactive():
            raise PlaybackError(f"Deleting is permanent; add --yes to delete session {args.session_id}.")
        answer = input(f"Delete session {args.session_id} for good (its key is destroyed)? Type its id to confirm: ")
        if answer.strip() != args.session_id:
            print("Nothing deleted.", file=sys.stderr)
            return 1
    store.delete_session(args.session_id)
    print(f"Deleted session {args.session_id}: its key is destroyed, its files are unreadable.", file=sys.stderr)
    return 0


def cmd_sweep(args) -> int:
    store = store_at(args.store)
    destroyed = store.sweep()
    for session_id in destroyed:
        print(f"Destroyed session {session_id} (retention date passed).", file=sys.stderr)
    if not destroyed:
        print("No session has passed its retention date.", file=sys.stderr)
    return 0


def cmd_audit(args) -> int:
    store = store_at(args.store)
    if args.audit_command == "verify":      # MACs need the passphrase; this does not unlock the store
        passphrase = os.environ.get("PLAYBACK_PASSPHRASE") or None
        if passphrase is None and store.has_vault and _interactive():
            passphrase = _ask(f"Passphrase for the Playback store at {store.root}: ")
        print(store.verify_audit(passphrase).summary())
        return 0
    for entry in store.audit_log.entries()[-args.last:]:
        print(f"{entry['seq']:>6}  {entry['utc']}  {entry['role']:<10} {entry['action']:<18} "
              f"{entry.get('session_id') or '-':<18} {entry.get('detail') or ''}")
    return 0


def cmd_passphrase(args) -> int:
    store = store_at(args.store)
    if not store.has_vault:
        raise PlaybackError(f"The store at {store.root} has no vault yet; import a session first.")
    old = os.environ.get("PLAYBACK_PASSPHRASE") or (
        _ask("Current passphrase: ") if _interactive() else None)
    if not old:
        raise StoreLockedError("Set PLAYBACK_PASSPHRASE to the current passphrase, or run this in a terminal.")
    store.reauthenticate(old, action="passphrase")
    count = store.change_passphrase(old, ask_new_passphrase("this store"))
    print(f"Passphrase changed; {count} session keys re-wrapped (media was not re-encrypted).", file=sys.stderr)
    return 0


def cmd_retention(args) -> int:
    store = store_at(args.store)
    if args.until is None and args.days is None:
        row = store.session_row(args.session_id)
        print(row.retention_until or "-")
        return 0
    store = open_store(args.store)        # changing how long a session is kept needs the passphrase
    until = args.until if args.until is not None else (date.today() + timedelta(days=args.days)).isoformat()
    day = store.set_retention(args.session_id, until)
    print(f"Session {args.session_id} is kept until {day}; the sweep destroys it after that day.", file=sys.stderr)
    return 0


def add_commands(add) -> None:
    """Register the vault's commands with ``add(name, func, help)`` of :func:`analysis.cli.build_parser`."""
    p = add("delete", cmd_delete, "destroy a session for good (crypto-erase: its key is destroyed)")
    p.add_argument("session_id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add("sweep", cmd_sweep, "destroy every session past its retention date")
    p = add("audit", cmd_audit, "check (verify) or show the audit log")
    p.add_argument("audit_command", choices=["verify", "show"])
    p.add_argument("--last", type=int, default=50, help="entries to show (show)")
    add("passphrase", cmd_passphrase, "change the store's passphrase (re-wraps keys only)")
    p = add("retention", cmd_retention, "show or set how long a session is kept")
    p.add_argument("session_id")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--until", help="keep until this date (YYYY-MM-DD)")
    group.add_argument("--days", type=int, help="keep for this many days from today")


__all__ = ["open_store", "store_at", "add_commands", "ask_new_passphrase"]
