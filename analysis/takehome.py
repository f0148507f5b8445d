"""The clients' take-home summary: one self-contained HTML page and a PDF with plots a client
can read (talk share, speaking at the same time, turn lengths) and the moments the therapist
chose, in the walkthrough's plain words; optionally short MP4 clips of those moments with
chosen people's faces blurred and voices muted. No Streamlit here.

**The scope rule.** A summary is made only when *every participant of the session* (whatever
their role) agreed to ``take_home_copy`` under the consent text in force now: the plots show
everyone, and each moment is part of a conversation everyone took part in. Otherwise
:class:`TakeHomeRefused` says, in one sentence, who did not. A session without consent records
(imported under the old rules) never gets one: take-home was never attested for it. On top of
that, defence in depth, a moment is kept only if every person it shows agreed
(:func:`take_home_moments`), and only moments of :func:`analysis.review.walkthrough_playlist`
(picked, not dismissed, not vetoed) are considered. Nothing else travels: no private notes,
no confidence, no session ids, no other session.

**Clips** (:func:`clip`): people in ``blur_ids`` (and always anyone without take-home consent)
have their face pixelated (boxes from ``derived/faces.parquet``) and the sound muted whenever
they speak (``derived/speakers.parquet``, padded by :data:`MUTE_PAD_S`; speech attributed to
nobody is muted too, it may be theirs). Muting cuts the one mixed audio track, so where someone
else spoke at the same time they are silenced too; :func:`muting_notes` says where, in words,
for the summary. All times are float seconds from the session start.
"""
from __future__ import annotations

import base64
import html
import io
import math
import textwrap
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import av
import numpy as np
import pandas as pd
import soundfile as sf

from analysis.core import events as ev
from analysis.review import (Review, format_clock, load_added, load_decisions, load_review, load_walkthrough,
                             walkthrough_playlist)
from capture.consent import read_consent
from capture.errors import BadMediaError, ConsentError, PlaybackError
from capture.store import Store

TAKE_HOME_SCOPE = "take_home_copy"
FORMATS = ("html", "pdf")
MUTE_PAD_S = 0.2          # s added before and after each muted stretch of speech
MAX_CLIP_S = 120.0        # longest clip, s
NOTED_OVERLAP_S = 0.25    # someone else silenced for less than this (s) is not mentioned
CLIP_LEAD_S, CLIP_TAIL_S = 1.0, 2.0   # s a moment's clip starts earlier / ends later (as the walkthrough)
FACE_NEAR_S = 0.5         # a face box this close in time (s) to a frame is used for it
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
INTRO_WORDS = (
    "These notes come from your session, for you to look back on between sessions. They show how the "
    "conversation flowed: who spoke, for how long, and when people spoke at the same time. They are not a "
    "judgement of anyone. Speaking at the same time can be eager, warm or tense, and only you know which. "
    "Bring anything that surprises you to your next session.")
MADE_WORDS = "started speaking while someone else was talking"
RECEIVED_WORDS = "someone else started while they were talking"
_METRICS = ["talk_share", "talk_s", "interruptions_made", "interruptions_received"]
# Names are user input: matplotlib must draw a "$" as a dollar, not start mathematics.
_RC = {"text.parse_math": False, "pdf.fonttype": 42}


class TakeHomeRefused(ConsentError):
    """A take-home copy was asked for while someone shown has not agreed to one."""


@dataclass(frozen=True)
class Person:
    """One participant as the summary shows them: ``talk_share`` 0-1 of all talking time,
    ``talk_s`` seconds, interruption counts, and each turn's length in seconds."""

    name: str
    talk_share: float
    talk_s: float
    interruptions_made: int
    interruptions_received: int
    turn_lengths_s: tuple[float, ...]


@dataclass(frozen=True)
class Moment:
    """A chosen moment: ``start_s``/``end_s`` (s), the walkthrough's plain ``intro`` and, when
    clips mute someone, a ``note`` saying where muting is imperfect."""

    start_s: float
    end_s: float
    intro: str
    note: str = ""


@dataclass(frozen=True)
class Summary:
    """Everything a take-home copy shows, and nothing else. ``duration_s`` in seconds."""

    day: str
    duration_s: float
    people: tuple[Person, ...]
    moments: tuple[Moment, ...]

    @property
    def title(self) -> str:
        return f"Looking back at our session of {self.day}"


