"""The therapist's review page: the video, the moments to walk through, the timeline, the
metrics and every threshold behind the counts. Values come from :mod:`analysis.review`."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from analysis.dashboard.charts import LABEL_PX, clock_axis, draw_chart
from analysis.dashboard.expressions_lane import expression_lanes_panel
from analysis.dashboard.face_boxes import face_box_toggle
from analysis.dashboard.media_server import media_url
from analysis.dashboard.memo import remembered
from analysis.dashboard.seek import install_client_seek, jump_key
from analysis.dashboard.takehome import takehome_panel
from analysis.dashboard.vault import note_access
from analysis.review import (KIND_TITLES, MOMENT_KINDS, NOTES_FILE, WINDOW_STEP_S, Review, add_moment, agreement,
                             default_window_s, format_clock, interruption_cells, parse_clock, load_added, load_decisions,
                             load_review, load_walkthrough, overview_density, overview_marks, pick_moment,
                             save_decision, session_agreement_inputs, thresholds_table, timeline_rows,
                             timeline_window, turn_length_summary, window_rows, window_start_for)
from analysis.dashboard.walkthrough import start_walkthrough
from capture.errors import PlaybackError
from capture.store import Store

# Every timeline kind's colour and the row of the person's block it is drawn in, in drawing
# order (later kinds are drawn over earlier ones: backchannels over speech).
KIND_LAYERS = {
    "speech_turn": ("#8fb8de", "speech"), "overlap": ("#f2b84b", "speech"), "backchannel": ("#6a994e", "speech"),
    "interruption": ("#d9534f", "events"), "raised_voice": ("#8e44ad", "events"),
    "heated_exchange": ("#e76f51", "events"), "flat_voice": ("#577590", "events"),
    "speeding_up": ("#b5838d", "events"), "expression": ("#2a9d8f", "face"), "face_moment": ("#1d3557", "face"),
}
LAYER_COLOURS = {KIND_TITLES[kind]: colour for kind, (colour, _) in KIND_LAYERS.items()}
LAYER_GROUP = {KIND_TITLES[kind]: group for kind, (_, group) in KIND_LAYERS.items()}
TIMELINE_GROUPS = ("speech", "events", "face")
WINDOW_WIDTHS_S = (60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)   # the detail window's widths on offer (s)
MOMENTS_PER_PAGE = 10   # moments listed at a time (a 50-minute group session has hundreds; each costs the page's first render about 50 ms in the browser)


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


def timeline_section(review: Review, position_s: float) -> tuple[float, float]:
    """The timeline: who and what to show, the window (s) over the session, an overview of the
    whole session when the window is shorter, and the detail; returns the window (s)."""
    sid, duration = review.session_id, float(review.manifest["duration_s"])
    names = list(review.names.values())
    rows = timeline_rows(review)
    drawn = set(rows.layer.unique())
    present = [layer for layer in LAYER_COLOURS if layer in drawn]
    who_col, what_col, width_col, start_col = st.columns([3, 3, 2, 4], vertical_alignment="bottom")
    people = who_col.multiselect("People", names, default=names, key=f"timeline_people-{sid}")
    layers = what_col.multiselect("Show", present, default=present, key=f"timeline_kinds-{sid}")
    widths = [w for w in WINDOW_WIDTHS_S if w < duration] + [duration]
    width = width_col.select_slider("Window", widths, value=min(widths, key=lambda w: abs(w - default_window_s(duration))),
                                    format_func=lambda w: "whole session" if w == duration else f"{w / 60:g} min",
                                    key=f"timeline_width-{sid}")
    start = 0.0
    if width < duration:
        start = start_col.select_slider("Window from", window_starts(duration, width),
                                        key=follow_video(sid, position_s, width, duration), format_func=format_clock,
                                        help="The window follows the video when you play a moment outside it")
    window = timeline_window(duration, width, start)
    if width < duration:
        overview = overview_chart(review, rows, position_s, window, people, layers)
        st.caption("The whole session: how much each person spoke (darker: more), a tick per moment, the "
                   "window shown below (shaded) and the video position (dashed).")
        picked = draw_chart(overview, width="stretch", height=int(overview.height) + 45, on_select="rerun",
                                 key=f"overview-{sid}")
        for selection in ("overview", "overview_mark"):
            seek_to_clicked_bar(picked, selection=selection, seen=f"{selection}_seen")
    st.markdown(layer_legend([layer for layer in present if layer in layers]), unsafe_allow_html=True)
    chart = timeline_chart(review, position_s, window, people, layers, rows=rows)
    clicked = draw_chart(chart, width="stretch", height=int(chart.height) + 90, on_select="rerun",
                              key=f"timeline-{sid}")
    seek_to_clicked_bar(clicked)
    st.caption("Click a bar to play from there." + (" Click the whole-session strip above to move the window "
                                                     "and the video there." if width < duration else ""))
    return window


def window_starts(duration_s: float, width_s: float) -> list[float]:
    """The window's possible starts (s): every :data:`WINDOW_STEP_S` and the last one possible."""
    last = duration_s - width_s
    return [float(s) for s in np.arange(0.0, last, WINDOW_STEP_S)] + [float(last)]


