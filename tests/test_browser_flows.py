"""The review room's flows in a real browser (Playwright + Debian's headless Chromium against
``playback dashboard`` started for real): adding a missed moment, the walkthrough with a
client's veto and the passphrase to leave, the Sessions page from a new case to an analysed
session, and a full-page screenshot of every page (tests/artifacts/ and /tmp/shots/).

The sample is used through a copy of its store (and of its audit anchor), so nothing written
here reaches the shared ``sample_session`` that other tests count and read.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from conftest import ARTIFACTS, TEST_PASSPHRASE, dashboard_server, launch_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = Path("/tmp/shots")
WIDTH = 1400
NOTE = "Private: ask Alex about the weekend (browser test)."
FIRST_INTRO = "Alex began speaking while Sam was still talking."      # the interruption at 0:19
SECOND_INTRO = "Sam's voice grew louder and higher here."             # the raised voice at 0:40


# ----- fixtures and helpers ----------------------------------------------------------------------
def server_env(store) -> dict:
    """The dashboard's environment. Streamlit's source watcher is off: on a busy machine it logs
    thousands of "Inotify queue overflowed" lines, and ``dashboard_server`` pipes the server's
    output without reading it, so a full pipe blocks the app's next print (a traceback) and the
    page then "runs" forever."""
    return {**os.environ, "PLAYBACK_STORE": str(store.root), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}


def shot(page, name: str) -> Path:
    """A full-page screenshot, ``WIDTH`` wide: the viewport grows to the height of Streamlit's
    scrolling main area (a plain full-page screenshot stops at the viewport), then goes back.
    Saved as ``flow_<name>`` in tests/artifacts/ (git-ignored) and copied to /tmp/shots/."""
    settle(page)
    before = page.viewport_size
    height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                           " return m ? m.scrollHeight : document.body.scrollHeight; }")
    page.set_viewport_size({"width": WIDTH, "height": max(int(height), before["height"])})
    page.wait_for_timeout(1500)                # charts redraw at the new size
    settle(page)
    path = ARTIFACTS / f"flow_{name}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    page.set_viewport_size(before)
    return path


def settle(page, timeout_s: float = 90) -> None:
    """Wait until the script run (and any fragment run) has finished: Streamlit shows its
    running indicator (``stStatusWidget``) while one goes."""
    deadline = time.time() + timeout_s
    quiet = 0
    while quiet < 3:                              # three quiet looks in a row, 0.5 s apart
        running = page.get_by_test_id("stStatusWidget").filter(has_text=re.compile("Running|Stop")).count()
        quiet = 0 if running else quiet + 1
        if time.time() > deadline:
            page.screenshot(path=str(ARTIFACTS / "flow_still_running.png"), full_page=True)
            raise AssertionError(f"the page kept running for {timeout_s:.0f} s (screenshot "
                                 f"{ARTIFACTS / 'flow_still_running.png'})")
        page.wait_for_timeout(500)


def view_shot(page, name: str) -> Path:
    """A screenshot of what the viewport shows (an open popover), saved like :func:`shot`."""
    settle(page)
    path = ARTIFACTS / f"flow_{name}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def open_and_unlock(page, port: int, *, screenshot: str | None = None) -> None:
    page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
    page.get_by_label("Passphrase").wait_for(timeout=60_000)
    if screenshot:
        shot(page, screenshot)
    page.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    page.get_by_role("button", name="Lock now").wait_for(timeout=60_000)


def wait_for_review(page, session_id: str) -> None:
    page.get_by_text(f"Session {session_id}").wait_for(timeout=60_000)
    page.get_by_text("Who talked, who interrupted").wait_for(timeout=60_000)
    page.locator("video").wait_for(timeout=60_000)
    page.wait_for_timeout(2000)                 # let the charts draw


def moment_row(page, moment_id: str):
    """The moments list's row of ``moment_id`` (the innermost columns block holding its ▶)."""
    return page.get_by_test_id("stHorizontalBlock").filter(has=page.locator(f"[class*='st-key-jump-{moment_id}-at-']")).last


