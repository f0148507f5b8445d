"""The dashboard's Record page: who is here, everyone's consent, then capture.

Thin UI over :mod:`capture.consent` and :mod:`capture.live.recorder`. Order matters (C1): every
person ticks their own scopes (nothing pre-ticked); only when everyone has agreed to be
recorded do the spoken statements (voice samples) and the Start button become available. While
capture runs a red indicator shows (C5), with Stop and a one-click Withdraw for each person.
"""
from __future__ import annotations

import streamlit as st

from analysis.live import LiveAnalyser, stop_recording
from capture.consent import (
    CONSENT_TEXT,
    CONSENT_TEXT_VERSION,
    ROLES,
    SCOPE_LABELS,
    SCOPES,
    ConsentRecord,
    consent_text_sha256,
    make_record,
    require_consent,
    spoken_statement,
)
from capture.errors import ConsentError, PlaybackError
from capture.ingest import SAMPLE_VIDEO, parse_participants
from capture.live.devices import (
    Camera,
    FileCamera,
    Microphone,
    WavMicrophone,
    list_devices,
)
from capture.live.recorder import Recorder
from capture.live.recovery import recover_interrupted
from capture.store import Store

_REC = "record_recorder"
_LIVE = "record_live_analysis"
SIMULATED = "Simulated devices (the bundled sample played as camera and microphone)"
REAL = "This computer's camera and microphone"


def recover_once(store: Store) -> None:
    """Recovery on start (R2): assemble recordings left by a crashed process, once per browser session."""
    if st.session_state.get("record_recovered_for") == str(store.root):
        return
    st.session_state.record_recovered_for = str(store.root)
    recovered = recover_interrupted(store)
    if recovered:
        st.toast(f"Recovered {len(recovered)} session(s) left unfinished by a process that stopped: "
                 + ", ".join(recovered))


def _people(text: str) -> list[dict]:
    people = parse_participants(text)
    for p in people:
        p["role"] = st.session_state.get(f"rec_role_{p['name']}", p["role"])
    return people


def consent_form(people: list[dict]) -> dict[str, ConsentRecord]:
    """One box per person with six unticked scopes; returns records of those who ticked any."""
    records = {}
    cols = st.columns(min(len(people), 3))
    for i, p in enumerate(people):
        with cols[i % len(cols)].container(border=True):
            st.markdown(f"**{p['name']}** · {p['role']}  \nanswers for themself")
            chosen = {s: st.checkbox(SCOPE_LABELS[s], value=False, key=f"rec_scope_{p['name']}_{s}") for s in SCOPES}
            collector = st.selectbox("Consent collected by", ["therapist", "co-therapist"], key=f"rec_by_{p['name']}")
            if any(chosen.values()):
                records[p["id"]] = make_record(p["id"], chosen, method="checkbox", collected_by=collector)
            if chosen["record_audio"] or chosen["record_video"]:
                st.success(f"{p['name']} agreed to: " + ", ".join(s.replace("_", " ") for s, v in chosen.items() if v))
            else:
                st.warning(f"{p['name']} has not agreed to be recorded yet.")
    return records


def _devices_choice() -> tuple[str, list, list]:
    source = st.radio("Record from", [SIMULATED, REAL], key="rec_source")
    cameras, mics = [], []
    if source == REAL:
        found = st.session_state.get("rec_found") or list_devices()
        st.session_state.rec_found = found
        for problem in found["problems"]:
            st.info(problem)
        cameras = st.multiselect("Cameras", found["cameras"], default=found["cameras"][:1], key="rec_cams")
        mics = st.multiselect("Microphones (one track each)", found["microphones"], default=found["microphones"][:1],
                              key="rec_mics")
    return source, cameras, mics


def _build_devices(source: str, cameras: list[str], mics: list[str]):
    if source == SIMULATED:
        return [WavMicrophone(SAMPLE_VIDEO, loop=True)], [FileCamera(SAMPLE_VIDEO, loop=True)]
    return [Microphone(m) for m in mics], [Camera(int(c)) for c in cameras]


@st.fragment(run_every=1)
def recording_panel(store: Store) -> None:
    """The red indicator (C5), Stop, and Withdraw for each person."""
    recorder = st.session_state.get(_REC)
    if recorder is None:
        return
    if recorder.running:
        elapsed = recorder.elapsed_s()
        st.markdown(
            f"<div style='background:#c0392b;color:white;padding:0.8em 1em;border-radius:8px;font-size:1.3em'>"
            f"&#9679; RECORDING {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d} · session {recorder.session_id} · "
            f"{recorder.state.sealed} segments safely written</div>", unsafe_allow_html=True)
    else:
        st.warning("Capture ended" + (f": {recorder.state.error}" if recorder.state.error else "."))
    left, right = st.columns([1, 2])
    if left.button("■ Stop recording", key="rec_stop", type="primary"):
        live = st.session_state.pop(_LIVE, None)
        try:
            with st.spinner("Stopping" + (" and finishing the analysis…" if live else "…")):
                manifest, report = stop_recording(recorder, live)
        except PlaybackError as exc:      # the recording is kept; only its analysis failed
            manifest, report = store.manifest(recorder.session_id), None
            st.session_state.rec_analysis_failed = str(exc)
        st.session_state.pop(_REC, None)
        st.session_state.rec_done = (recorder.session_id, manifest["duration_s"] if manifest else 0.0,
                                     report["delay_s"] if report else None)
        st.rerun(scope="app")
    with right:
        names = {p["id"]: p["name"] for p in recorder.participants}
        who = st.selectbox("Someone withdraws", list(names), format_func=names.get, key="rec_withdraw_who")
        if st.button("Withdraw: stop now and erase this session", key="rec_withdraw"):
            live = st.session_state.pop(_LIVE, None)
            if live is not None:
                live.cancel()
            recorder.withdraw(who)
            st.session_state.pop(_REC, None)
            st.session_state.rec_withdrawn = names[who]
            st.rerun(scope="app")