def follow_video(session_id: str, position_s: float, width_s: float, duration_s: float) -> str:
    """The window start's widget key, its value set (before the widget is drawn) so that the
    window holds the video position whenever the position moved outside it, and snapped to a
    possible start when the width changed."""
    key, seen = f"timeline_start-{session_id}", f"timeline_position_seen-{session_id}"
    state = st.session_state
    starts = window_starts(duration_s, width_s)
    current = state.get(key)
    moved = state.get(seen) != position_s
    if current is None or (moved and not current <= position_s < current + width_s):
        current = window_start_for(position_s, width_s, duration_s)
    state[key] = min(starts, key=lambda s: abs(s - current))
    state[seen] = position_s
    return key


def layer_legend(layers: list[str]) -> str:
    """The timeline's colours, one swatch per layer shown (HTML)."""
    return "&nbsp;&nbsp; ".join(f'<span style="color:{LAYER_COLOURS[layer]}">■</span> {layer}' for layer in layers)


def person_colours(review: Review) -> alt.Scale:
    """One colour per person (manifest order), the same on every plot of the page."""
    return alt.Scale(domain=list(review.names.values()), scheme="dark2")


def timeline_lanes(review: Review, rows: pd.DataFrame, people: list[str], layers: list[str]) -> list[str]:
    """The detail's rows, ``"name · group"``: the chosen people (in manifest order, then
    "everyone" when some bars belong to no one) times the groups that one of the chosen kinds
    drawn somewhere in the session falls in."""
    drawn = set(rows.layer.unique())
    groups = [g for g in TIMELINE_GROUPS if any(LAYER_GROUP[layer] == g for layer in layers if layer in drawn)]
    lanes = [n for n in review.names.values() if n in people] + (["everyone"] if (rows.lane == "everyone").any() else [])
    return [f"{lane} · {group}" for lane in lanes for group in groups]


