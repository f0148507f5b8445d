"""The Sessions page: cases (a couple or a group, with its people) and their sessions, importing a
recording into a case, analysis in a separate process with its progress, and the case's trends.

Thin UI over :mod:`capture.store.cases`, :mod:`analysis.jobs` and :mod:`analysis.trends`.
"""
from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from analysis.core import events as ev
from analysis.dashboard.charts import draw_chart
from analysis.dashboard.memo import remembered
from analysis.jobs import DONE, FAILED, RUNNING, job_status, start_analysis
from analysis.review import format_clock
from analysis.trends import MEASURES, case_trends, session_measures
from capture.errors import PlaybackError
from capture.ingest import LAYOUTS, import_media
from capture.store import Case, SessionRow, Store

PROGRESS_EVERY_S = 2.0
TREND_HEIGHT = 240            # pixels of one trend plot


def sessions_page(store: Store) -> None:
    st.title("Cases and sessions")
    st.caption("A case is a couple or a group with its people. Its name and people are kept encrypted.")
    cases = store.cases.all()
    left, right = st.columns(2)
    with left:
        new_case_form(store)
    with right:
        import_form(store, cases)
    rows = store.list_sessions()
    for case in cases:
        mine = store.cases.sessions(case.case_id)
        with st.container(border=True):
            st.subheader(case.name)
            st.caption(f"{', '.join(case.people)} · {len(mine)} session(s) · case id {case.case_id}")
            sessions_table(store, mine)
            if mine:
                trends_panel(store, case)
    loose = [r for r in rows if r.case_id is None]
    if loose:
        with st.container(border=True):
            st.subheader("Sessions in no case")
            sessions_table(store, loose, cases=cases)
    if not rows and not cases:
        st.info("No cases or sessions yet. Make a case, then import a recording into it (or record one on the "
                "Record page).")


def new_case_form(store: Store) -> None:
    with st.expander("+ New case"):
        with st.form("new_case", clear_on_submit=True):
            name = st.text_input("Name (how you know the couple or group)", key="case_name",
                                 placeholder="Alex & Sam")
            people = st.text_input("People, left to right as they usually sit", key="case_people",
                                   placeholder="Alex, Sam")
            if st.form_submit_button("Make case"):
                try:
                    store.cases.create(name, people.split(","))
                except PlaybackError as exc:
                    st.error(str(exc))
                    return
                st.rerun()


def import_form(store: Store, cases: list[Case]) -> None:
    """Import a recording from a file on this computer into a case (read from disk as a stream:
    nothing is uploaded)."""
    with st.expander("+ Import a recording", expanded="import_done" in st.session_state):
        if "import_done" in st.session_state:
            st.success(st.session_state.pop("import_done"))
        n = st.session_state.get("import_form_n", 0)     # a new, empty form after each import
        with st.form(f"import_recording-{n}"):
            path = st.text_input("File on this computer (video or audio)", key=f"import_path-{n}",
                                 placeholder="/home/me/Videos/session.mp4")
            choices = [None] + [c.case_id for c in cases]
            names = {c.case_id: c.name for c in cases}
            case_id = st.selectbox("Case", choices, format_func=lambda c: names.get(c, "No case"),
                                   key=f"import_case-{n}")
            people = st.text_input("People, left to right on screen (empty: the case's people)",
                                   key=f"import_people-{n}")
            layout = st.selectbox("How they appear", LAYOUTS, key=f"import_layout-{n}",
                                  format_func={"auto": "Found from the faces", "seats": "Seated in a room, left to right",
                                               "tiles": "A video call's gallery, row by row"}.get)
            attested = st.checkbox("Everyone in the recording agreed to it being recorded and analysed",
                                   key=f"import_ok-{n}")
            if not st.form_submit_button("Import"):
                return
            if not attested:
                st.error("Import only a recording everyone in it agreed to; tick the box to say they did.")
                return
            try:
                case = next((c for c in cases if c.case_id == case_id), None)
                participants = people.strip() or (",".join(case.people) if case else "")
                if not participants:
                    raise PlaybackError("Say who is in the recording (left to right), or choose a case.")
                with st.spinner("Importing (checking, converting and encrypting the file)…"):
                    session_id = import_media(store, Path(path.strip()).expanduser(), participants, case_id=case_id,
                                              layout=layout)
            except PlaybackError as exc:
                st.error(str(exc))
                return
        st.session_state.import_done = f"Imported as session {session_id}. Start its analysis below."
        st.session_state.import_form_n = n + 1
        st.rerun()