def choose(page, widget, option: str, *, chosen=None) -> None:
    """Pick ``option`` in a Streamlit selectbox or multiselect (``widget``: its container), trying
    again when the opening list is redrawn under the click; ``chosen()`` says it took."""
    from playwright.sync_api import Error

    for _ in range(4):
        widget.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=5_000)
            page.wait_for_timeout(700)          # the list opens with an animation
            choice.click(timeout=5_000)
        except Error:
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
            continue
        page.wait_for_timeout(300)
        if chosen is None or chosen():
            return
    raise AssertionError(f"could not choose {option!r}")


def sidebar_page(page, name: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(name, exact=True).first.click()


def video_time(page) -> float:
    page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 1; }",
                           timeout=30_000)
    return page.locator("video").evaluate("v => v.currentTime")


def known_moments(store, session_id: str):
    """The sample's first interruption of Sam by Alex and Sam's raised voice (their ids)."""
    from analysis.review import load_review

    moments = load_review(store, session_id).moments()
    interruption = moments[(moments.kind == "interruption") & (moments.participant_id == "p1")
                           & (moments.target_participant_id == "p2")].iloc[0]
    raised = moments[(moments.kind == "raised_voice") & (moments.participant_id == "p2")].iloc[0]
    assert (round(interruption.start_s), round(raised.start_s)) == (19, 41)       # ▶ 0:19 and ▶ 0:40
    return interruption.event_id, raised.event_id, len(moments)


# ----- a. a moment the tool missed ---------------------------------------------------------------
def test_therapist_adds_a_missed_moment_in_the_browser(sample_copy):
    from playwright.sync_api import sync_playwright

    from analysis.review import load_added

    store, session_id = sample_copy
    _, _, count = known_moments(store, session_id)
    with dashboard_server(store.root, env=server_env(store)) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1400})
        open_and_unlock(page, port)
        wait_for_review(page, session_id)
        page.get_by_text(f"Moments ({count})").wait_for()
        assert "added by you" not in main_text(page)
        page.get_by_role("button", name="+ Add a moment the tool missed").click()
        form = page.get_by_test_id("stPopoverBody")
        form.get_by_role("textbox", name="From (m:ss)").fill("0:12")
        form.get_by_role("textbox", name="To (m:ss)").fill("0:15")
        choose(page, form.get_by_test_id("stSelectbox"), "Raised voice")
        choose(page, form.get_by_test_id("stMultiSelect"), "Sam")
        page.keyboard.press("Escape")             # close the multiselect's list, not the popover
        assert form.is_visible()
        view_shot(page, "review_add_moment_form.png")
        form.get_by_role("button", name="Add moment").click()
        page.get_by_text(f"Moments ({count + 1})").wait_for(timeout=30_000)
        listed = page.get_by_text("added by you")
        listed.wait_for(timeout=30_000)
        assert listed.inner_text() == "Raised voice · added by you — You marked this moment (Sam)."
        page.get_by_text("Added: raised voice, 0:12–0:15, showing Sam.", exact=False).wait_for(timeout=30_000)
        added = load_added(store, session_id)
        assert [(a["start_s"], a["end_s"], a["kind"], a["participant_ids"]) for a in added] == \
            [(12.0, 15.0, "raised_voice", ["p2"])]
        # its ▶ plays the video from where it was marked
        page.keyboard.press("Escape")
        page.get_by_role("button", name="▶ 0:12", exact=True).click()
        page.get_by_text("Playing from 12.0 s").wait_for(timeout=30_000)
        page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 12) < 1.5",
                               timeout=30_000)
        browser.close()


