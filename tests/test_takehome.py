"""The clients' take-home summary (analysis/takehome.py): refused unless everyone agreed to a
take-home copy; HTML and PDF hold the plots and the picked moments' words, never notes,
dismissed or vetoed moments, and no external reference; clips blur and mute chosen people."""
from __future__ import annotations

import base64
import html
import io
import re
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import TEST_PASSPHRASE

NOTE = "Private: ask about the weekend."


def consent(store, session_id, **take_home):
    """Write consent records: every scope for everyone, take_home_copy as given (default True)."""
    from capture.consent import SCOPES, make_record, write_consent

    records = [make_record(p["id"], {s: s != "take_home_copy" or take_home.get(p["id"], True) for s in SCOPES},
                           method="test") for p in store.manifest(session_id)["participants"]]
    write_consent(store, session_id, records)


@pytest.fixture
def prepared(sample_copy):
    """Everyone agreed; Sam is renamed ``<b>Sam</b>``; four moments picked: an interruption by
    Alex (with a private note), Sam's raised voice, a smile (dismissed) and Sam's interruption
    of Alex (vetoed by Alex)."""
    from analysis.review import load_review, pick_moment, save_decision, veto_moment

    store, session_id = sample_copy
    consent(store, session_id)
    manifest = store.manifest(session_id)
    manifest["participants"][1]["name"] = "<b>Sam</b>"
    store.write_json(session_id, "manifest.json", manifest)
    moments = load_review(store, session_id).moments()
    interruptions = moments[moments.kind == "interruption"]
    kept = interruptions[interruptions.participant_id == "p1"].iloc[0]
    vetoed = interruptions[interruptions.participant_id == "p2"].iloc[0]
    raised = moments[(moments.kind == "raised_voice") & (moments.participant_id == "p2")].iloc[0]
    dismissed = moments[moments.expression == "smile"].iloc[0]
    for m in (kept, raised, dismissed, vetoed):
        pick_moment(store, session_id, m.event_id)
    save_decision(store, session_id, kept.event_id, note=NOTE)
    save_decision(store, session_id, dismissed.event_id, decision="dismissed")
    veto_moment(store, session_id, vetoed.event_id, "p1")
    return store, session_id, {"kept": kept, "raised": raised, "dismissed": dismissed, "vetoed": vetoed}


def pdf_text(data: bytes) -> str:
    """The text a PDF draws: each ``BT ... ET`` block of every Flate content stream, its
    literal strings (escapes undone, 2-byte codes as matplotlib's Type 42 fonts write them)
    joined, blocks one per line. Enough for matplotlib's PDFs; not a general extractor."""
    escapes = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}
    lines = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            continue
        for block in re.findall(rb"^BT$(.*?)^ET$", content, re.S | re.M):
            codes = b""
            for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)", block, re.S):
                codes += re.sub(rb"\\([0-7]{1,3}|.)", lambda m: bytes([int(m[1], 8)]) if m[1].isdigit()
                                else escapes.get(m[1], m[1]), literal)
            lines.append(codes.decode("utf-16-be", errors="replace"))
    return "\n".join(lines)


def words(text: str) -> str:
    return " ".join(text.split())


def test_refused_naming_who_has_not_agreed(sample_copy):
    from analysis.takehome import TakeHomeRefused, export_takehome, take_home_summary
    from capture.errors import PlaybackError

    store, session_id = sample_copy
    with pytest.raises(TakeHomeRefused, match="Alex and Sam have not agreed"):   # import attests no take-home
        take_home_summary(store, session_id)
    consent(store, session_id, p2=False)
    with pytest.raises(PlaybackError) as refused:
        export_takehome(store, session_id, "html")
    message = str(refused.value)
    assert "Sam has not agreed" in message and "Alex" not in message and "\n" not in message
    assert ("export", "takehome_html") not in [(e["action"], e["detail"]) for e in store.audit_log.entries()]


def test_a_moment_showing_someone_without_take_home_consent_is_left_out():
    from analysis.takehome import take_home_moments

    playlist = pd.DataFrame({"moment_id": ["a", "b", "c"], "start_s": [1.0, 2.0, 3.0], "end_s": [2.0, 3.0, 4.0],
                             "people": [["p1"], ["p1", "p3"], []], "intro": ["x", "y", "z"]})
    assert list(take_home_moments(playlist, {"p1", "p2"}).moment_id) == ["a", "c"]


