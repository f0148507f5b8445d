"""The therapist's review page: the video, the moments to walk through, the timeline, the
metrics and every threshold behind the counts. Values come from :mod:`analysis.review`."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from analysis.dashboard.media_server import media_url
from analysis.dashboard.vault import note_access
from analysis.review import (KIND_TITLES, MOMENT_KINDS, Review, add_moment, agreement, format_clock, load_added,
                             load_decisions, load_review, load_walkthrough, pick_moment, save_decision,
                             session_agreement_inputs, thresholds_table, timeline_rows)
from analysis.dashboard.walkthrough import start_walkthrough
from capture.errors import PlaybackError
from capture.store import Store

# Every timeline kind's colour and the row of the person's block it is drawn in, in drawing
# order (later kinds are drawn over earlier ones: backchannels over speech).
KIND_LAYERS = {
    "speech_turn": ("#8fb8de", "speech"), "overlap": ("#f2b84b", "speech"), "backchannel": ("#6a994e", "speech"),
    "interruption": ("#d9534f", "events"), "raised_voice": ("#8e44ad", "events"),
    "heated_exchange": ("#e76f51", "events"), "flat_voice": ("#577590", "events"),
    "speeding_up": ("#b5838d", "events"), "expression": ("#2a9d8f", "face"),
}
LAYER_COLOURS = {KIND_TITLES[kind]: colour for kind, (colour, _) in KIND_LAYERS.items()}
LAYER_GROUP = {KIND_TITLES[kind]: group for kind, (_, group) in KIND_LAYERS.items()}
TIMELINE_GROUPS = ("speech", "events", "face")


def session_picker(store: Store) -> str | None:
    rows = store.list_sessions()
    if not rows:
        st.sidebar.info("No sessions yet.")
        st.info("No sessions yet. Import one with `playback import FILE --participants \"Alex,Sam\"`, "
                "or run `playback demo` for the bundled sample.")
        return None
    labels = {r.session_id: f"{r.session_id} · {r.status} · {r.duration_s or 0:.0f} s" for r in rows}
    chosen = st.sidebar.radio("Sessions", list(labels), format_func=labels.get, key="session_id")
    st.sidebar.caption("Annotations are evidence to look at together, never a verdict. "
                       "Confirm or dismiss each moment with the people in the room.")
    return chosen


def timeline_chart(review: Review, position_s: float) -> alt.Chart:
    """One block of rows per person: what they said, what happened, what their face showed.
    Clicking a bar selects its start (the ``seek`` selection: the page moves the video there)."""
    rows = timeline_rows(review)
    row_order = [f"{p['name']} · {group}" for p in review.manifest["participants"] for group in TIMELINE_GROUPS]
    rows["row"] = rows.lane + " · " + rows.layer.map(LAYER_GROUP)
    rows["draw"] = rows.layer.map({layer: i for i, layer in enumerate(LAYER_COLOURS)})  # backchannels over speech
    seek = alt.selection_point(name="seek", fields=["start_s"], on="click", clear=False)
    bars = alt.Chart(rows).mark_bar(height=16, cornerRadius=2, cursor="pointer").add_params(seek).encode(
        x=alt.X("start_s:Q", title="time (s)", scale=alt.Scale(domain=[0, review.manifest["duration_s"]], nice=False)),
        x2="end_s:Q",
        order=alt.Order("draw:Q"),
        y=alt.Y("row:N", title=None, sort=row_order, scale=alt.Scale(domain=row_order), axis=alt.Axis(labelOverlap=False)),
        color=alt.Color("layer:N", title=None, legend=alt.Legend(orient="top", columns=5, labelLimit=200),
                        scale=alt.Scale(domain=list(LAYER_COLOURS), range=list(LAYER_COLOURS.values()))),
        tooltip=["lane", "layer", "label", alt.Tooltip("start_s:Q", format=".1f"), alt.Tooltip("end_s:Q", format=".1f"),
                 "explanation"],
    )
    cursor = alt.Chart(pd.DataFrame({"t": [position_s]})).mark_rule(color="black", strokeDash=[4, 3]).encode(x="t:Q")
    return (bars + cursor).properties(height=26 * len(row_order))


def seek_to_clicked_bar(clicked) -> None:
    """Move the video to the start (s) of the timeline bar just clicked (once per click: the
    selection stays set across reruns, so a moment chosen later is not overridden)."""
    picked = (clicked.selection.get("seek") if clicked else None) or []
    start = picked[0].get("start_s") if picked else None
    if start is not None and start != st.session_state.get("seek_seen"):
        st.session_state.seek_seen = start
        st.session_state.position_s = float(start)
        st.rerun()


def arousal_chart(review: Review, position_s: float) -> alt.Chart | None:
    """Each person's vocal arousal over time, 0 = their usual voice, 1 = as loud and as high as
    a raised voice (the tone thresholds); None when no one's voice could be measured."""
    curve = review.arousal
    if curve is None or curve.empty:
        return None
    curve = curve.sort_values(["name", "t_s"])
    step = curve.groupby("name").t_s.diff()
    # a new piece of line after each gap, so that unmeasured stretches are not drawn over
    curve = curve.assign(piece=curve.name + (step > 1.5 * step.median()).groupby(curve.name).cumsum().astype(str))
    x = alt.X("t_s:Q", title="time (s)", scale=alt.Scale(domain=[0, review.manifest["duration_s"]], nice=False))
    lines = alt.Chart(curve).mark_line(point=alt.OverlayMarkDef(size=14)).encode(
        x=x, y=alt.Y("arousal:Q", title="vocal arousal"),
        color=alt.Color("name:N", title=None, legend=alt.Legend(orient="top"),
                        scale=alt.Scale(domain=sorted(curve.name.unique()), scheme="dark2")),
        detail="piece:N",
        tooltip=["name", alt.Tooltip("t_s:Q", title="time (s)", format=".0f"),
                 alt.Tooltip("loudness_delta_db:Q", title="louder than usual (dB)", format=".1f"),
                 alt.Tooltip("pitch_delta_st:Q", title="higher than usual (semitones)", format=".1f")])
    raised = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(color="#b2182b", strokeDash=[2, 2]).encode(y="y:Q")
    cursor = alt.Chart(pd.DataFrame({"t": [position_s]})).mark_rule(color="black", strokeDash=[4, 3]).encode(x="t:Q")
    return (lines + raised + cursor).properties(height=220)


