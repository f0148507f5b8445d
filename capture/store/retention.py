"""Retention and deletion: retention dates, crypto-erase, and the sweep that applies both.

Every session has a retention date (ISO, in the index); :meth:`Retention.sweep` destroys the
sessions past it. Deleting a session destroys its wrapped key first (crypto-erase), so copies of
its files anywhere stay unreadable; the sweep and withdrawal of consent use the same path.
"""
from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from typing import Callable

from capture.errors import PlaybackError
from capture.store.files import Files
from capture.store.index import Index

DEFAULT_RETENTION_DAYS = 90          # editable per session; PLAYBACK_RETENTION_DAYS changes the default
STAGING_MAX_AGE_S = 24 * 3600        # a staging folder older than this (seconds) is a crashed import's


def default_retention_days() -> int:
    """Days a new session is kept: ``PLAYBACK_RETENTION_DAYS`` if valid (at least 1), else 90."""
    try:
        return max(1, int(os.environ.get("PLAYBACK_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)))
    except ValueError:
        return DEFAULT_RETENTION_DAYS


def retention_until(days: int | None = None) -> str:
    """The ISO date ``days`` (else :func:`default_retention_days`) days from today."""
    return (date.today() + timedelta(days=days or default_retention_days())).isoformat()


class Retention:
    """Retention dates, deletion and the sweep of one store.

    ``forget_key(session_id)`` drops a session key held in memory; ``audit`` is
    :meth:`Store.audit`; ``clock()`` is the time in seconds since the epoch.
    """

    def __init__(self, index: Index, files: Files, *, forget_key: Callable[[str], None], audit: Callable,
                 clock: Callable[[], float]):
        self.index = index
        self.files = files
        self._forget_key = forget_key
        self._audit = audit
        self._clock = clock

    def set_retention(self, session_id: str, until: date | str) -> str:
        """Keep ``session_id`` until ``until`` (an ISO date); the sweep destroys it after that day."""
        self.index.session_row(session_id)
        try:
            day = until if isinstance(until, date) else date.fromisoformat(str(until))
        except ValueError:
            raise PlaybackError(f"'{until}' is not a date; write it as YYYY-MM-DD, e.g. 2027-01-31.") from None
        self.index.set_retention(session_id, day.isoformat())
        self._audit("retention", session_id)
        return day.isoformat()

    def delete_session(self, session_id: str, *, reason: str = "delete", role: str | None = None) -> None:
        """Crypto-erase: destroy the session's wrapped key (overwritten in the index), then
        remove its files. Copies of the files anywhere (backups, SSD blocks) stay unreadable.
        ``reason`` is the audit action: ``delete``, ``withdraw`` or ``sweep``."""
        self.index.session_row(session_id)
        self.index.erase_row(session_id)
        self._forget_key(session_id)
        self.files.remove_session(session_id)
        self._audit(reason if reason in ("delete", "withdraw", "sweep") else "delete", session_id, role=role)

    def sweep(self, today: date | None = None) -> list[str]:
        """Destroy every session whose retention date has passed (and leftovers of crashed
        imports); returns the destroyed ids. Needs no passphrase: destroying a key needs none."""
        today = today or date.today()
        expired = [row.session_id for row in self.index.list_sessions()
                   if row.retention_until and date.fromisoformat(row.retention_until) < today]
        for session_id in expired:
            self.delete_session(session_id, reason="sweep", role="system")
        staging = self.files.staging_root
        if staging.is_dir():
            known = {row.session_id for row in self.index.list_sessions()}   # pending ones: recover_pending finishes them
            for leftover in staging.iterdir():
                if (not self.files.is_staging(leftover.name) and leftover.name not in known
                        and self._clock() - leftover.stat().st_mtime > STAGING_MAX_AGE_S):
                    shutil.rmtree(leftover, ignore_errors=True)
        if expired:
            return expired
        self._audit("sweep", None, role="system", detail="none_expired")
        return expired
