"""A participant withdraws: stop a running capture and crypto-erase the whole session.

The policy (why the whole session goes) is in :mod:`capture.consent`'s docstring. This sits above
live capture because it may have to stop a recording in progress.
"""
from __future__ import annotations

import logging

from capture.consent import _audit
from capture.errors import PlaybackError
from capture.live import recorder
from capture.store import Store

log = logging.getLogger(__name__)


def withdraw(store: Store, session_id: str, participant: str, *, stop_timeout_s: float = 30.0) -> str:
    """One action: stop a running capture of ``session_id`` and erase the session (see the
    module docstring for why shared media goes too). ``participant`` is an id or a name.
    Returns the participant id that withdrew."""
    row = store.session_row(session_id)
    try:
        manifest = store.read_json(session_id, "manifest.json")
        people = manifest.get("participants", [])
    except PlaybackError:
        people = []
    if not people:
        people = recorder.capture_participants(store, session_id)
    match = [p for p in people if participant in (p["id"],) or p["name"].casefold() == participant.casefold()]
    if not match:
        names = ", ".join(p["name"] for p in people) or "none recorded"
        raise PlaybackError(f"'{participant}' is not a participant of session {session_id} ({names}).")
    pid = match[0]["id"]
    if row.status == "recording":
        recorder.request_stop(store, session_id, reason="withdrawn", timeout_s=stop_timeout_s)
    _audit(store, "consent", session_id, f"{pid}:withdrawn")
    store.delete_session(session_id, reason="withdraw")
    log.info("session %s erased after %s withdrew", session_id, pid)
    return pid