def detail_rows(review: Review, window: tuple[float, float], people: list[str], layers: list[str],
                rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The detail timeline's bars: the chosen people's (and no one's) bars of the chosen kinds
    overlapping ``window`` (s), at most :data:`analysis.review.DETAIL_MAX_ROWS`."""
    rows = timeline_rows(review) if rows is None else rows
    rows = rows[(rows.lane.isin(people) | (rows.lane == "everyone")) & rows.layer.isin(layers)]
    out = window_rows(rows, *window)
    return out.assign(row=out.lane + " · " + out.layer.map(LAYER_GROUP),
                      draw=out.layer.map({layer: i for i, layer in enumerate(LAYER_COLOURS)}))  # backchannels over speech


def timeline_chart(review: Review, position_s: float, window: tuple[float, float] | None = None,
                   people: list[str] | None = None, layers: list[str] | None = None, *,
                   rows: pd.DataFrame | None = None) -> alt.LayerChart:
    """The detail: one block of rows per person (what they said, what happened, what their face
    showed) over ``window`` (s; default the whole session), for ``people`` and ``layers``
    (default all). Clicking a bar selects its start (the ``seek`` selection: the page moves the
    video there)."""
    rows = timeline_rows(review) if rows is None else rows
    window = window or (0.0, float(review.manifest["duration_s"]))
    people = list(review.names.values()) if people is None else people
    layers = list(LAYER_COLOURS) if layers is None else layers
    bars_data = detail_rows(review, window, people, layers, rows)
    row_order = timeline_lanes(review, rows, people, layers)
    first_group = row_order[0].rsplit(" · ", 1)[-1] if row_order else ""
    # the name once per block: on its first row; the other rows say only which row it is
    y = alt.Y("row:N", title=None, sort=row_order, scale=alt.Scale(domain=row_order),
              axis=alt.Axis(labelOverlap=False, labelLimit=LABEL_PX, minExtent=LABEL_PX, labelFontSize=12,
                            labelExpr=f"peek(split(datum.value, ' · ')) == '{first_group}' ? datum.value : "
                                      "peek(split(datum.value, ' · '))"))
    x = alt.X("start_s:Q", scale=alt.Scale(domain=list(window), nice=False), axis=clock_axis(window))
    drawn = set(rows.layer.unique())
    shown = [layer for layer in LAYER_COLOURS if layer in layers and layer in drawn] or list(LAYER_COLOURS)
    seek = alt.selection_point(name="seek", fields=["start_s"], on="click", clear=False)
    bars = alt.Chart(bars_data).mark_bar(height=14, cornerRadius=2, cursor="pointer", clip=True).add_params(seek).encode(
        x=x, x2=alt.X2("end_s"), order=alt.Order("draw:Q"), y=y,
        color=alt.Color("layer:N", title=None, legend=None,            # the page writes the legend above
                        scale=alt.Scale(domain=shown, range=[LAYER_COLOURS[s] for s in shown])),
        tooltip=[alt.Tooltip("lane:N"), alt.Tooltip("layer:N"), alt.Tooltip("label:N"), alt.Tooltip("start_s:Q", title="from (s)", format=".1f"),
                 alt.Tooltip("end_s:Q", title="to (s)", format=".1f"), "explanation:N"],
    )
    lanes = list(dict.fromkeys(r.rsplit(" · ", 1)[0] for r in row_order))
    shaded = [r for r in row_order if lanes.index(r.rsplit(" · ", 1)[0]) % 2 == 1]    # every other person
    bands = alt.Chart(pd.DataFrame({"row": shaded, "x0": window[0], "x1": window[1]})).mark_rect(
        color="#f2f2f2").encode(x=alt.X("x0:Q", scale=alt.Scale(domain=list(window), nice=False)), x2=alt.X2("x1"), y=y)
    cursor = alt.Chart(pd.DataFrame({"t": [position_s]})).mark_rule(color="black", strokeDash=[4, 3], clip=True).encode(
        x=alt.X("t:Q", scale=alt.Scale(domain=list(window), nice=False)))
    return alt.layer(bands, bars, cursor, height=24 * max(len(row_order), 1))


def overview_chart(review: Review, rows: pd.DataFrame, position_s: float, window: tuple[float, float],
                   people: list[str], layers: list[str]) -> alt.LayerChart:
    """The whole session, one thin row per chosen person: how much they spoke (shade), a tick
    per moment of a chosen kind, the detail window (shaded) and the video position. Clicking a
    shade or a tick selects its start (s; the ``overview`` and ``overview_mark`` selections): the
    page plays from there."""
    duration = float(review.manifest["duration_s"])
    rows = rows[rows.lane.isin(people) & rows.layer.isin(layers)]
    lanes = [n for n in review.names.values() if n in people]
    density = overview_density(rows, duration)
    marks = overview_marks(rows)
    x_scale = alt.Scale(domain=[0.0, duration], nice=False)
    y = alt.Y("lane:N", title=None, sort=lanes, scale=alt.Scale(domain=lanes),
              axis=alt.Axis(labelLimit=LABEL_PX, minExtent=LABEL_PX, labelFontSize=11, labelOverlap=False))
    pick = alt.selection_point(name="overview", fields=["start_s"], on="click", clear=False)
    speech = alt.Chart(density).mark_rect(cursor="pointer").add_params(pick).encode(
        x=alt.X("start_s:Q", scale=x_scale, axis=clock_axis((0.0, duration), title=None)), x2=alt.X2("end_s"), y=y,
        color=alt.Color("speech:Q", title="share of the time speaking", legend=None,
                        scale=alt.Scale(domain=[0, 1], range=["#f7f9fb", "#2b6ca3"])),
        tooltip=[alt.Tooltip("lane:N"), alt.Tooltip("start_s:Q", title="from (s)", format=".1f"),
                 alt.Tooltip("speech:Q", title="speaking", format=".0%")])
    drawn = set(marks.layer.unique())
    shown = [layer for layer in LAYER_COLOURS if layer in drawn]
    pick_mark = alt.selection_point(name="overview_mark", fields=["start_s"], on="click", clear=False)
    ticks = alt.Chart(marks).mark_tick(thickness=2, size=12, cursor="pointer").add_params(pick_mark).encode(
        x=alt.X("start_s:Q", scale=x_scale), y=y,
        color=alt.Color("layer:N", legend=None, scale=alt.Scale(domain=shown or ["-"],
                                                                range=[LAYER_COLOURS[s] for s in shown] or ["#999"])),
        tooltip=[alt.Tooltip("lane:N"), alt.Tooltip("layer:N"), alt.Tooltip("label:N"), alt.Tooltip("start_s:Q", title="at (s)", format=".1f")])
    # the window: shaded under the rows (so clicks reach them), its edges drawn over them
    frame = alt.Chart(pd.DataFrame({"a": [window[0]], "b": [window[1]]})).mark_rect(
        fill="#000000", fillOpacity=0.08).encode(x=alt.X("a:Q", scale=x_scale), x2=alt.X2("b"))
    edges = alt.Chart(pd.DataFrame({"t": list(window)})).mark_rule(color="black", strokeWidth=2).encode(
        x=alt.X("t:Q", scale=x_scale))
    cursor = alt.Chart(pd.DataFrame({"t": [position_s]})).mark_rule(color="black", strokeDash=[4, 3]).encode(
        x=alt.X("t:Q", scale=x_scale))
    return alt.layer(frame, speech, ticks, edges, cursor, height=18 * max(len(lanes), 1))


def seek_to_clicked_bar(clicked, *, selection: str = "seek", seen: str = "seek_seen") -> None:
    """Move the video to the start (s) of the timeline bar just clicked (once per click: the
    selection stays set across reruns, so a moment chosen later is not overridden)."""
    picked = (clicked.selection.get(selection) if clicked else None) or []
    start = picked[0].get("start_s") if picked else None
    if start is not None and start != st.session_state.get(seen):
        st.session_state[seen] = start
        # to 0.1 s, as the bar's tooltip shows it: the browser has moved the video to that
        # whole second already (analysis/dashboard/seek.py), and the player asks for the same
        st.session_state.position_s = round(float(start), 1)
        st.rerun()


def arousal_chart(review: Review, position_s: float, window: tuple[float, float] | None = None,
                  people: list[str] | None = None) -> alt.Chart | None:
    """Each person's vocal arousal over ``window`` (s; default the whole session), 0 = their
    usual voice, 1 = as loud and as high as a raised voice (the tone thresholds); None when no
    one's voice could be measured there."""
    curve = review.arousal
    window = window or (0.0, float(review.manifest["duration_s"]))
    if curve is None or curve.empty:
        return None
    curve = curve[(curve.t_s >= window[0]) & (curve.t_s <= window[1])]
    if people is not None:
        curve = curve[curve.name.isin(people)]
    if curve.empty:
        return None
    curve = curve.sort_values(["name", "t_s"])
    step = curve.groupby("name").t_s.diff()
    # a new piece of line after each gap, so that unmeasured stretches are not drawn over
    curve = curve.assign(piece=curve.name + (step > 1.5 * step.median()).groupby(curve.name).cumsum().astype(str))
    x = alt.X("t_s:Q", scale=alt.Scale(domain=list(window), nice=False), axis=clock_axis(window))
    lines = alt.Chart(curve).mark_line(point=alt.OverlayMarkDef(size=14), clip=True).encode(
        x=x, y=alt.Y("arousal:Q", title="vocal arousal", axis=alt.Axis(minExtent=LABEL_PX - 30)),
        color=alt.Color("name:N", title=None, scale=person_colours(review),
                        legend=alt.Legend(orient="right", labelLimit=200)),   # a top legend squashes the plot
        detail=alt.Detail("piece:N"),
        tooltip=[alt.Tooltip("name"), alt.Tooltip("t_s:Q", title="time (s)", format=".0f"),
                 alt.Tooltip("loudness_delta_db:Q", title="louder than usual (dB)", format=".1f"),
                 alt.Tooltip("pitch_delta_st:Q", title="higher than usual (semitones)", format=".1f")])
    raised = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(color="#b2182b", strokeDash=[2, 2]).encode(y=alt.Y("y:Q"))
    cursor = alt.Chart(pd.DataFrame({"t": [position_s]})).mark_rule(color="black", strokeDash=[4, 3], clip=True).encode(
        x=alt.X("t:Q", scale=alt.Scale(domain=list(window), nice=False)))
    return alt.layer(lines, raised, cursor, height=220)


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
    kinds_col, people_col = st.columns(2)
    kinds = kinds_col.multiselect("Show", sorted(moments.kind.unique()), default=sorted(moments.kind.unique()),
                                  format_func=KIND_TITLES.get, key="moment_kinds")
    names = review.names
    people = people_col.multiselect("With", list(names), default=list(names), format_func=names.get,
                                    key=f"moment_people-{review.session_id}",
                                    help="Moments of these people (as the one who did it or the one it was aimed at)")
    show_dismissed = st.toggle("Show dismissed moments", value=False, key="show_dismissed")
    shown = moments_shown(moments, kinds, people)
    if not show_dismissed:
        shown = shown[[decisions.get(e, {}).get("decision") != "dismissed" for e in shown.event_id]]
    if len(shown) > MOMENTS_PER_PAGE:       # a long session: a page at a time keeps the page quick
        times, n = shown.start_s.to_numpy(float), len(shown)
        pages = {i: f"{i + 1}–{min(i + MOMENTS_PER_PAGE, n)} of {n} · {format_clock(times[i])}–"
                    f"{format_clock(times[min(i + MOMENTS_PER_PAGE, n) - 1])}" for i in range(0, n, MOMENTS_PER_PAGE)}
        key, seen = f"moment_page-{review.session_id}-{n}", f"moment_position_seen-{review.session_id}"
        position = float(st.session_state.get("position_s", 0.0))
        if key not in st.session_state or st.session_state.get(seen) != position:     # the page of the video
            at = max(int(np.searchsorted(times, position, side="right")) - 1, 0)
            st.session_state[key] = at // MOMENTS_PER_PAGE * MOMENTS_PER_PAGE
        st.session_state[seen] = position
        first = st.selectbox("Page", list(pages), format_func=pages.get, key=key,
                             help="A page at a time; it turns to the video's position when that moves")
        shown = shown.iloc[first:first + MOMENTS_PER_PAGE]
    listing = st.container(height=520)
    for m in shown.itertuples():
        entry = decisions.get(m.event_id, {})
        decision = entry.get("decision")
        left, right = listing.columns([1, 3], vertical_alignment="top")
        left.button(f"▶ {format_clock(m.start_s)}", key=jump_key(m.event_id, m.start_s), help=f"Play from {m.start_s:.1f} s",
                    width="stretch", on_click=_play_from, args=(float(m.start_s),))
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
        # built only while open: a page of note boxes would cost the page a few tenths of a second
        popover = note.popover("Note", help="A private note: never shown to clients", key=f"note-box-{m.event_id}",
                               on_change="rerun")
        if popover.open:
            with popover:
                text = st.text_area("Your note", value=entry.get("note", ""), key=f"note-{m.event_id}")
                if st.button("Save note", key=f"save-note-{m.event_id}"):
                    save_decision(store, review.session_id, m.event_id, note=text)
                    st.rerun()


def moments_shown(moments: pd.DataFrame, kinds: list[str], people: list[str]) -> pd.DataFrame:
    """The moments of ``kinds`` that show one of ``people`` (ids; as the one who did it or the
    one it was aimed at), and those that show no one in particular (a long silence)."""
    none = pd.Series(None, index=moments.index, dtype=object)
    who, target = moments.get("participant_id", none), moments.get("target_participant_id", none)
    nobody = who.isna() & target.isna()
    return moments[moments.kind.isin(kinds) & (who.isin(people) | target.isin(people) | nobody)]


def add_moment_form(store: Store, review: Review) -> None:
    """Mark a moment the tool missed: from and to (m:ss, starting where the video is), its kind,
    the people it shows; says what was added."""
    added = st.session_state.pop("moment_added", None)
    if added:
        st.success(added)
    with st.popover("+ Add a moment the tool missed"):
        with st.form("add_moment", clear_on_submit=True):
            here = float(st.session_state.get("position_s", 0.0))
            start = st.text_input("From (m:ss)", value=format_clock(here), key="add_start",
                                  help="Where the video is now; type another time as minutes:seconds")
            end = st.text_input("To (m:ss)", value=format_clock(here + 5.0), key="add_end")
            kind = st.selectbox("Kind", list(MOMENT_KINDS), format_func=KIND_TITLES.get, key="add_kind")
            people = st.multiselect("Who it shows", list(review.names), format_func=review.names.get, key="add_people")
            if st.form_submit_button("Add moment"):
                try:
                    start_s, end_s = parse_clock(start), parse_clock(end)
                    add_moment(store, review.session_id, start_s=start_s, end_s=end_s, kind=kind, participant_ids=people)
                except ValueError as exc:
                    st.error(str(exc)[:1].upper() + str(exc)[1:] + ".")
                    return
                who = ", ".join(review.names[p] for p in people) or "no one in particular"
                st.session_state.moment_added = (f"Added: {KIND_TITLES.get(kind, kind).lower()}, "
                                                 f"{format_clock(start_s)}–{format_clock(end_s)}, showing {who}. "
                                                 "It is now in the moments list.")
                st.rerun()


def agreement_panel(store: Store, review: Review) -> None:
    """How often the tool is right for this therapist, per kind: this session and all sessions."""
    panel = st.expander("How often the tool is right for you (from your confirmations, dismissals and added moments)",
                        key="agreement_panel", on_change="rerun")
    if not panel.open:         # reads every session's decisions: only when asked
        return
    with panel:
        this = session_agreement_inputs(store, review.session_id)
        every = [x for x in (remembered(store, r.session_id, "agreement_inputs", ["derived", NOTES_FILE],
                                        lambda sid=r.session_id: session_agreement_inputs(store, sid), keep=1000)
                             for r in store.list_sessions()) if x]
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
    per_row = 4 if len(people) > 4 else max(len(people), 1)
    for first in range(0, max(len(people), 1), per_row):
        chunk = people.iloc[first:first + per_row]
        for col, p in zip(st.columns(per_row), chunk.itertuples()):
            col.metric(p.name, f"{p.talk_share:.0%} of talk")
            col.caption(f"{int(p.turn_count)} turns · longest {p.longest_turn_s:.0f} s · interrupted others "
                        f"{int(p.interruptions_made)}× · was interrupted {int(p.interruptions_received)}×")
    talk_col, turns_col = st.columns(2)
    with talk_col:
        st.markdown("**Share of the talking**")
        talk = talk_share_chart(review)
        draw_chart(talk, width="stretch", height=int(talk.height) + 80)
    with turns_col:
        st.markdown("**How long each person's turns were**")
        turns = turn_length_chart(review)
        if turns is None:
            st.caption("No speech turns.")
        else:
            draw_chart(turns, width="stretch", height=int(turns.height) + 80)
            st.caption("Box: the middle half of their turns, line inside: the typical turn; dot: the longest.")
    st.markdown("**Who interrupts whom** (row interrupts column)")
    if len(review.matrix) >= 3:
        heatmap = interruption_heatmap(review)
        left, _ = st.columns([3, 2])            # near-square cells for long names
        draw_chart(heatmap, left, width="stretch", height=int(heatmap.height) + 130)
        st.caption("Each square counts the times the person on the left began while the person above was "
                   "talking (every outcome).")
    else:                       # two people: two numbers, read at a glance in a table
        st.dataframe(review.matrix, width="stretch")
    every_number = st.expander("Every number per person", key="every_number", on_change="rerun")
    if every_number.open:
        table = people[["name", "talk_s", "talk_share", "floor_share", "turn_count", "mean_turn_s", "longest_turn_s",
                        "interruptions_made", "interruptions_received", "backchannels_given"]].rename(columns={
            "name": "person", "talk_s": "talk (s)", "talk_share": "talk share", "floor_share": "floor share",
            "turn_count": "turns", "mean_turn_s": "mean turn (s)", "longest_turn_s": "longest turn (s)",
            "interruptions_made": "interrupted others", "interruptions_received": "was interrupted",
            "backchannels_given": "backchannels"})
        every_number.dataframe(table, hide_index=True, width="stretch",
                               column_config={"talk share": st.column_config.NumberColumn(format="percent"),
                                              "floor share": st.column_config.NumberColumn(format="percent"),
                                              **{c: st.column_config.NumberColumn(format="%.1f")
                                                 for c in ("talk (s)", "mean turn (s)", "longest turn (s)")}})
        if len(review.matrix) >= 3:
            every_number.markdown("Who interrupts whom (row interrupts column)")
            every_number.dataframe(review.matrix, width="stretch")
    thresholds_panel(review)
    st.caption(f"Speaker turns: {review.speaker_backend}.")


def talk_share_chart(review: Review) -> alt.Chart:
    """Each person's share of the talking (0-1), a bar each, labelled with the share and the minutes."""
    people = review.participants.assign(
        text=lambda t: t.talk_share.map("{:.0%}".format) + " · " + (t.talk_s / 60).map("{:.1f} min".format))
    names = list(review.names.values())
    y = alt.Y("name:N", title=None, sort=names, axis=alt.Axis(labelLimit=200))
    base = alt.Chart(people[["name", "talk_share", "talk_s", "text"]])
    bars = base.mark_bar(height=18).encode(
        x=alt.X("talk_share:Q", title="share of the talking", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, max(0.5, float(np.nan_to_num(people.talk_share.max())) + 0.15)])),
        y=y, color=alt.Color("name:N", legend=None, scale=person_colours(review)),
        tooltip=[alt.Tooltip("name"), alt.Tooltip("talk_share:Q", title="share", format=".0%"),
                 alt.Tooltip("talk_s:Q", title="talk (s)", format=".0f")])
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(x=alt.X("talk_share:Q"), y=y, text=alt.Text("text:N"))
    return alt.layer(bars, text, height=30 * max(len(people), 1) + 10)