def sessions_table(store: Store, rows: list[SessionRow], *, cases: list[Case] | None = None) -> None:
    """One line per session: date, status, length, kept until, analysis (with its progress)."""
    if not rows:
        st.caption("No sessions in this case yet.")
        return
    widths = [1, 3, 2, 1, 2, 4, 2]
    header = st.columns(widths)
    for col, title in zip(header, ("", "date (UTC)", "status", "length", "kept until", "analysis", "")):
        col.markdown(f"**{title}**")
    for number, row in enumerate(rows, start=1):
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].write(f"{number}")
        cols[1].write(row.created_utc[:16].replace("T", " "))
        cols[2].write(row.status)
        cols[3].write(format_clock(row.duration_s) if row.duration_s else "–")
        cols[4].write(row.retention_until or "–")
        with cols[5]:
            analysis_cell(store, row.session_id)
        cols[6].button("Open review", key=f"open-{row.session_id}", on_click=open_in_review, args=(row.session_id,))
        if cases:
            names = {c.case_id: c.name for c in cases}
            choice = st.selectbox(f"Put session {row.session_id} in a case", [None] + list(names),
                                  format_func=lambda c: names.get(c, "–"), key=f"assign-{row.session_id}")
            if choice:
                store.cases.assign(row.session_id, choice)
                st.rerun()


def open_in_review(session_id: str) -> None:
    st.session_state.page = "Review"
    st.session_state.session_id = session_id


def analysis_cell(store: Store, session_id: str) -> None:
    """The session's analysis: done, running (a progress bar, refreshed every few seconds),
    failed (one sentence), or a button to start it. Only a running analysis refreshes, so a
    page of hundreds of sessions reads no job file while nothing runs."""
    status = job_status(store.root, session_id)
    if status and status["state"] == RUNNING:
        analysis_progress(store, session_id)
        return
    analysed = store.exists(session_id, ev.EVENTS_TABLE)
    if status and status["state"] == FAILED:
        st.error(status.get("message") or "The analysis failed.")
    elif analysed and (status is None or status["state"] == DONE):
        st.write("analysed ✓")
    if st.button("Analyse again" if analysed else "Analyse", key=f"analyse-{session_id}",
                 help="Runs in the background; this page stays usable"):
        try:
            start_analysis(store, session_id)
        except PlaybackError as exc:
            st.error(str(exc))
            return
        st.rerun()


@st.fragment(run_every=PROGRESS_EVERY_S)
def analysis_progress(store: Store, session_id: str) -> None:
    """A running analysis's progress bar, read again every few seconds; when it has ended the
    whole page is drawn again (its row then says done or failed)."""
    status = job_status(store.root, session_id)
    if not status or status["state"] != RUNNING:
        st.rerun(scope="app")
    st.progress(float(status.get("fraction", 0.0)),
                text=f"Analysing: {status.get('stage', '')} ({status.get('fraction', 0.0):.0%})")


MEASURES_KEPT = 1000     # sessions whose trend measures are kept between reruns (small tables)


def trends_panel(store: Store, case: Case) -> None:
    """The case's measures across its analysed sessions, one small plot per measure."""
    # drawn only when shown: a plot laid out inside a closed expander comes out squashed
    if not st.toggle("Trends across sessions", key=f"trends-{case.case_id}"):
        return
    trends = case_trends(store, case.case_id, lambda session_id: remembered(
        store, session_id, "trend_measures", ["derived", "manifest.json"],
        lambda: session_measures(store, session_id), keep=MEASURES_KEPT))
    with st.container():
        if trends.empty:
            st.caption("No analysed sessions yet.")
            return
        if trends.session_no.nunique() == 1:
            st.caption("One analysed session so far: the plots show change once there are two.")
        columns = st.columns(2)
        for i, (measure, (title, _unit)) in enumerate(MEASURES.items()):
            chart = trend_chart(trends[trends.measure == measure])
            if chart is not None:
                columns[i % 2].markdown(f"**{title}**")
                draw_chart(chart, columns[i % 2], width="stretch")
        st.caption("Each point is one session. A missing point means it was not measured for that person "
                   "(not present, or no consent to analyse their voice or face), not that it was zero.")


def trend_chart(rows: pd.DataFrame) -> alt.Chart | None:
    """One measure: a line per person over session number (date in the tooltip)."""
    rows = rows.dropna(subset=["value"])
    if rows.empty:
        return None
    share = rows.measure.iloc[0] == "talk_share"
    people = sorted(rows.person.unique())
    # people side by side around each session, so that equal values do not hide one another
    rows = rows.assign(x=rows.session_no + rows.person.map({p: (i - (len(people) - 1) / 2) * 0.06
                                                            for i, p in enumerate(people)}))
    top = float(rows.value.max()) * 1.15 or 1.0
    return alt.Chart(rows).mark_line(point=alt.OverlayMarkDef(size=60)).encode(
        x=alt.X("x:Q", title="session", axis=alt.Axis(tickMinStep=1, format="d", values=sorted(rows.session_no.unique())),
                scale=alt.Scale(domain=[0.7, max(float(rows.session_no.max()), 1.0) + 0.3], nice=False)),
        y=alt.Y("value:Q", title=None, axis=alt.Axis(format=".0%" if share else ",.2~f"),
                scale=alt.Scale(domain=[0, min(top, 1.0) if share else top], nice=False)),
        color=alt.Color("person:N", title=None, legend=alt.Legend(orient="right"), scale=alt.Scale(scheme="dark2")),
        tooltip=["person", alt.Tooltip("session_no:Q", title="session"), "date",
                 alt.Tooltip("value:Q", format=".0%" if share else ".1f")],
    ).properties(height=TREND_HEIGHT)