# ----- b. the walkthrough with the clients --------------------------------------------------------
def test_walkthrough_with_a_veto_no_notes_and_the_passphrase_to_leave(sample_copy):
    from playwright.sync_api import sync_playwright

    from analysis.review import load_decisions, load_walkthrough

    store, session_id = sample_copy
    first, second, _ = known_moments(store, session_id)
    audited_before = len(store.audit_log.entries())        # the copied log holds other tests' entries
    with dashboard_server(store.root, env=server_env(store)) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1400})
        open_and_unlock(page, port)
        wait_for_review(page, session_id)
        # a private note on the first moment
        moment_row(page, first).get_by_role("button", name="Note").click()
        note = page.get_by_test_id("stPopoverBody")
        note.get_by_label("Your note").fill(NOTE)
        note.get_by_role("button", name="Save note").click()
        deadline = time.time() + 30
        while load_decisions(store, session_id).get(first, {}).get("note") != NOTE:
            assert time.time() < deadline, "the note was not saved"
            time.sleep(0.5)
        page.keyboard.press("Escape")
        # both moments for the walkthrough
        assert not page.get_by_role("button", name=re.compile("Start the walkthrough")).count()
        for moment_id in (first, second):
            box = moment_row(page, moment_id).get_by_text("For the walkthrough")
            box.scroll_into_view_if_needed()
            box.click()
            deadline = time.time() + 30
            while moment_id not in load_walkthrough(store, session_id)["picked"]:
                assert time.time() < deadline, f"{moment_id} was not picked"
                time.sleep(0.5)
            page.wait_for_timeout(1000)
        assert load_walkthrough(store, session_id) == {"picked": [first, second], "vetoed": []}
        page.get_by_text("Show face boxes").click()                            # the therapist's check of faces
        page.locator("canvas[data-testid='playbackFaceBoxes']").wait_for(state="attached", timeout=30_000)
        start = page.get_by_role("button", name="▶ Start the walkthrough with clients (2 moments)")
        start.click()

        # the clients' screen
        page.get_by_text("Looking back together").wait_for(timeout=30_000)
        page.get_by_text("Moment 1 of 2").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        text = main_text(page)
        assert FIRST_INTRO in text and "anyone shown here can say no" in text
        assert NOTE not in page.content() and "confidence" not in text.lower()
        assert session_id not in page.content()
        assert page.get_by_role("radiogroup").count() == 0                   # no page or session choice
        assert page.get_by_role("button", name="Lock now").count() == 0      # no sidebar, no menu
        assert not page.get_by_test_id("stSidebar").is_visible() and not page.get_by_test_id("stMainMenu").is_visible()
        assert page.locator("video").count() == 0                            # nothing plays before the veto
        shot(page, "walkthrough_before_watch.png")
        page.get_by_role("button", name="Alex: skip this one").click()       # Alex says no to the first
        page.get_by_text("Moment 1 of 1").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        text = main_text(page)
        assert SECOND_INTRO in text and FIRST_INTRO not in text
        assert page.get_by_role("button", name="Alex: skip this one").count() == 0    # Sam's moment only
        assert load_walkthrough(store, session_id) == {"picked": [first, second], "vetoed": [first]}
        vetoes = [e for e in store.audit_log.entries()[audited_before:] if e["action"] == "veto"]
        assert [e["detail"] for e in vetoes] == [f"{first}:p1"]                       # ids only
        assert page.get_by_role("button", name="← Previous").is_disabled()
        assert page.get_by_role("button", name="Next →").is_disabled()
        page.get_by_role("button", name="Watch").click()
        page.locator("video").wait_for(timeout=60_000)
        page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 1; }",
                               timeout=60_000)
        # the player holds the moment only (a second before to two after it), never the recording
        duration = page.locator("video").evaluate("v => v.duration")
        from analysis.review import load_review

        moment = load_review(store, session_id).moments().set_index("event_id").loc[second]
        assert abs(duration - (moment.end_s - moment.start_s + 3.0)) < 1.0, duration
        page.wait_for_timeout(1000)
        text = main_text(page)
        assert FIRST_INTRO not in text and NOTE not in page.content() and "confidence" not in text.lower()
        assert page.locator("canvas[data-testid='playbackFaceBoxes']").count() == 0     # no names over the clip
        shot(page, "walkthrough_watching.png")

        # leaving: a wrong passphrase keeps the clients' screen, the right one returns to Review
        page.get_by_text("For the therapist: leave the walkthrough").click()
        page.get_by_label("Passphrase").fill("not the passphrase")
        page.get_by_role("button", name="Leave").click()
        page.get_by_text("That passphrase does not open").wait_for(timeout=30_000)
        assert "Looking back together" in main_text(page) and str(store.root) not in main_text(page)
        assert page.get_by_role("radiogroup").count() == 0
        shot(page, "walkthrough_wrong_passphrase.png")
        page.get_by_label("Passphrase").fill(TEST_PASSPHRASE)
        page.get_by_role("button", name="Leave").click()
        wait_for_review(page, session_id)
        assert "Looking back together" not in main_text(page)

        # the vetoed moment stays out of a second walkthrough
        page.get_by_role("button", name="▶ Start the walkthrough with clients (2 moments)").click()
        page.get_by_text("Moment 1 of 1").wait_for(timeout=30_000)
        assert FIRST_INTRO not in main_text(page) and SECOND_INTRO in main_text(page)
        browser.close()