# ----- the scope rule --------------------------------------------------------------------------
def take_home_consented(store: Store, session_id: str) -> set[str]:
    """Ids of the participants whose current consent record allows a take-home copy (none for
    a session without consent records)."""
    records = read_consent(store, session_id) or {}
    return {pid for pid, r in records.items() if r.allows(TAKE_HOME_SCOPE) and r.is_current()}


def require_take_home(store: Store, session_id: str, manifest: dict | None = None) -> set[str]:
    """Raise :class:`TakeHomeRefused` (one sentence naming who) unless every participant agreed
    to a take-home copy; returns their ids."""
    manifest = manifest or store.manifest(session_id)
    consented = take_home_consented(store, session_id)
    missing = [p["name"] for p in manifest["participants"] if p["id"] not in consented]
    if missing:
        raise TakeHomeRefused(
            f"No take-home summary can be made: it needs everyone in the session to agree to a take-home copy, "
            f"and {ev.names_list(missing)} {'has' if len(missing) == 1 else 'have'} not agreed "
            f"(or agreed to an older consent text). If they agree now, record it with: playback consent "
            f"{session_id} --give \"NAME=take_home_copy\".")
    return consented


def take_home_moments(playlist: pd.DataFrame, consented: set[str]) -> pd.DataFrame:
    """The rows of a walkthrough playlist whose people all agreed to a take-home copy."""
    keep = [all(p in consented for p in people) for people in playlist.people]
    return playlist[keep].reset_index(drop=True) if len(playlist) else playlist


def take_home_summary(store: Store, session_id: str, review: Review | None = None, *,
                      blur_ids: tuple[str, ...] = ()) -> Summary:
    """The summary of an analysed session, after :func:`require_take_home`. With ``blur_ids``
    (people muted in the clips) each moment carries :func:`muting_notes`."""
    review = review or load_review(store, session_id)
    if not review.analysed:
        raise PlaybackError("Analyse the session before making a take-home summary.")
    consented = require_take_home(store, session_id, review.manifest)
    added = load_added(store, session_id)
    playlist = walkthrough_playlist(review, load_decisions(store, session_id), load_walkthrough(store, session_id),
                                    added)
    playlist = take_home_moments(playlist, consented)
    names = review.names
    metrics = review.participants.set_index("participant_id") if len(review.participants) else pd.DataFrame()
    turns = review.events[review.events.kind == "speech_turn"]
    people = []
    for pid, name in names.items():
        row = metrics.loc[pid] if pid in metrics.index else pd.Series(0, index=_METRICS)
        mine = turns[turns.participant_id == pid]
        people.append(Person(name, float(row.talk_share), float(row.talk_s), int(row.interruptions_made),
                             int(row.interruptions_received), tuple(float(x) for x in mine.end_s - mine.start_s)))
    speech = store.read_table(session_id, SPEECH_TABLE)[0] if blur_ids else None
    moments = tuple(Moment(float(m.start_s), float(m.end_s), m.intro, muting_notes(
        speech, names, *clip_span(m.start_s, m.end_s), blur_ids) if blur_ids else "") for m in playlist.itertuples())
    created = datetime.fromisoformat(review.manifest["created_utc"]) if review.manifest.get("created_utc") else None
    day = f"{created.day} {created:%B %Y}" if created else "an earlier day"
    return Summary(day, float(review.manifest.get("duration_s") or 0.0), tuple(people), moments)


def person_sentence(p: Person) -> str:
    """Plain sentences about a person's numbers (no judging words)."""
    turns, made, got = (ev.count_words(len(p.turn_lengths_s), "turn"), ev.count_words(p.interruptions_made, "time"),
                        ev.count_words(p.interruptions_received, "time"))
    return (f"{p.name} spoke for {p.talk_share:.0%} of the talking time, in {turns}. {p.name} started speaking "
            f"while someone else was talking {made}; someone else started while {p.name} was talking {got}.")


# ----- plots (matplotlib, shared by the HTML and the PDF) ----------------------------------------
def _talk_share(ax, summary: Summary, colours, y) -> str:
    shares = [p.talk_share * 100 for p in summary.people]
    ax.barh(y, shares, color=colours)
    for yi, share in zip(y, shares):
        ax.text(share + 1, yi, f"{share:.0f}%", va="center")
    ax.set(xlim=(0, 105), xlabel="share of all talking time (%)")
    return "; ".join(f"{p.name}: {share:.0f}%" for p, share in zip(summary.people, shares))