def case_choice(store: Store) -> str | None:
    """The case (couple or group) the recording belongs to, or None; choosing one fills in its
    people, who can still be changed (someone absent today)."""
    cases = {case.case_id: case for case in store.cases.all()}

    def fill_people() -> None:
        chosen = cases.get(st.session_state.get("rec_case"))
        if chosen:
            st.session_state.rec_people = ", ".join(chosen.people)

    return st.selectbox("Case", [None, *cases], key="rec_case", on_change=fill_people,
                        format_func=lambda c: "No case (choose one later on the Sessions page)" if c is None
                        else f"{cases[c].name} ({', '.join(cases[c].people)})",
                        help="The couple or group this session belongs to: its trends include it")


def record_page(store: Store) -> None:
    st.title("Record a session")
    if st.session_state.get(_REC) is not None:
        recording_panel(store)
        return
    if "rec_done" in st.session_state:
        session_id, duration, delay = st.session_state.pop("rec_done")
        if delay is not None:
            st.success(f"Recorded {duration:.0f} s as session {session_id}, analysed {delay:.0f} s after Stop: "
                       "choose it under Review.")
        else:
            st.success(f"Recorded {duration:.0f} s as session {session_id}. Analyse it with `playback analyze "
                       f"{session_id}` or choose it under Review.")
        if "rec_analysis_failed" in st.session_state:
            st.error(f"Its analysis failed: {st.session_state.pop('rec_analysis_failed')}")
    if "rec_withdrawn" in st.session_state:
        st.info(f"{st.session_state.pop('rec_withdrawn')} withdrew: the recording stopped and the session was erased.")
    st.subheader("1 · Who is here")
    case_id = case_choice(store)
    text = st.text_input("Everyone present, left to right as the camera sees them", key="rec_people",
                         placeholder="Alex, Sam")
    if not text.strip():
        st.caption("Name everyone in the room (or on the call) first; each person then gives their own consent.")
        return
    try:
        people = _people(text)
    except PlaybackError as exc:
        st.error(str(exc))
        return
    role_cols = st.columns(min(len(people), 4))
    for i, p in enumerate(people):
        role_cols[i % len(role_cols)].selectbox(f"Role of {p['name']}", ROLES, key=f"rec_role_{p['name']}")
    people = _people(text)

    st.subheader("2 · Consent, from each person")
    with st.expander(f"Consent text (version {CONSENT_TEXT_VERSION}, sha256 {consent_text_sha256()[:12]}…) — "
                     "read it to everyone", expanded=True):
        st.markdown(CONSENT_TEXT.replace("\n", "  \n"))
    records = consent_form(people)

    st.subheader("3 · Devices")
    source, cameras, mics = _devices_choice()
    try:
        require_consent(people, records, audio=bool(mics) or source == SIMULATED,
                        video=bool(cameras) or source == SIMULATED)
        ready, reason = True, ""
    except (ConsentError, PlaybackError) as exc:
        ready, reason = False, str(exc)

    st.subheader("4 · Spoken consent and voice samples")
    clips = {}
    if not ready:
        st.caption("Available once everyone has agreed to be recorded: no microphone is used before that.")
    else:
        for p in people:
            wants = records[p["id"]].allows("analyse_voice")
            label = f"{p['name']}, read aloud: “{spoken_statement(p['name'])}”" + (
                " (kept as your voice sample)" if wants else " (not kept: no voice analysis)")
            clip = st.audio_input(label, key=f"rec_clip_{p['name']}")
            if clip is not None and wants:
                clips[p["id"]] = clip.getvalue()
                records[p["id"]] = make_record(p["id"], records[p["id"]].scopes, method="spoken+checkbox",
                                               collected_by=records[p["id"]].collected_by)

    st.subheader("5 · Record")
    if not ready:
        st.error(reason)
    analyse_live = st.checkbox("Analyse while recording (results shortly after Stop)", value=True, key="rec_live")
    if st.button("● Start recording", key="rec_start", type="primary", disabled=not ready,
                 help=None if ready else "Everyone present must consent first"):
        mic_devices, cam_devices = _build_devices(source, cameras, mics)
        recorder = Recorder(store, people, records, mics=mic_devices, cameras=cam_devices, enrolment=clips)
        try:
            if case_id:
                store.cases.get(case_id)          # still there (another tab may have deleted it)
            recorder.start()
        except PlaybackError as exc:
            st.error(str(exc))
            return
        try:
            if case_id:
                store.cases.assign(recorder.session_id, case_id)
        except PlaybackError as exc:              # recording goes on; the case can be chosen later
            st.warning(f"{exc} The recording goes on; put it in a case later on the Sessions page.")
        st.session_state[_REC] = recorder
        if analyse_live:
            st.session_state[_LIVE] = LiveAnalyser(store, recorder.session_id).start()
        st.rerun()
