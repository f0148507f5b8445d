"""Decrypted session data kept between reruns (analysis/dashboard/memo.py): read again when a file
it came from is written again, dropped when the dashboard locks."""
from __future__ import annotations

from conftest import TEST_PASSPHRASE


def test_kept_until_a_file_changes_and_dropped_on_lock(store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    def page(root, passphrase):
        import streamlit as st

        from analysis.dashboard import memo
        from capture.store import Store

        store = Store(root).unlock(passphrase)
        session_id = store.list_sessions()[0].session_id
        builds = st.session_state.setdefault("builds", [])
        value = memo.remembered(store, session_id, "notes", ["derived"],
                                lambda: builds.append(1) or store.read_json(session_id, "derived/x.json"))
        st.write(f"{value['n']} built {len(builds)}")
        if st.session_state.get("lock"):
            memo.forget()

    with store.new_session(duration_s=1.0) as session_id:
        store.write_json(session_id, "derived/x.json", {"n": 1})
    at = AppTest.from_function(page, args=(store.root, TEST_PASSPHRASE)).run()
    assert at.markdown[0].value == "1 built 1"
    at.run()
    assert at.markdown[0].value == "1 built 1"                   # kept: nothing changed
    store.write_json(session_id, "derived/x.json", {"n": 2})
    at.run()
    assert at.markdown[0].value == "2 built 2"                   # the file was written again
    store.write_json(session_id, "derived/y.json", {})
    at.run()
    assert at.markdown[0].value == "2 built 3"                   # a new file in the folder
    at.session_state["lock"] = True
    at.run()
    assert "session_memo" not in at.session_state