def _same_time(ax, summary: Summary, colours, y) -> str:
    made = [p.interruptions_made for p in summary.people]
    got = [p.interruptions_received for p in summary.people]
    ax.barh(y - 0.2, made, 0.4, color=colours)
    ax.barh(y + 0.2, got, 0.4, color=colours, alpha=0.45, hatch="//")
    from matplotlib.patches import Patch

    ax.set(xlabel="times")
    ax.xaxis.get_major_locator().set_params(integer=True)
    keys = [Patch(color="#777", label=MADE_WORDS), Patch(color="#777", alpha=0.45, hatch="//", label=RECEIVED_WORDS)]
    ax.legend(handles=keys, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, fontsize=8, ncols=2)
    return "; ".join(f"{p.name}: {MADE_WORDS} {m}×, {RECEIVED_WORDS} {g}×"
                     for p, m, g in zip(summary.people, made, got))


def _turn_lengths(ax, summary: Summary, colours, y) -> str:
    for yi, p, colour in zip(y, summary.people, colours):
        lengths = np.asarray(p.turn_lengths_s)
        jitter = np.linspace(-0.15, 0.15, len(lengths)) if len(lengths) > 1 else np.zeros(len(lengths))
        ax.scatter(lengths, yi + jitter, color=colour, alpha=0.7, s=18)
    ax.set(xlabel="length of each turn (seconds)", xlim=(0, None))
    return "; ".join(f"{p.name}: longest turn {max(p.turn_lengths_s, default=0):.0f} s" for p in summary.people)


PLOTS = (("How the talking was shared", _talk_share), ("Speaking at the same time", _same_time),
         ("How long each turn lasted", _turn_lengths))


def _plot(ax, summary: Summary, draw) -> str:
    """Draw one of :data:`PLOTS` on ``ax`` (a row per person, in session order); its alt text."""
    y = np.arange(len(summary.people))
    alt = draw(ax, summary, [PALETTE[i % len(PALETTE)] for i in range(len(y))], y)
    ax.set(yticks=y, yticklabels=[p.name for p in summary.people])
    ax.invert_yaxis()
    return alt


def _figures(summary: Summary) -> list[tuple[str, str, object]]:
    """``(heading, alt text, Figure)`` of each of :data:`PLOTS`, one figure each (for HTML)."""
    import matplotlib as mpl
    from matplotlib.figure import Figure

    out = []
    with mpl.rc_context(_RC):
        for heading, draw in PLOTS:
            fig = Figure(figsize=(6.5, 0.9 + 0.45 * len(summary.people) + (0.3 if draw is _same_time else 0)),
                         layout="constrained")
            out.append((heading, _plot(fig.add_subplot(), summary, draw), fig))
    return out


