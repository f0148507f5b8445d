"""Analysis started from the dashboard runs in its own process, reports progress, and survives
being killed (the stages already done are kept; a new start finishes the job)."""
from __future__ import annotations

import os
import signal
import time

from analysis.jobs import DONE, FAILED, RUNNING, job_path, job_status, start_analysis
from capture.ingest import import_media
from tests.media_factory import make_media


def wait_for(root, session_id, predicate, timeout_s=300):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = job_status(root, session_id)
        if status and predicate(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job status never matched: {job_status(root, session_id)}")


def test_background_analysis_reports_progress_and_survives_a_kill(store, tmp_path):
    session_id = import_media(store, make_media(tmp_path / "s.mp4", seconds=6.0), "Alex,Sam")
    first = start_analysis(store, session_id)
    assert first["state"] == RUNNING and job_status(store.root, session_id)["state"] == RUNNING
    assert start_analysis(store, session_id)["pid"] == first["pid"]        # one run per session at a time
    started = wait_for(store.root, session_id, lambda s: s["stage"] not in ("starting",))
    assert 0.0 <= started["fraction"] < 1.0
    os.kill(first["pid"], signal.SIGKILL)
    failed = wait_for(store.root, session_id, lambda s: s["state"] == FAILED, timeout_s=30)
    assert "start it again" in failed["message"]

    again = start_analysis(store, session_id)
    assert again["pid"] != first["pid"]
    done = wait_for(store.root, session_id, lambda s: s["state"] in (DONE, FAILED))
    assert done["state"] == DONE, done["message"]
    assert done["fraction"] == 1.0 and store.exists(session_id, "derived/events.parquet")
    # the job file holds progress only: no names, no key
    text = job_path(store.root, session_id).read_text()
    assert "Alex" not in text and "key" not in text
    assert oct(job_path(store.root, session_id).stat().st_mode & 0o777) == "0o600"


def test_a_failing_analysis_says_why_in_one_sentence(store, tmp_path):
    session_id = import_media(store, make_media(tmp_path / "s.mp4", seconds=3.0), "Alex,Sam")
    store.delete_file(session_id, store.manifest(session_id)["media"]["audio"])   # its audio is gone
    start_analysis(store, session_id)
    status = wait_for(store.root, session_id, lambda s: s["state"] != RUNNING)
    assert status["state"] == FAILED and status["message"] and "Traceback" not in status["message"]
