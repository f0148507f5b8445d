"""Decrypted session data kept between reruns of one browser session, while the files it was
read from are unchanged: a 50-minute session's tables cost a few tenths of a second to decrypt
and decode, on every click otherwise. Kept in this browser session's state only (never in a
cache shared between sessions) and dropped when the dashboard locks (:func:`forget`)."""
from __future__ import annotations

from typing import Callable, TypeVar

import streamlit as st

from capture.store import Store

T = TypeVar("T")
_MEMO = "session_memo"        # (what, session id) -> (files' versions, value), most recent last


def remembered(store: Store, session_id: str, what: str, under: list[str], build: Callable[[], T], *,
               keep: int = 2) -> T:
    """``build()``, or the value it gave last time for ``(what, session_id)`` if no file of the
    session below the folders or files ``under`` has been written, added or removed since. At
    most ``keep`` sessions' values of one ``what`` are kept (the most recently used)."""
    versions = tuple((rel, store.version(session_id, rel)) for folder in under
                     for rel in (store.list_files(session_id, folder) or [folder]))
    memo = st.session_state.setdefault(_MEMO, {})
    kept = memo.pop((what, session_id), None)
    if kept is None or kept[0] != versions:
        kept = (versions, build())
    memo[(what, session_id)] = kept                  # most recent last
    mine = [key for key in memo if key[0] == what]
    for key in mine[:max(len(mine) - keep, 0)]:
        del memo[key]
    return kept[1]


def forget() -> None:
    """Drop everything kept (the dashboard locks)."""
    st.session_state.pop(_MEMO, None)
