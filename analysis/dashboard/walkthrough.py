"""The screen the clients watch: the therapist's chosen moments as a playlist, a large video,
each moment introduced in plain words, and each person shown able to say no before it plays.

Nothing else is reachable from here: no notes, no dismissed or vetoed moments, no scores, no
other session; leaving asks for the passphrase.
"""
from __future__ import annotations

import streamlit as st

from analysis.dashboard.vault import hide_store_path
from analysis.review import load_added, load_decisions, load_review, load_walkthrough, veto_moment, walkthrough_playlist
from analysis.takehome import clip, clip_span
from capture.errors import PlaybackError
from capture.store import Store

_ACTIVE = "walkthrough_session"
_INDEX = "walkthrough_index"
_PLAYING = "walkthrough_playing"
_CLIPS = "walkthrough_clips"          # moment id -> MP4 bytes of that moment only


def start_walkthrough(session_id: str) -> None:
    st.session_state.pop(_CLIPS, None)
    st.session_state[_ACTIVE] = session_id
    st.session_state[_INDEX] = 0
    st.session_state[_PLAYING] = False


def active_walkthrough() -> str | None:
    """The session whose walkthrough is on screen, or None."""
    return st.session_state.get(_ACTIVE)


# The clients' screen shows the walkthrough only: no sidebar, no Streamlit menu or toolbar.
CLIENT_SCREEN_STYLE = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stToolbar"], [data-testid="stMainMenu"], [data-testid="stDecoration"] { display: none !important; }
</style>"""


def walkthrough_page(store: Store, session_id: str) -> None:
    st.html(CLIENT_SCREEN_STYLE)
    review = load_review(store, session_id)
    added = load_added(store, session_id)
    playlist = walkthrough_playlist(review, load_decisions(store, session_id), load_walkthrough(store, session_id), added)
    st.title("Looking back together")
    if playlist.empty:
        st.info("No moments are left to watch.")
    else:
        index = min(st.session_state.get(_INDEX, 0), len(playlist) - 1)
        moment = playlist.iloc[index]
        st.caption(f"Moment {index + 1} of {len(playlist)}")
        st.subheader(moment.intro)
        if not st.session_state.get(_PLAYING):
            names = review.names
            st.markdown("Before we watch: anyone shown here can say no, and it will not be played.")
            cols = st.columns(max(len(moment.people), 1) + 1)
            for col, pid in zip(cols, moment.people):
                if col.button(f"{names.get(pid, pid)}: skip this one", key=f"veto-{moment.moment_id}-{pid}"):
                    veto_moment(store, session_id, moment.moment_id, pid)
                    st.session_state[_PLAYING] = False
                    st.rerun()
            if cols[-1].button("Watch", type="primary", key=f"watch-{moment.moment_id}"):
                st.session_state[_PLAYING] = True
                st.rerun()
        else:
            # the moment only (a clip made in memory), so nothing else, a vetoed moment above all,
            # can be reached by dragging the player; a replay changes the start by a second,
            # which makes the player seek back there
            lead = st.session_state.get("walkthrough_replays", 0) % 2
            try:
                st.video(moment_clip(store, session_id, moment), format="video/mp4", start_time=lead)
            except PlaybackError as exc:
                st.error(hide_store_path(str(exc), store.root))
            st.caption("Press play on the video. Replay starts it again from the moment's beginning.")
        previous, replay, following = st.columns(3)
        if previous.button("← Previous", disabled=index == 0, key="walk_previous"):
            st.session_state[_INDEX], st.session_state[_PLAYING] = index - 1, False
            st.rerun()
        if replay.button("↺ Replay", disabled=not st.session_state.get(_PLAYING), key="walk_replay"):
            st.session_state["walkthrough_replays"] = st.session_state.get("walkthrough_replays", 0) + 1
            st.rerun()
        if following.button("Next →", disabled=index >= len(playlist) - 1, key="walk_next"):
            st.session_state[_INDEX], st.session_state[_PLAYING] = index + 1, False
            st.rerun()
    leave_walkthrough(store)


def moment_clip(store: Store, session_id: str, moment) -> bytes:
    """The MP4 bytes of one moment (from a second before to two after, :func:`clip_span`), made
    once per walkthrough; a moment with no video plays its sound only."""
    clips = st.session_state.setdefault(_CLIPS, {})
    if moment.moment_id not in clips:
        with st.spinner("Preparing the moment…"):
            clips[moment.moment_id] = clip(store, session_id, *clip_span(moment.start_s, moment.end_s),
                                           take_home=False).mp4
    return clips[moment.moment_id]


def leave_walkthrough(store: Store) -> None:
    """Back to the therapist's pages, only with the passphrase."""
    st.divider()
    with st.expander("For the therapist: leave the walkthrough"):
        with st.form("leave_walkthrough", clear_on_submit=True):
            passphrase = st.text_input("Passphrase", type="password", key="leave_pw")
            if st.form_submit_button("Leave"):
                try:
                    store.reauthenticate(passphrase, action="leave_walkthrough")
                except PlaybackError as exc:
                    st.error(hide_store_path(str(exc), store.root))     # the clients see this screen
                    return
                for key in (_ACTIVE, _INDEX, _PLAYING, _CLIPS):
                    st.session_state.pop(key, None)
                st.rerun()