def test_summary_holds_the_picked_moments_only(prepared):
    from analysis.review import format_clock, load_review
    from analysis.takehome import take_home_summary

    store, session_id, picked = prepared
    summary = take_home_summary(store, session_id)
    assert [(m.start_s, m.intro) for m in summary.moments] == [
        (float(picked["kept"].start_s), "Alex began speaking while <b>Sam</b> was still talking."),
        (float(picked["raised"].start_s), "<b>Sam</b>'s voice grew louder and higher here.")]
    people = load_review(store, session_id).participants
    assert [(p.name, p.talk_share, p.interruptions_made, p.interruptions_received) for p in summary.people] == \
        list(zip(["Alex", "<b>Sam</b>"], people.talk_share, people.interruptions_made, people.interruptions_received))
    events = load_review(store, session_id).events
    assert sum(p.interruptions_made for p in summary.people) == (events.kind == "interruption").sum()
    assert sum(len(p.turn_lengths_s) for p in summary.people) == (events.kind == "speech_turn").sum()
    assert format_clock(summary.duration_s) == "1:24"


def test_html_is_self_contained_escaped_and_free_of_notes(prepared):
    from analysis.review import format_clock
    from analysis.takehome import summary_html, take_home_summary

    store, session_id, picked = prepared
    summary = take_home_summary(store, session_id)
    page = summary_html(summary)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<b>Sam</b>" not in page and "&lt;b&gt;Sam&lt;/b&gt;" in page
    assert html.escape("Alex began speaking while <b>Sam</b> was still talking.") in page
    assert f"{format_clock(picked['kept'].start_s)}–{format_clock(picked['kept'].end_s)}" in page
    assert html.escape("Sam began speaking while Alex was still talking.") not in page.replace("&lt;b&gt;", "") \
        .replace("&lt;/b&gt;", "")                                             # vetoed
    assert "smiled" not in page and format_clock(picked["dismissed"].start_s) not in page   # dismissed
    assert NOTE not in page and "weekend" not in page and "confidence" not in page.lower()
    assert session_id not in page
    for p in summary.people:
        assert f"{p.talk_share:.0%} of the talking time" in page
    outside = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", page)                 # the images' own bytes
    assert not re.search(r"https?:|//[a-z]|url\(|@import|<script|<link|<iframe|<object|<embed", outside, re.I)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 3 and len(re.findall(r"src=", page)) == 3
    sizes = [Image.open(io.BytesIO(base64.b64decode(b))).size for b in images]
    assert all(w > 300 and h > 100 for w, h in sizes)


def test_pdf_is_valid_and_holds_the_same_words(prepared):
    from analysis.takehome import person_sentence, summary_pdf, take_home_summary

    store, session_id, _ = prepared
    summary = take_home_summary(store, session_id)
    data = summary_pdf(summary)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 2        # words, then the three plots
    text = words(pdf_text(data))
    assert summary.title in text
    for m in summary.moments:
        assert m.intro in text                                       # names as typed: PDF text is not markup
    assert words(person_sentence(summary.people[0])) in text
    assert "Sam began speaking while Alex" not in text and "smiled" not in text and NOTE not in text
    assert "How the talking was shared" in text and "share of all talking time (%)" in text


def test_export_is_audited_without_names(prepared):
    from analysis.takehome import export_takehome

    store, session_id, _ = prepared
    assert export_takehome(store, session_id, "pdf").startswith(b"%PDF")
    last = store.audit_log.entries()[-1]
    assert (last["action"], last["session_id"], last["detail"]) == ("export", session_id, "takehome_pdf")
    assert "Sam" not in str(last) and "Alex" not in str(last)
    check = store.verify_audit()                               # raises if the chain does not verify
    assert check.anchored and check.authenticated_to == check.entries


def _decode(mp4: bytes):
    """``(video frames as {t_s: rgb}, audio float32, audio rate)`` of a clip."""
    import av

    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        frames = {round(float(f.pts * stream.time_base), 2): f.to_ndarray(format="rgb24")
                  for f in container.decode(stream)}
    with av.open(io.BytesIO(mp4)) as container:
        rate = container.streams.audio[0].rate
        audio = np.concatenate([f.to_ndarray() for f in container.decode(container.streams.audio[0])], axis=1)[0]
    return frames, audio, rate


