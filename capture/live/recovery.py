"""Recovery on start (R1, R2): a capture whose process died is assembled, never deleted.

:func:`recover_interrupted` runs when the command line or the dashboard starts. A session
whose status is ``recording`` and whose capture lock is free (the recording process is gone:
the kernel releases its lock however it ended, ``kill -9`` included) is assembled from every
sealed segment and marked ``interrupted``. A capture that died before sealing anything becomes
an ``interrupted`` session of 0 s, kept so the therapist sees what happened. An import or
recording whose creation was killed after its files were complete is finished first
(:meth:`Store.recover_pending`).
"""
from __future__ import annotations

import logging

from capture.errors import PlaybackError
from capture.live.recorder import CAPTURE_FILE, assemble
from capture.store import Store

log = logging.getLogger(__name__)


def recover_interrupted(store: Store) -> list[str]:
    """Assemble and mark ``interrupted`` every capture left behind by a dead process; returns
    the recovered session ids. Captures still running in a live process are left alone."""
    recovered = []
    try:
        recovered += store.recover_pending()
        rows = store.list_sessions()
    except PlaybackError:
        return recovered
    for row in rows:
        if row.status != "recording":
            continue
        try:
            lock = store.capture_lock(row.session_id)
        except (OSError, PlaybackError):
            continue
        if lock is None:
            continue  # still recording in a live process
        try:
            if store.exists(row.session_id, CAPTURE_FILE):
                assemble(store, row.session_id, interrupted=True)
            else:
                store.set_status(row.session_id, "interrupted")
            recovered.append(row.session_id)
            log.warning("recovered interrupted recording %s", row.session_id)
        except PlaybackError as exc:
            log.error("could not recover session %s: %s", row.session_id, exc)
        finally:
            lock.close()
    return recovered