def turn_length_chart(review: Review) -> alt.LayerChart | None:
    """Each person's turn lengths (s) as a box (quartiles, whiskers, median) and their longest
    turn as a dot, from :func:`analysis.review.turn_length_summary`; None without turns."""
    summary = turn_length_summary(review)
    if summary.empty:
        return None
    y = alt.Y("name:N", title=None, sort=list(review.names.values()), axis=alt.Axis(labelLimit=200))
    colour = alt.Color("name:N", legend=None, scale=person_colours(review))
    tooltip = [alt.Tooltip("name"), alt.Tooltip("turns"), alt.Tooltip("median_s:Q", title="typical turn (s)", format=".1f"),
               alt.Tooltip("q1_s:Q", title="middle half from (s)", format=".1f"),
               alt.Tooltip("q3_s:Q", title="middle half to (s)", format=".1f"),
               alt.Tooltip("longest_s:Q", title="longest (s)", format=".1f")]
    base = alt.Chart(summary)
    whisker = base.mark_rule(color="#555").encode(x=alt.X("low_s:Q", title="turn length (s)"), x2=alt.X2("high_s"), y=y)
    box = base.mark_bar(height=16, opacity=0.8).encode(x=alt.X("q1_s:Q"), x2=alt.X2("q3_s"), y=y, color=colour, tooltip=tooltip)
    median = base.mark_tick(color="white", thickness=2, size=16).encode(x=alt.X("median_s:Q"), y=y, tooltip=tooltip)
    longest = base.mark_point(filled=True, size=40).encode(x=alt.X("longest_s:Q"), y=y, color=colour, tooltip=tooltip)
    return alt.layer(whisker, box, median, longest, height=30 * len(summary) + 10)