def moments_list(store: Store, review: Review) -> None:
    """Moments to walk through: jump to each, confirm or dismiss it, keep a private note."""
    moments = review.moments(load_added(store, review.session_id))
    st.subheader(f"Moments ({len(moments)})")
    add_moment_form(store, review)
    if moments.empty:
        st.caption("No interruptions, raised voices or expressions were found.")
        return
    decisions = load_decisions(store, review.session_id)
    walk = load_walkthrough(store, review.session_id)
    if walk["picked"] and st.button(f"▶ Start the walkthrough with clients ({len(walk['picked'])} moments)",
                                    type="primary", key="start_walkthrough"):
        start_walkthrough(review.session_id)
        st.rerun()
    kinds = st.multiselect("Show", sorted(moments.kind.unique()), default=sorted(moments.kind.unique()),
                           format_func=KIND_TITLES.get, key="moment_kinds")
    show_dismissed = st.toggle("Show dismissed moments", value=False, key="show_dismissed")
    listing = st.container(height=520)
    for m in moments[moments.kind.isin(kinds)].itertuples():
        entry = decisions.get(m.event_id, {})
        decision = entry.get("decision")
        if decision == "dismissed" and not show_dismissed:
            continue
        left, right = listing.columns([1, 3], vertical_alignment="top")
        if left.button(f"▶ {format_clock(m.start_s)}", key=f"jump-{m.event_id}",
                       help=f"Play from {m.start_s:.1f} s", width="stretch"):
            st.session_state.position_s = float(m.start_s)
            st.rerun()
        tag = KIND_TITLES.get(m.kind, m.kind) + "".join(
            f" · {str(detail).replace('_', ' ')}" for detail in (m.outcome, m.style, m.expression)
            if isinstance(detail, str) and detail)
        picked = m.event_id in walk["picked"]
        if right.checkbox("For the walkthrough", value=picked, key=f"pick-{m.event_id}",
                          help="Show this moment to the clients in the walkthrough") != picked:
            pick_moment(store, review.session_id, m.event_id, not picked)
            st.rerun()
        if m.added:
            right.markdown(f"**{tag}** · added by you — {m.explanation}")
            continue
        status = {"confirmed": " · ✓ confirmed", "dismissed": " · ✗ dismissed"}.get(decision, "")
        right.markdown(f"**{tag}**{status} — {m.explanation}  \n"
                       f"<small>confidence {float(m.confidence):.0%}</small>", unsafe_allow_html=True)
        confirm, dismiss, note = right.columns([1, 1, 2])
        for column, choice, text, verb in ((confirm, "confirmed", "✓", "Confirm"), (dismiss, "dismissed", "✗", "Dismiss")):
            if column.button(text, key=f"{choice}-{m.event_id}", disabled=decision == choice,
                             help=f"{verb} this moment (kept with your private notes)"):
                save_decision(store, review.session_id, m.event_id, decision=choice)
                st.rerun()
        with note.popover("Note", help="A private note: never shown to clients"):
            text = st.text_area("Your note", value=entry.get("note", ""), key=f"note-{m.event_id}")
            if st.button("Save note", key=f"save-note-{m.event_id}"):
                save_decision(store, review.session_id, m.event_id, note=text)
                st.rerun()