# ----- c. the Sessions page: a case, an import, an analysis in the background ---------------------
def test_sessions_page_from_a_new_case_to_an_analysed_session(tmp_path):
    from playwright.sync_api import sync_playwright

    from analysis.jobs import job_status
    from capture.store import Store
    from media_factory import make_media

    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    clip = make_media(tmp_path / "clip.mp4", seconds=6.0, size=(320, 240))
    with dashboard_server(store.root, env=server_env(store)) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1400})
        open_and_unlock(page, port)
        sidebar_page(page, "Sessions")
        page.get_by_text("Cases and sessions").wait_for(timeout=30_000)
        page.get_by_text("No cases or sessions yet.").wait_for(timeout=30_000)

        page.get_by_text("+ New case").click()
        page.get_by_label("Name (how you know the couple or group)").fill("Alex & Sam")
        page.get_by_label("People, left to right as they usually sit").fill("Alex, Sam")
        page.get_by_role("button", name="Make case").click()
        page.get_by_text("Alex, Sam · 0 session(s)").wait_for(timeout=30_000)
        [case] = store.cases.all()
        assert (case.name, list(case.people)) == ("Alex & Sam", ["Alex", "Sam"])

        page.get_by_text("+ Import a recording").click()
        page.get_by_label("File on this computer (video or audio)").fill(str(clip))
        case_box = page.get_by_test_id("stSelectbox").filter(has_text="Case")
        choose(page, case_box, "Alex & Sam", chosen=lambda: case_box.locator("input").input_value() == "Alex & Sam")
        page.get_by_role("button", name="Import").click()          # not ticked: refused
        page.get_by_text("tick the box to say they did").wait_for(timeout=30_000)
        assert store.list_sessions() == []
        page.get_by_text("Everyone in the recording agreed to it being recorded and analysed").click()
        page.get_by_role("button", name="Import").click()
        imported = page.get_by_text(re.compile(r"Imported as session \S+\."))
        imported.wait_for(timeout=60_000)
        session_id = re.search(r"session (\S+)\.", imported.inner_text())[1]
        [row] = store.list_sessions()
        assert (row.session_id, row.case_id) == (session_id, case.case_id)
        page.get_by_text("Alex, Sam · 1 session(s)").wait_for(timeout=30_000)

        started = time.time()
        page.get_by_role("button", name="Analyse", exact=True).click()
        seen_progress, responsive = [], False
        while True:
            text = main_text(page)
            progress = re.findall(r"Analysing: \w* ?\(\d+%\)", text)
            seen_progress += [p_ for p_ in progress if p_ not in seen_progress]
            if progress and not responsive:
                # the page still answers while the analysis runs: the trends toggle reruns it
                page.get_by_text("Trends across sessions").click()
                page.get_by_text("No analysed sessions yet.").wait_for(timeout=15_000)
                responsive = True
                page.get_by_text("Trends across sessions").click()
            if "analysed ✓" in text:
                break
            assert time.time() - started < 180, f"not analysed after 3 minutes: {text[-600:]}"
            page.wait_for_timeout(500)
        took = time.time() - started
        print(f"analysis seen done after {took:.0f} s; progress shown: {seen_progress}")
        assert seen_progress and responsive
        assert job_status(store.root, session_id)["state"] == "done"
        assert store.exists(session_id, "derived/events.parquet")

        page.get_by_text("Trends across sessions").click()
        page.get_by_text("One analysed session so far").wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        shot(page, "sessions_new_case_analysed.png")
        page.get_by_role("button", name="Open review").click()
        page.get_by_text(f"Session {session_id}").wait_for(timeout=60_000)
        assert page.get_by_test_id("stSidebar").get_by_role("radio", name="Review").is_checked()
        browser.close()


