"""The vault in the dashboard: unlock page, idle lock, asking again before export and delete.

Thin UI over :class:`capture.store.Store`. The unlocked store (and so the master key) lives in
``st.session_state`` of one browser session only; locking drops it and clears every cached
decrypted value. ``PLAYBACK_IDLE_LOCK_MIN`` (default 15) sets the idle time before locking.
"""
from __future__ import annotations

import os
import time
from datetime import date, timedelta
from pathlib import Path

import streamlit as st

from analysis.dashboard import memo
from analysis.dashboard.face_boxes import forget_in_browser
from analysis.dashboard.media_server import forget_media_urls
from analysis.export import export
from capture.errors import PlaybackError
from capture.store import MIN_PASSPHRASE_CHARS, Store
from capture.withdrawal import withdraw

DEFAULT_IDLE_LOCK_MIN = 15.0
REAUTH_VALID_S = 120.0       # a re-entered passphrase allows export/delete for this long

_STORE = "vault_store"
_ACTIVITY = "vault_last_activity"
_NOTICE = "vault_notice"
_REAUTH = "vault_reauth"
_SEEN = "vault_seen"


def idle_limit_s() -> float:
    try:
        minutes = float(os.environ.get("PLAYBACK_IDLE_LOCK_MIN", DEFAULT_IDLE_LOCK_MIN))
    except ValueError:
        minutes = DEFAULT_IDLE_LOCK_MIN
    return max(minutes, 0.1) * 60


@st.cache_resource(show_spinner=False)
def _startup_sweep(root: str) -> tuple[str, ...]:
    """The retention sweep, once when the dashboard starts (it needs no passphrase)."""
    try:
        return tuple(Store(root, from_env=False, role="system").sweep())
    except PlaybackError:
        return ()


def lock(*, reason: str = "lock", notice: str | None = None) -> None:
    """Lock this browser session: forget the key, drop every cached decrypted value."""
    store = st.session_state.pop(_STORE, None)
    if store is not None:
        try:
            store.lock(reason=reason)
        except PlaybackError:
            pass
    forget_media_urls()
    memo.forget()
    for key in (_REAUTH, _SEEN, "export_ready"):
        st.session_state.pop(key, None)
    st.cache_data.clear()
    if notice:
        st.session_state[_NOTICE] = notice


def vault_gate(root: Path | str, *, lock_button: bool = True) -> Store:
    """The unlocked store of this browser session; otherwise the unlock page and ``st.stop()``.
    Locks first when the session was idle for longer than :func:`idle_limit_s`. The sidebar's
    "Lock now" is left out with ``lock_button=False`` (the clients' walkthrough screen)."""
    _startup_sweep(str(root))
    state = st.session_state
    now = time.time()
    store = state.get(_STORE)
    if store is not None and now - state.get(_ACTIVITY, now) > idle_limit_s():
        minutes = idle_limit_s() / 60
        lock(reason="idle", notice=f"Locked after {minutes:g} minutes without activity. "
                                   "Enter the passphrase to continue.")
        store = None
    if store is None:
        unlock_page(Path(root))
        st.stop()
    state[_ACTIVITY] = now
    if lock_button:
        _lock_button()
    _idle_watch()
    return store


def _lock_button() -> None:
    with st.sidebar:
        if st.button("🔒 Lock now", key="vault_lock", help="Lock the dashboard; the passphrase is needed again."):
            lock(notice="Locked.")
            st.rerun()
        st.caption(f"Locks by itself after {idle_limit_s() / 60:g} minutes without activity.")


@st.fragment(run_every=30)
def _idle_watch() -> None:
    """Re-checks the idle time every 30 s without counting as activity, so an unattended screen
    locks even when nobody clicks."""
    started = st.session_state.get(_ACTIVITY)
    if started is not None and time.time() - started > idle_limit_s():
        st.rerun(scope="app")


def unlock_page(root: Path) -> None:
    forget_in_browser()
    notice = st.session_state.pop(_NOTICE, None)
    probe = Store(root, from_env=False)
    st.title("🔒 Playback is locked")
    try:
        creating = not probe.has_vault
    except PlaybackError as exc:          # e.g. the index is missing: say so, without the path
        st.error(hide_store_path(str(exc), root))
        return
    if notice:
        st.info(notice)
    if creating:
        st.markdown("This store has no passphrase yet. Choose one: every recording, analysis and note is "
                    "encrypted with it. **It cannot be recovered if lost.**")
    else:
        st.markdown("Enter the store's passphrase to review sessions.")
    with st.form("vault_unlock", clear_on_submit=True):
        passphrase = st.text_input("Passphrase", type="password", key="vault_passphrase")
        repeat = st.text_input("Type it again", type="password", key="vault_repeat") if creating else None
        submitted = st.form_submit_button("Create vault and unlock" if creating else "Unlock", type="primary")
    # nothing on this page names the store's folder, a session or a person: it is what anyone
    # passing the screen sees
    if not submitted:
        return
    if creating and passphrase != repeat:
        st.error("The two passphrases differ.")
        return
    if creating and len(passphrase) < MIN_PASSPHRASE_CHARS:
        st.error(f"Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")
        return
    try:
        store = Store(root, from_env=False).unlock(passphrase)
    except PlaybackError as exc:
        st.error(hide_store_path(str(exc), root))
        return
    st.session_state[_STORE] = store
    st.session_state[_ACTIVITY] = time.time()
    st.rerun()