def add_moment_form(store: Store, review: Review) -> None:
    """Mark a moment the tool missed: from and to (s, starting where the video is), its kind,
    the people it shows."""
    with st.popover("+ Add a moment the tool missed"):
        with st.form("add_moment", clear_on_submit=True):
            here = float(st.session_state.get("position_s", 0.0))
            start = st.number_input("From (s)", min_value=0.0, value=here, step=1.0, key="add_start")
            end = st.number_input("To (s)", min_value=0.0, value=here + 5.0, step=1.0, key="add_end")
            kind = st.selectbox("Kind", list(MOMENT_KINDS), format_func=KIND_TITLES.get, key="add_kind")
            people = st.multiselect("Who it shows", list(review.names), format_func=review.names.get, key="add_people")
            if st.form_submit_button("Add moment"):
                try:
                    add_moment(store, review.session_id, start_s=start, end_s=end, kind=kind, participant_ids=people)
                except ValueError as exc:
                    st.error(str(exc).capitalize() + ".")
                    return
                st.rerun()


def agreement_panel(store: Store, review: Review) -> None:
    """How often the tool is right for this therapist, per kind: this session and all sessions."""
    with st.expander("How often the tool is right for you (from your confirmations, dismissals and added moments)"):
        this = session_agreement_inputs(store, review.session_id)
        every = [x for x in (session_agreement_inputs(store, r.session_id) for r in store.list_sessions()) if x]
        for title, sessions in (("This session", [this] if this else []), (f"All sessions ({len(every)})", every)):
            st.markdown(f"**{title}**")
            table = agreement(sessions)
            seen = table[(table.moments > 0) | (table.added > 0)]
            if seen.empty:
                st.caption("No moments yet.")
            else:
                st.table(agreement_table(seen))
        st.caption("Agreement is Cohen's kappa between the tool and you over 1-second slots (1 = always agree, "
                   "0 = no better than chance; blank until both of you have said yes and no somewhere). Moments "
                   "you have not reviewed yet are left out.")


def agreement_table(table: pd.DataFrame) -> pd.DataFrame:
    """The agreement table as the page shows it: kinds by title, shares as percentages."""
    return pd.DataFrame({
        "kind": table.kind.map(KIND_TITLES), "tool's moments": table.moments, "you confirmed": table.confirmed,
        "you dismissed": table.dismissed, "not reviewed": table.not_reviewed, "you added (missed)": table.added,
        "share confirmed": table.share_confirmed.map(lambda x: "" if pd.isna(x) else f"{x:.0%}"),
        "agreement (kappa)": table.kappa.map(lambda x: "" if pd.isna(x) else f"{x:.2f}"),
    }).set_index("kind")