@pytest.mark.slow
def test_clip_blurs_and_mutes_the_chosen_person(prepared):
    """A clip from Sam's turn into Alex's: while Sam speaks the sound is silent, once only Alex
    speaks it is not; Sam's face differs from an unblurred clip, Alex's does not; the note
    says Alex is silenced too while both spoke."""
    from analysis.review import format_clock
    from analysis.takehome import MUTE_PAD_S, clip

    store, session_id, picked = prepared
    speech, _ = store.read_table(session_id, "derived/speakers.parquet")
    faces, _ = store.read_table(session_id, "derived/faces.parquet")
    alex = speech[speech.participant_id == "p1"]
    sam = next(t for t in speech[speech.participant_id == "p2"].itertuples()   # a turn Alex spoke into
               if ((alex.start_s > t.start_s + 1.5) & (alex.end_s < t.end_s)).any())
    alex_into = alex[(alex.start_s > sam.start_s + 1.5) & (alex.end_s < sam.end_s)].iloc[0]
    alex_after = speech[(speech.participant_id == "p1") & (speech.start_s > sam.end_s)].iloc[0]
    start, end = float(sam.start_s) + 1.0, float(alex_after.start_s) + 2.5
    blurred = clip(store, session_id, start, end, ["p2"])
    plain = clip(store, session_id, start, end, [])
    assert ("export", "takehome_clip") in [(e["action"], e["detail"]) for e in store.audit_log.entries()]
    frames, audio, rate = _decode(blurred.mp4)
    assert abs(max(frames) - (end - start)) < 0.2
    silent_until = float(sam.end_s) + MUTE_PAD_S - start
    rms = lambda a, b: float(np.sqrt(np.mean(audio[int(a * rate):int(b * rate)] ** 2)))  # noqa: E731
    assert rms(0.1, silent_until - 0.1) < 1e-3
    assert rms(float(alex_after.start_s) - start + 0.3, end - start - 0.1) > 0.01
    plain_frames, plain_audio, _ = _decode(plain.mp4)
    assert rms(0.1, silent_until - 0.1) < 1e-3 < float(np.sqrt(np.mean(plain_audio[:int(rate)] ** 2)))
    t = sorted(frames)[len(frames) // 2]
    h, w, _ = frames[t].shape

    def face_region(pid):
        row = faces[(faces.participant_id == pid) & faces.detected.astype(bool)]
        row = row.iloc[(row.t_s - (start + t)).abs().argsort()[:1]].iloc[0]
        x, y, half = int(row.face_x * w), int(row.face_y * h), int(row.face_w * w * 0.4)
        return slice(y - half, y + half), slice(x - half, x + half)

    diff = np.abs(frames[t].astype(int) - plain_frames[t].astype(int))
    assert diff[face_region("p2")].mean() > 15 > 6 > diff[face_region("p1")].mean()   # ~27 and ~3 (encoding noise)
    assert "<b>Sam</b> cannot be seen or heard" in blurred.note
    assert f"From {format_clock(alex_into.start_s)} to {format_clock(alex_into.end_s)} Alex spoke at the same time" \
        in blurred.note
    assert plain.note == ""


@pytest.mark.slow
def test_dashboard_panel_refuses_then_offers_downloads_and_a_clip(prepared):
    from streamlit.testing.v1 import AppTest

    store, session_id, _ = prepared

    def page(root, session_id, passphrase):
        from analysis.dashboard.takehome import takehome_panel
        from analysis.review import load_review
        from capture.store import Store

        store = Store(root).unlock(passphrase)
        takehome_panel(store, load_review(store, session_id))

    consent(store, session_id, p1=False)
    at = AppTest.from_function(page, args=(store.root, session_id, TEST_PASSPHRASE), default_timeout=60).run()
    assert not at.exception, at.exception
    assert [e.label for e in at.expander] == ["Take-home summary for the clients"]
    (info,) = at.info
    assert "Alex has not agreed" in info.value and not at.get("download_button")
    assert [c.key for c in at.checkbox] == ["takehome_agree_p1"] and not at.checkbox[0].value   # only Alex, unticked
    at.checkbox(key="takehome_agree_p1").check()                    # Alex agrees now, in the room
    at.button(key=f"FormSubmitter:takehome_consent_{session_id}-Record their agreement").click().run()
    assert not at.exception, at.exception
    from capture.consent import read_consent

    assert read_consent(store, session_id)["p1"].method == "changed later"
    assert not at.info and not at.get("download_button")
    at.text_input(key="takehome_pw").input(TEST_PASSPHRASE)
    at.button(key="FormSubmitter:takehome_reauth_" + session_id + "-Confirm take-home copy").click().run()
    assert not at.exception, at.exception
    labels = [str(b.proto.label) for b in at.get("download_button")]
    assert labels == ["Download the summary (HTML)", "Download the summary (PDF)"]
    at.multiselect(key="takehome_blur").set_value(["p2"]).run()
    at.button(key="takehome_clip_make").click().run()
    assert not at.exception, at.exception
    assert [str(b.proto.label) for b in at.get("download_button")][-1] == "Download the clip (MP4)"
    assert any("cannot be seen or heard" in c.value for c in at.caption)


def test_a_face_turned_away_is_still_blurred_where_its_box_is_known():
    """A profile view is not analysed (detected False, no features) but keeps its box: the clip
    blurs it there, not at the person's usual place."""
    import pandas as pd

    from analysis.takehome import _box, blur_boxes

    faces = pd.DataFrame({"participant_id": ["p2"] * 3, "t_s": [0.0, 0.1, 0.2], "detected": [True, False, False],
                          "face_x": [0.75, 0.55, np.nan], "face_y": 0.5, "face_w": 0.1})
    boxes = blur_boxes(faces, ["p2"])["p2"]
    assert list(boxes.t_s) == [0.0, 0.1]                          # the turned face's box is kept, no-box rows are not
    x0, _, x1, _ = _box(boxes, 0.1, 1000, 500)
    assert x0 < 550 < x1                                          # blurred where the turned face was
