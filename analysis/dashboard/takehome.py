"""The therapist's panel for the clients' take-home summary (:mod:`analysis.takehome`): the scope
rule in words, who has not agreed when it is refused, and after the passphrase again the HTML
and PDF downloads (audited as ``export`` / ``takehome_html`` / ``takehome_pdf`` when
downloaded) and optional clips with chosen people blurred and muted."""
from __future__ import annotations

import re
import time

import streamlit as st

from analysis.dashboard.vault import REAUTH_VALID_S
from analysis.review import Review, format_clock
from analysis.takehome import (TAKE_HOME_SCOPE, clip, clip_span, require_take_home, summary_html, summary_pdf,
                               take_home_consented, take_home_summary)
from capture.consent import change_scopes
from capture.errors import PlaybackError
from capture.store import Store

RULE = ("A take-home copy is made only when everyone in the session agreed to a take-home copy in their "
        "consent: the plots show everyone. It holds the plots and the moments picked for the walkthrough, "
        "in the walkthrough's words; never your notes, dismissed or vetoed moments, or scores.")
_GRANTED = "takehome_granted"     # session id -> time the passphrase was given again
_FILES = "takehome_files"         # (session id, summary) -> (html, pdf)
_CLIP = "takehome_clip"           # (session id, moment index, blurred ids) -> Clip


def _plain(text: str) -> str:
    """``text`` with Markdown's special characters escaped (names are user input)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", text)


def _granted(store: Store, session_id: str) -> bool:
    """True within ``REAUTH_VALID_S`` of the passphrase given again here; else shows the form."""
    if time.time() - st.session_state.get(_GRANTED, {}).get(session_id, 0.0) < REAUTH_VALID_S:
        return True
    with st.form(f"takehome_reauth_{session_id}", clear_on_submit=True):
        st.markdown("**Confirm it is you.** Type the passphrase again to make the take-home copy.")
        passphrase = st.text_input("Passphrase", type="password", key="takehome_pw")
        submitted = st.form_submit_button("Confirm take-home copy", type="primary")
    if submitted:
        try:
            store.reauthenticate(passphrase, action="export")
        except PlaybackError as exc:
            st.error(str(exc))
            return False
        st.session_state.setdefault(_GRANTED, {})[session_id] = time.time()
        st.rerun()
    return False


def record_take_home_agreement(store: Store, review: Review) -> None:
    """A form to record that people who had not agreed to a take-home copy agree now (each ticks
    their own box; nothing is pre-ticked); kept in the session's consent records and audited."""
    missing = [p for p in review.manifest["participants"]
               if p["id"] not in take_home_consented(store, review.session_id)]
    with st.form(f"takehome_consent_{review.session_id}", clear_on_submit=True):
        st.markdown("**If they agree now**, each person ticks their own box:")
        agreed = [p for p in missing if st.checkbox(f"I, {p['name']}, agree to a take-home copy of this session",
                                                    value=False, key=f"takehome_agree_{p['id']}")]
        submitted = st.form_submit_button("Record their agreement")
    if submitted and agreed:
        for person in agreed:
            change_scopes(store, review.session_id, person["id"], give=[TAKE_HOME_SCOPE])
        st.toast("Recorded: " + ", ".join(p["name"] for p in agreed) + ".")
        st.rerun()


def takehome_panel(store: Store, review: Review) -> None:
    """The expander "Take-home summary for the clients" on the session page."""
    session_id = review.session_id
    with st.expander("Take-home summary for the clients"):
        st.caption(RULE)
        if not review.analysed:
            st.caption("Analyse the session first.")
            return
        try:
            require_take_home(store, session_id, review.manifest)
        except PlaybackError as exc:
            st.info(_plain(str(exc)))
            record_take_home_agreement(store, review)
            return
        names = review.names
        blur = st.multiselect("In clips, blur the face and mute the voice of (optional)", list(names),
                              format_func=names.get, key="takehome_blur",
                              help="The summary then says where muting also silences someone else.")
        summary = take_home_summary(store, session_id, review, blur_ids=tuple(blur))
        st.markdown(f"{len(summary.moments)} picked moment(s) will be in it." if summary.moments else
                    "No moments are picked for the walkthrough yet: the copy will hold the plots only.")
        if not _granted(store, session_id):
            return
        files = st.session_state.setdefault(_FILES, {})
        if (session_id, summary) not in files:
            files[(session_id, summary)] = (summary_html(summary), summary_pdf(summary))
        html_text, pdf_bytes = files[(session_id, summary)]
        left, right = st.columns(2)
        left.download_button("Download the summary (HTML)", html_text, file_name="take-home-summary.html",
                             mime="text/html", key="takehome_html", on_click=store.audit,
                             args=("export", session_id), kwargs={"detail": "takehome_html"})
        right.download_button("Download the summary (PDF)", pdf_bytes, file_name="take-home-summary.pdf",
                              mime="application/pdf", key="takehome_pdf", on_click=store.audit,
                              args=("export", session_id), kwargs={"detail": "takehome_pdf"})
        st.caption("The files you download are not encrypted: give them to the clients and keep no copy.")
        if summary.moments and review.has_video:
            _clip_section(store, review, summary, blur)


def _clip_section(store: Store, review: Review, summary, blur: list[str]) -> None:
    """A short clip of one picked moment, with the people in ``blur`` blurred and muted."""
    st.markdown("**A short clip of a moment** (optional)")
    index = st.selectbox("Moment", range(len(summary.moments)), key="takehome_clip_moment",
                         format_func=lambda i: f"{format_clock(summary.moments[i].start_s)} "
                                               f"{summary.moments[i].intro}")
    key = (review.session_id, index, tuple(blur))
    if st.session_state.get(_CLIP, (None, None))[0] != key:
        if st.button("Make the clip", key="takehome_clip_make"):
            moment = summary.moments[index]
            try:
                with st.spinner("Making the clip..."):
                    made = clip(store, review.session_id, *clip_span(moment.start_s, moment.end_s), blur)
            except PlaybackError as exc:
                st.error(str(exc))
                return
            st.session_state[_CLIP] = (key, made)
            st.rerun()
        return
    made = st.session_state[_CLIP][1]
    if made.note:
        st.caption(_plain(made.note))
    st.download_button("Download the clip (MP4)", made.mp4, file_name=f"moment-{index + 1}.mp4", mime="video/mp4",
                       key="takehome_clip_download")
