"""Playback review dashboard (Streamlit). Start it with ``playback dashboard``.

Wiring only: the unlock gate, the page choice and the session's actions; each page lives in
``analysis/dashboard/``. The server is bound to 127.0.0.1 with usage statistics off (see
``playback dashboard`` and ``.streamlit/config.toml``).
"""
from __future__ import annotations

import argparse
import sys

import streamlit as st

import analysis  # noqa: F401  (pyannote telemetry off)
from analysis.dashboard.record import record_page, recover_once
from analysis.dashboard.review import session_page, session_picker
from analysis.dashboard.sessions import sessions_page
from analysis.dashboard.vault import session_actions, vault_gate, withdrawal_action
from analysis.dashboard.walkthrough import active_walkthrough, walkthrough_page
from capture.store import Store


def store_from_args() -> Store:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return Store(args.store, from_env=False)     # locked: the unlock page asks for the passphrase


def main() -> None:
    st.set_page_config(page_title="Playback", layout="wide")
    # unlock page until the passphrase is given; locks when idle
    store = vault_gate(store_from_args().root, lock_button=not active_walkthrough())
    if active_walkthrough():                      # the clients' screen: nothing else reachable
        walkthrough_page(store, active_walkthrough())
        return
    st.sidebar.title("Playback")
    recover_once(store)
    page = st.sidebar.radio("Page", ["Review", "Sessions", "Record"], key="page", horizontal=True)
    if page == "Record":
        record_page(store)
        return
    if page == "Sessions":
        sessions_page(store)
        return
    if "withdrawn_notice" in st.session_state:
        st.info(st.session_state.pop("withdrawn_notice"))
    session_id = session_picker(store)
    if session_id:
        session_page(store, session_id)
        session_actions(store, session_id, analysed=store.exists(session_id, "derived/events.parquet"))
        withdrawal_action(store, session_id)


main()