def metrics_panel(review: Review) -> None:
    st.subheader("Who talked, who interrupted")
    people = review.participants
    cols = st.columns(max(len(people), 1))
    for col, p in zip(cols, people.itertuples()):
        col.metric(p.name, f"{p.talk_share:.0%} of talk")
        col.caption(f"{int(p.turn_count)} turns · longest {p.longest_turn_s:.0f} s · interrupted others "
                    f"{int(p.interruptions_made)}× · was interrupted {int(p.interruptions_received)}×")
    table = people[["name", "talk_s", "talk_share", "floor_share", "turn_count", "mean_turn_s", "longest_turn_s",
                    "interruptions_made", "interruptions_received", "backchannels_given"]].rename(columns={
        "name": "person", "talk_s": "talk (s)", "talk_share": "talk share", "floor_share": "floor share",
        "turn_count": "turns", "mean_turn_s": "mean turn (s)", "longest_turn_s": "longest turn (s)",
        "interruptions_made": "interrupted others", "interruptions_received": "was interrupted",
        "backchannels_given": "backchannels"})
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"talk share": st.column_config.NumberColumn(format="percent"),
                                "floor share": st.column_config.NumberColumn(format="percent"),
                                **{c: st.column_config.NumberColumn(format="%.1f")
                                   for c in ("talk (s)", "mean turn (s)", "longest turn (s)")}})
    st.markdown("**Who interrupts whom** (row interrupts column)")
    st.dataframe(review.matrix, width="stretch")
    thresholds_panel(review)
    st.caption(f"Speaker turns: {review.speaker_backend}.")


def thresholds_panel(review: Review) -> None:
    """Every setting that shaped the counts on this page, as this session's run recorded it."""
    with st.expander("How these counts were made: every threshold, with its meaning"):
        st.caption("These are the settings the analysis used for this session. The counts depend on "
                   "them; a different setting can give a different count.")
        table = thresholds_table(review)
        for stage, rows in table.groupby("stage", sort=False):   # static tables: long meanings wrap
            st.markdown(f"**{stage}**")
            st.table(rows.drop(columns="stage").set_index("setting"))


def session_page(store: Store, session_id: str) -> None:
    try:
        review = load_review(store, session_id)
    except PlaybackError as exc:
        st.error(str(exc))
        return
    note_access(store, session_id, "view")
    people = ", ".join(p["name"] for p in review.manifest["participants"])
    st.title(f"Session {session_id}")
    st.caption(f"{people} · {format_clock(review.manifest['duration_s'])} · recorded file {review.manifest.get('source_name', '')}")
    if not review.analysed:
        st.warning(f"This session has not been analysed yet. Run `playback analyze {session_id}`.")
        return
    if st.session_state.get("position_for") != session_id:
        st.session_state.position_s = 0.0
        st.session_state.position_for = session_id
    position = float(st.session_state.get("position_s", 0.0))
    video_col, moments_col = st.columns([3, 2])
    with video_col:
        media = review.manifest["media"]
        rel = media.get("video") or media.get("original")
        st.video(media_url(store, session_id, rel), start_time=int(position))
        note_access(store, session_id, "play")
        st.caption(f"Playing from {position:.1f} s")
        if review.face_coverage:
            st.caption("Faces found in sampled frames: " + ", ".join(f"{n} {c:.0%}" for n, c in review.face_coverage.items()))
    with moments_col:
        moments_list(store, review)
    st.subheader("Timeline")
    chart = timeline_chart(review, position)
    clicked = st.altair_chart(chart, width="stretch", height=int(chart.height) + 90, on_select="rerun",
                              key=f"timeline-{session_id}")
    seek_to_clicked_bar(clicked)
    st.caption("Click a bar to play from there.")
    st.markdown("**Vocal arousal** (each person against their own usual voice)")
    arousal = arousal_chart(review, position)
    if arousal is None:
        st.caption("No one's voice could be measured alone long enough to draw it.")
    else:
        st.altair_chart(arousal, width="stretch")
        st.caption("0 is the person's usual voice; the dashed line (1) is as loud and as high as a raised "
                   "voice. Gaps: too little of their voice alone there (not measured, not calm). Vocal "
                   "arousal is not an emotion: ask the person what it was.")
    metrics_panel(review)
    agreement_panel(store, review)