def interruption_heatmap(review: Review) -> alt.LayerChart:
    """Who interrupts whom as a heatmap: rows the interrupter, columns the interrupted, each cell
    the count (:func:`analysis.review.interruption_cells`); the diagonal is left grey."""
    cells = interruption_cells(review.matrix)
    names = list(review.matrix.index)
    top = max(int(cells["count"].max()), 1) if len(cells) else 1
    x = alt.X("interrupted:N", title="was interrupted", sort=names, scale=alt.Scale(domain=names),
              axis=alt.Axis(orient="top", labelAngle=-35, labelLimit=140, labelOverlap=False))
    y = alt.Y("interrupter:N", title="came in", sort=names, scale=alt.Scale(domain=names),
              axis=alt.Axis(labelLimit=160))
    self_cells = alt.Chart(pd.DataFrame({"interrupter": names, "interrupted": names})).mark_rect(
        color="#eeeeee").encode(x=x, y=y)
    rect = alt.Chart(cells).mark_rect(stroke="white").encode(
        x=x, y=y, color=alt.Color("count:Q", title="times", scale=alt.Scale(domain=[0, top], scheme="oranges")),
        tooltip=[alt.Tooltip("interrupter:N", title="came in"), alt.Tooltip("interrupted:N", title="while talking"),
                 alt.Tooltip("count:Q", title="times")])
    text = alt.Chart(cells).mark_text(fontSize=13).encode(
        x=x, y=y, text=alt.Text("count:Q"),
        color=alt.condition(alt.datum["count"] > top / 2, alt.value("white"), alt.value("black")))
    return alt.layer(self_cells, rect, text, height=46 * len(names))