def _png_base64(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def moment_line(m: Moment) -> str:
    """``"0:19–0:24  Alex began speaking while Sam was still talking."``"""
    return f"{format_clock(m.start_s)}–{format_clock(m.end_s)}  {m.intro}"


# ----- HTML ------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:46rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.5}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}
img{max-width:100%;height:auto}li{margin:.4rem 0}.when{font-variant-numeric:tabular-nums;color:#555;
margin-right:.6rem}.note{color:#7a4b00;font-size:.9rem}footer{margin-top:3rem;color:#777;font-size:.85rem}"""


def summary_html(summary: Summary) -> str:
    """A single self-contained HTML page (inline CSS, plots as base64 PNG, no external
    reference; a Content-Security-Policy forbids any load). Every name and word is escaped."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{e(summary.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(summary.title)}</h1>",
        f"<p>{e(ev.names_list([p.name for p in summary.people]))} · session length "
        f"{e(format_clock(summary.duration_s))}</p>",
        f"<p>{e(INTRO_WORDS)}</p><ul>",
        *(f"<li>{e(person_sentence(p))}</li>" for p in summary.people), "</ul>",
    ]
    for heading, alt, fig in _figures(summary):
        parts.append(f"<h2>{e(heading)}</h2><img alt='{e(alt)}' src='data:image/png;base64,{_png_base64(fig)}'>")
    parts.append("<h2>Moments we looked at together</h2>")
    if summary.moments:
        parts.append("<ul>")
        for m in summary.moments:
            note = f"<br><span class='note'>{e(m.note)}</span>" if m.note else ""
            parts.append(f"<li><span class='when'>{e(format_clock(m.start_s))}–{e(format_clock(m.end_s))}"
                         f"</span>{e(m.intro)}{note}</li>")
        parts.append("</ul>")
    else:
        parts.append("<p>No moments were chosen for this copy.</p>")
    parts.append("<footer>Made with Playback on this computer. Keep this file somewhere private: it is not "
                 "encrypted.</footer></body></html>")
    return "\n".join(parts)


# ----- PDF -------------------------------------------------------------------------------------
A4_IN = (8.27, 11.69)


def _wrap(text: str, width: int = 85) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False)


def summary_pdf(summary: Summary) -> bytes:
    """The same content as :func:`summary_html` as PDF bytes (matplotlib ``PdfPages``, TrueType
    fonts embedded so the text can be searched and copied): the words and moments (40 lines a
    page), then one page with the three plots."""
    import matplotlib as mpl
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    with mpl.rc_context(_RC), PdfPages(buffer, metadata={
            "Title": "Take-home summary", "Creator": "Playback", "Producer": "Playback"}) as pdf:
        lines = [(summary.title, 16, "bold"),
                 (f"{ev.names_list([p.name for p in summary.people])} · session length "
                  f"{format_clock(summary.duration_s)}", 11, "normal"), ("", 11, "normal")]
        lines += [(t, 11, "normal") for t in _wrap(INTRO_WORDS)] + [("", 11, "normal")]
        for p in summary.people:
            lines += [(t, 11, "normal") for t in _wrap(person_sentence(p))]
        lines += [("", 11, "normal"), ("Moments we looked at together", 13, "bold")]
        for m in summary.moments or [None]:
            if m is None:
                lines.append(("No moments were chosen for this copy.", 11, "normal"))
                continue
            lines += [(t, 11, "normal") for t in _wrap(moment_line(m))]
            lines += [(t, 9, "italic") for t in _wrap(m.note, 100)]
        for start in range(0, len(lines), 40):
            fig = Figure(figsize=A4_IN)
            for i, (text, size, weight) in enumerate(lines[start:start + 40]):
                fig.text(0.08, 0.94 - i * 0.022, text, fontsize=size,
                         fontweight="bold" if weight == "bold" else "normal",
                         fontstyle="italic" if weight == "italic" else "normal")
            pdf.savefig(fig)
        fig = Figure(figsize=A4_IN, layout="constrained")
        for ax, (heading, draw) in zip(fig.subplots(len(PLOTS), 1), PLOTS):
            _plot(ax, summary, draw)
            ax.set_title(heading, loc="left", fontweight="bold")
        pdf.savefig(fig)
    return buffer.getvalue()


def export_takehome(store: Store, session_id: str, fmt: str) -> str | bytes:
    """The take-home summary as ``"html"`` (str) or ``"pdf"`` (bytes), audited as
    ``export`` / ``takehome_<fmt>``; raises :class:`TakeHomeRefused` first where needed."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown take-home format {fmt!r}")
    summary = take_home_summary(store, session_id)
    data = summary_html(summary) if fmt == "html" else summary_pdf(summary)
    store.audit("export", session_id, detail=f"takehome_{fmt}")
    return data


# ----- clips -----------------------------------------------------------------------------------
SPEECH_TABLE = "derived/speakers.parquet"   # start_s, end_s, participant_id: who spoke when


def _spans(speech: pd.DataFrame, pids, start_s: float, end_s: float,
           pad_s: float = 0.0) -> list[tuple[float, float]]:
    """Merged ``(start_s, end_s)`` of the speech of ``pids`` (``None`` in ``pids``: speech not
    attributed to anyone), padded by ``pad_s`` and cut to ``[start_s, end_s]``."""
    pids = set(pids)
    who = speech.participant_id.map(lambda p: (p if isinstance(p, str) else None) in pids)
    raw = sorted((max(start_s, s - pad_s), min(end_s, e + pad_s))
                 for s, e in zip(speech.start_s[who].astype(float), speech.end_s[who].astype(float)))
    merged: list[list[float]] = []
    for s, e in raw:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def _muted(speech: pd.DataFrame, names: dict[str, str], blur_ids, start_s: float, end_s: float):
    """The people muted (in ``names`` order) and the stretches muted: their speech and any
    speech attributed to nobody (it may be theirs), padded by :data:`MUTE_PAD_S`."""
    blur = [p for p in names if p in set(blur_ids)]
    return blur, (_spans(speech, blur + [None], start_s, end_s, MUTE_PAD_S) if blur else [])


def _when(a: float, b: float) -> str:
    return f"around {format_clock(a)}" if format_clock(a) == format_clock(b) else \
        f"from {format_clock(a)} to {format_clock(b)}"


def muting_notes(speech: pd.DataFrame, names: dict[str, str], start_s: float, end_s: float, blur_ids) -> str:
    """Plain words on what muting ``blur_ids`` does to a clip from ``start_s`` to ``end_s`` (s):
    who is muted, and where someone else spoke at the same time and is silenced too."""
    blur, muted = _muted(speech, names, blur_ids, start_s, end_s)
    if not blur:
        return ""
    text = (f"In a clip of this moment, {ev.names_list([names[p] for p in blur])} cannot be seen or heard: "
            "face blurred, voice muted.")
    others = [p for p in names if p not in blur]
    for s, e in muted:
        for a, b in _spans(speech, others, s, e):
            if b - a < NOTED_OVERLAP_S:
                continue
            heard = ev.names_list([names[p] for p in others if _spans(speech, [p], a, b)])
            text += f" {_when(a, b).capitalize()} {heard} spoke at the same time and cannot be heard there either."
    return text + " Muting follows the detected speech, so a word it missed may still be heard."


def clip_span(start_s: float, end_s: float) -> tuple[float, float]:
    """The stretch (s) a moment's clip shows: from :data:`CLIP_LEAD_S` before it to
    :data:`CLIP_TAIL_S` after it."""
    return max(0.0, float(start_s) - CLIP_LEAD_S), float(end_s) + CLIP_TAIL_S


def blur_boxes(faces: pd.DataFrame, blur: list[str]) -> dict[str, pd.DataFrame]:
    """Each of ``blur``'s face boxes over time (rows of the faces table with a box): a face
    turned to a profile or partly hidden is not analysed (``detected`` False) but has its box,
    and is blurred there too."""
    boxed = faces[faces.participant_id.isin(blur)].dropna(subset=["face_x", "face_y", "face_w"])
    return {p: boxed[boxed.participant_id == p].reset_index(drop=True) for p in blur}


def _box(faces: pd.DataFrame, t_s: float, w: int, h: int) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` around a person's face at ``t_s`` (face_x, face_y are the
    centre and face_w the width as fractions of the frame): the nearest detection within
    :data:`FACE_NEAR_S`, else their median box; the whole frame when they were never found."""
    if faces.empty:
        return 0, 0, w, h
    near = faces.iloc[(faces.t_s - t_s).abs().argsort()[:1]]
    row = near.iloc[0] if abs(float(near.t_s.iloc[0]) - t_s) <= FACE_NEAR_S else \
        faces[["face_x", "face_y", "face_w"]].median()
    half_w = row.face_w * w * 0.8            # 1.6 x the landmarks' width
    half_h = half_w * 1.4                    # faces are taller than wide
    cx, cy = row.face_x * w, row.face_y * h
    return (max(0, int(cx - half_w)), max(0, int(cy - half_h)), min(w, int(cx + half_w)), min(h, int(cy + half_h)))


def _pixelate(rgb: np.ndarray, box: tuple[int, int, int, int], blocks: int = 5) -> None:
    """Replace ``box`` of ``rgb`` (in place) by a ``blocks``-wide mosaic of its mean colours."""
    x0, y0, x1, y1 = box
    region = rgb[y0:y1, x0:x1]
    if region.size == 0:
        return
    step = max(1, math.ceil((x1 - x0) / blocks))
    for y in range(0, region.shape[0], step):
        for x in range(0, region.shape[1], step):
            cell = region[y:y + step, x:x + step]
            cell[...] = cell.reshape(-1, 3).mean(axis=0).astype(np.uint8)


@dataclass(frozen=True)
class Clip:
    """An MP4 clip (``mp4`` bytes, H.264 + AAC) from ``start_s`` to ``end_s`` (s) and the plain
    ``note`` on muting (empty when nobody is muted)."""

    mp4: bytes
    start_s: float
    end_s: float
    note: str


def clip(store: Store, session_id: str, start_s: float, end_s: float, blur_ids=(), *, take_home: bool = True) -> Clip:
    """A short clip of the session from ``start_s`` to ``end_s`` (s, at most :data:`MAX_CLIP_S`),
    decoded from the encrypted recording chunk by chunk and encoded in memory (no plaintext
    file). People in ``blur_ids``, and for a ``take_home`` copy always those without take-home
    consent, have their face pixelated (``derived/faces.parquet``) and the audio muted during
    their speech (padded by :data:`MUTE_PAD_S`). Audited as ``export`` / ``takehome_clip``, or
    ``walkthrough`` / ``clip`` for the walkthrough's screen (``take_home`` False)."""
    manifest = store.manifest(session_id)
    names = {p["id"]: p["name"] for p in manifest["participants"]}
    duration = float(manifest.get("duration_s") or 0.0)
    start_s, end_s = max(0.0, float(start_s)), min(duration, float(end_s))
    if not 0 < end_s - start_s <= MAX_CLIP_S:
        raise PlaybackError(f"A clip needs an end after its start and at most {MAX_CLIP_S:.0f} s.")
    video_rel = manifest["media"].get("video")
    if not video_rel:
        raise PlaybackError("This session has no video to make a clip from.")
    consented = take_home_consented(store, session_id) if take_home else set(names)
    speech, _ = store.read_table(session_id, SPEECH_TABLE)
    blur, muted = _muted(speech, names, [p for p in names if p in set(blur_ids) or p not in consented],
                         start_s, end_s)
    faces, _ = store.read_table(session_id, "derived/faces.parquet")
    by_person = blur_boxes(faces, blur)
    origin = float(manifest.get("time_origin_s") or 0.0)

    audio, rate = None, 0
    if manifest["media"].get("audio"):              # media/audio.wav: session time 0 is its sample 0
        with store.open_media(session_id, manifest["media"]["audio"]) as wav:
            rate = sf.info(wav).samplerate
            wav.seek(0)
            audio = sf.read(wav, start=int(start_s * rate), stop=int(end_s * rate), dtype="float32",
                            always_2d=True)[0].mean(axis=1)
        for s, e in muted:
            audio[int((s - start_s) * rate):int((e - start_s) * rate)] = 0.0
    try:
        mp4 = _encode(store, session_id, video_rel, start_s, end_s, origin, blur, by_person, audio, rate)
    except av.error.FFmpegError as exc:
        raise BadMediaError(f"The clip could not be made from the recording ({exc}).") from None
    if take_home:
        store.audit("export", session_id, detail="takehome_clip")
    else:
        store.audit("walkthrough", session_id, detail="clip")
    return Clip(mp4, start_s, end_s, muting_notes(speech, names, start_s, end_s, blur))


def _encode(store: Store, session_id: str, video_rel: str, start_s: float, end_s: float, origin: float,
            blur: list[str], by_person: dict, audio: np.ndarray | None, rate: int) -> bytes:
    """MP4 bytes (H.264, and AAC when ``audio``) of the video from ``start_s`` to ``end_s`` (s,
    session time; ``origin`` s is the session's zero on the video's clock) with the faces of
    ``blur`` pixelated, and ``audio`` (mono float32 at ``rate`` Hz, starting at ``start_s``)."""
    out_buffer = io.BytesIO()
    with store.open_media(session_id, video_rel) as media, av.open(media) as source, \
            av.open(out_buffer, "w", format="mp4") as out:
        vin = source.streams.video[0]
        width, height = vin.codec_context.width // 2 * 2, vin.codec_context.height // 2 * 2
        vout = out.add_stream("libx264", rate=Fraction(1000))
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.codec_context.time_base = Fraction(1, 1000)          # frame times in ms: variable rate kept
        vout.options = {"crf": "23", "preset": "veryfast"}
        aout = out.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        source.seek(int((start_s + origin) / vin.time_base), stream=vin, backward=True)
        last_ms = -1
        for frame in source.decode(vin):
            if frame.pts is None:
                continue
            t = float(frame.pts * vin.time_base) - origin
            if t < start_s - 1e-3:
                continue
            if t >= end_s:
                break
            rgb = frame.to_ndarray(format="rgb24")[:height, :width].copy()
            for p in blur:
                _pixelate(rgb, _box(by_person[p], t, width, height))
            last_ms = max(int(round((t - start_s) * 1000)), last_ms + 1)
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts, picture.time_base = last_ms, Fraction(1, 1000)
            out.mux(vout.encode(picture))
        out.mux(vout.encode(None))
        if aout is not None:
            size = aout.codec_context.frame_size or 1024
            for i in range(0, len(audio), size):
                chunk = np.zeros((1, size), np.float32)
                chunk[0, :len(audio[i:i + size])] = audio[i:i + size]
                sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                sound.sample_rate, sound.pts, sound.time_base = rate, i, Fraction(1, rate)
                out.mux(aout.encode(sound))
            out.mux(aout.encode(None))
    return out_buffer.getvalue()


__all__ = ["TakeHomeRefused", "Summary", "Person", "Moment", "Clip", "take_home_summary", "require_take_home",
           "take_home_consented", "take_home_moments", "clip_span", "summary_html", "summary_pdf", "export_takehome",
           "clip", "muting_notes"]