def test_review_page_of_a_session_with_a_single_turn_is_drawn_whole(tmp_path):
    """A 6 s clip of one voice: one speech turn (Alex), Sam silent. The Review page must still
    show everything below the plots (thresholds, agreement, take-home, export and delete)."""
    from playwright.sync_api import sync_playwright

    from analysis.pipeline import analyze
    from capture.ingest import import_media
    from capture.store import Store
    from media_factory import make_media

    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    session_id = import_media(store, make_media(tmp_path / "clip.mp4", seconds=6.0, size=(320, 240)), "Alex,Sam")
    analyze(store, session_id)
    with dashboard_server(store.root, env=server_env(store)) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1400})
        open_and_unlock(page, port)
        page.get_by_text("Who talked, who interrupted").wait_for(timeout=60_000)
        shot(page, "review_single_turn_session.png")
        text = main_text(page)
        browser.close()
    assert "1 turns" in text or "1 turn" in text                       # Alex's one turn
    for part in ("How these counts were made", "Take-home summary for the clients", "Export, keep or delete"):
        assert part in text, f"the Review page stops before {part!r}"


# ----- screenshots of every page ------------------------------------------------------------------
def test_screenshots_of_every_page(sample_copy):
    """Unlock, Review (whole page; the take-home expander refused, then with everyone's
    take-home consent and the passphrase given again), Sessions (the sample in a case, trends on)
    and Record. The walkthrough's screens are taken in its test."""
    from playwright.sync_api import sync_playwright

    from capture.consent import SCOPES, make_record, write_consent

    store, session_id = sample_copy
    case = store.cases.create("Alex & Sam", ["Alex", "Sam"])
    store.cases.assign(session_id, case.case_id)
    with dashboard_server(store.root, env=server_env(store)) as port, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        open_and_unlock(page, port, screenshot="unlock.png")
        wait_for_review(page, session_id)
        shot(page, "review.png")

        page.get_by_text("Take-home summary for the clients").click()
        page.get_by_text("have not agreed").wait_for(timeout=30_000)
        shot(page, "review_takehome_refused.png")
        write_consent(store, session_id, [make_record(pid, {s: True for s in SCOPES}, method="test")
                                          for pid in ("p1", "p2")])
        open_and_unlock(page, port)                # a new browser session reads the consent
        wait_for_review(page, session_id)
        page.get_by_text("Take-home summary for the clients").click()
        page.get_by_text("No moments are picked for the walkthrough yet").wait_for(timeout=30_000)
        page.get_by_test_id("stExpander").filter(has_text="Take-home summary").get_by_label("Passphrase").fill(
            TEST_PASSPHRASE)
        page.get_by_role("button", name="Confirm take-home copy").click()
        page.get_by_role("button", name="Download the summary (PDF)").wait_for(timeout=60_000)
        shot(page, "review_takehome_ready.png")

        sidebar_page(page, "Sessions")
        page.get_by_text("Cases and sessions").wait_for(timeout=30_000)
        page.get_by_text("analysed ✓").wait_for(timeout=30_000)
        page.get_by_text("Trends across sessions").click()
        page.get_by_text("One analysed session so far").wait_for(timeout=30_000)
        page.wait_for_timeout(2000)
        shot(page, "sessions.png")

        sidebar_page(page, "Record")
        page.get_by_text("Record a session").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        shot(page, "record.png")
        browser.close()