def hide_store_path(message: str, root: Path | str) -> str:
    """``message`` without the store's folder, for the locked page ("the store at /x is locked"
    reads "the store is locked")."""
    root = Path(root)
    for path in sorted({str(root), str(root.expanduser()), str(root.expanduser().resolve())}, key=len, reverse=True):
        message = message.replace(f" at {path}", "").replace(path, "the store folder")
    return message


def note_access(store: Store, session_id: str, action: str) -> None:
    """Audit ``view`` / ``play`` of a session once per unlock (not on every rerun)."""
    seen = st.session_state.setdefault(_SEEN, set())
    if (action, session_id) not in seen:
        store.audit(action, session_id)
        seen.add((action, session_id))


def reauthenticated(store: Store, action: str, session_id: str) -> bool:
    """True if the passphrase was given again for ``action`` on this session within
    ``REAUTH_VALID_S``; otherwise shows the prompt and returns False."""
    granted = st.session_state.setdefault(_REAUTH, {})
    if time.time() - granted.get((action, session_id), 0.0) < REAUTH_VALID_S:
        return True
    with st.form(f"reauth_{action}_{session_id}", clear_on_submit=True):
        st.markdown(f"**Confirm it is you.** Type the passphrase again to {action} session `{session_id}`.")
        passphrase = st.text_input("Passphrase", type="password", key=f"reauth_pw_{action}")
        submitted = st.form_submit_button(f"Confirm {action}", type="primary")
    if submitted:
        try:
            store.reauthenticate(passphrase, action=action)
        except PlaybackError as exc:
            st.error(str(exc))
            return False
        granted[(action, session_id)] = time.time()
        st.rerun()
    return False


EXPORTS = {"csv": ("Events (CSV)", "text/csv", "events.csv"),
           "rttm": ("Speaker turns (RTTM)", "text/plain", "turns.rttm"),
           "eaf": ("ELAN annotations (EAF)", "application/xml", "events.eaf")}


def session_actions(store: Store, session_id: str, *, analysed: bool) -> None:
    """Export (after the passphrase again), retention date, delete (after the passphrase again)."""
    st.divider()
    st.subheader("Export, keep or delete")
    left, middle, right = st.columns(3)
    with left:
        st.markdown("**Export**")
        if not analysed:
            st.caption("Analyse the session first.")
        elif st.session_state.get("export_for") != session_id:
            if st.button("Export…", key="export_start", help="Asks for the passphrase again"):
                st.session_state.export_for = session_id
                st.rerun()
        elif reauthenticated(store, "export", session_id):
            fmt = st.radio("Format", list(EXPORTS), format_func=lambda f: EXPORTS[f][0], key="export_format",
                           horizontal=True)
            title, mime, name = EXPORTS[fmt]
            data = export(store, session_id, fmt)
            st.download_button(f"Download {title}", data, file_name=f"{session_id}-{name}", mime=mime,
                               key="export_download", on_click=store.audit, args=("export", session_id),
                               kwargs={"detail": fmt})
            st.caption("The file you download is not encrypted: keep it somewhere safe.")
    with middle:
        st.markdown("**Kept until**")
        row = store.session_row(session_id)
        current = date.fromisoformat(row.retention_until) if row.retention_until else date.today()
        chosen = st.date_input("Destroyed automatically after", value=current, key=f"retention_{session_id}",
                               min_value=min(current, date.today()), max_value=date.today() + timedelta(days=3650))
        if chosen != current and st.button("Save date", key="retention_save"):
            store.set_retention(session_id, chosen)
            st.rerun()
    with right:
        st.markdown("**Delete**")
        if st.session_state.get("delete_for") != session_id:
            if st.button("Delete session…", key="delete_start", help="Asks for the passphrase again"):
                st.session_state.delete_for = session_id
                st.rerun()
        else:
            st.warning("Deleting destroys this session's key: the recording, analysis and notes become "
                       "unreadable everywhere, backups included. This cannot be undone.")
            if reauthenticated(store, "delete", session_id) and st.button(
                    "Delete for good", key="delete_confirm", type="primary"):
                store.delete_session(session_id)
                for key in ("delete_for", "export_for", "session_id"):
                    st.session_state.pop(key, None)
                st.session_state.pop(_REAUTH, None)
                st.cache_data.clear()
                memo.forget()
                st.rerun()
            if st.button("Keep it", key="delete_cancel"):
                st.session_state.pop("delete_for", None)
                st.rerun()


def withdrawal_action(store: Store, session_id: str) -> None:
    """Someone present withdraws consent: one choice and one confirmation erase the session
    (the recording holds everyone's voice and face; see capture/consent.py)."""
    people = {p["id"]: p["name"] for p in store.manifest(session_id)["participants"]}
    with st.expander("Someone withdraws their consent"):
        st.caption("Withdrawal erases the whole session: the recording and its analysis hold everyone's "
                   "voice and face together, so one person's part cannot be kept apart from the others'.")
        who = st.selectbox("Who withdraws", list(people), format_func=people.get, key=f"withdraw_who_{session_id}")
        if st.button(f"{people[who]} withdraws: erase this session", key=f"withdraw_{session_id}", type="primary"):
            withdraw(store, session_id, who)
            st.session_state.pop("session_id", None)
            st.cache_data.clear()
            memo.forget()
            st.session_state.withdrawn_notice = f"{people[who]} withdrew consent; session {session_id} was erased."
            st.rerun()


__all__ = ["withdrawal_action", "vault_gate", "lock", "note_access", "reauthenticated", "session_actions", "idle_limit_s"]