def thresholds_panel(review: Review) -> None:
    """Every setting that shaped the counts on this page, as this session's run recorded it."""
    panel = st.expander("How these counts were made: every threshold, with its meaning", key="thresholds_panel",
                        on_change="rerun")
    if not panel.open:
        return
    with panel:
        st.caption("These are the settings the analysis used for this session. The counts depend on "
                   "them; a different setting can give a different count.")
        table = thresholds_table(review)
        for stage, rows in table.groupby("stage", sort=False):   # static tables: long meanings wrap
            st.markdown(f"**{stage}**")
            st.table(rows.drop(columns="stage").set_index("setting"))


def _play_from(t_s: float) -> None:
    """A moment's ▶: the page's state follows the video to ``t_s`` (s). The browser has already
    moved the video at the click (:mod:`analysis.dashboard.seek`); only the player and the
    moments rerun (:func:`player_and_moments`), not the charts."""
    st.session_state.position_s = t_s


@st.fragment
def player_and_moments(store: Store, review: Review) -> None:
    """The video at the chosen position, beside the moments list."""
    position = float(st.session_state.get("position_s", 0.0))
    install_client_seek()
    video_col, moments_col = st.columns([3, 2])
    with video_col:
        media = review.manifest["media"]
        rel = media.get("video") or media.get("original")
        url = media_url(store, review.session_id, rel)
        st.video(url, start_time=int(position))
        note_access(store, review.session_id, "play")
        st.caption(f"Playing from {position:.1f} s")
        face_box_toggle(store, review, position, url)
        if review.face_coverage:
            st.caption("Faces found in sampled frames: " + ", ".join(f"{n} {c:.0%}" for n, c in review.face_coverage.items()))
    with moments_col:
        moments_list(store, review)


def session_page(store: Store, session_id: str) -> None:
    try:
        review = remembered(store, session_id, "review", ["derived", "manifest.json"],
                            lambda: load_review(store, session_id))
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
    player_and_moments(store, review)
    position = float(st.session_state.get("position_s", 0.0))
    st.subheader("Timeline")
    window = timeline_section(review, position)
    people = st.session_state.get(f"timeline_people-{session_id}")
    st.markdown("**Vocal arousal** (each person against their own usual voice, in the timeline's window)")
    arousal = arousal_chart(review, position, window, people)
    if arousal is None:
        st.caption("No one's voice could be measured alone long enough to draw it here.")
    else:
        draw_chart(arousal, width="stretch", height=260)
        st.caption("0 is the person's usual voice; the dashed line (1) is as loud and as high as a raised "
                   "voice. Gaps: too little of their voice alone there (not measured, not calm). Vocal "
                   "arousal is not an emotion: ask the person what it was.")
    expression_lanes_panel(store, review, position, window, people)
    metrics_panel(review)
    agreement_panel(store, review)
    takehome_panel(store, review)
