"""Analysis in a separate process, started from the dashboard, with its progress on disk.

:func:`start_analysis` starts ``python -m analysis.jobs STORE_ROOT`` and hands it, over a pipe
(never the command line or the environment), the id and data key of the one session to analyse:
the worker can read that session and no other, and never sees the passphrase or the master key.
The worker writes its progress to ``jobs/<session id>.json`` in the store folder (stage names,
fractions and a one-sentence error: no personal content) and the page reads it with
:func:`job_status`. A worker that died without saying so (killed, out of memory) is reported as
failed; analysis stages write their artifacts atomically, so a killed run leaves nothing half-written
and the next run carries on from the stages already done.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from analysis.pipeline import STAGES, analyze
from capture.errors import PlaybackError, one_line
from capture.store import Store

JOBS_DIR = "jobs"
RUNNING, DONE, FAILED = "running", "done", "failed"


def job_path(root: Path, session_id: str) -> Path:
    return Path(root) / JOBS_DIR / f"{session_id}.json"


def _write(path: Path, status: dict) -> None:
    """Replace the job file at once (a reader never sees half of it); private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({**status, "updated": time.time()}, fh)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:       # a finished child of this process is a zombie until reaped: reap it, it is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def job_status(root: Path, session_id: str) -> dict | None:
    """``{"state": running|done|failed, "stage", "fraction" (0..1), "message"}`` of the last
    analysis started for ``session_id`` from the dashboard, or None."""
    path = job_path(root, session_id)
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if status.get("state") == RUNNING and not _alive(int(status.get("pid", 0))):
        status = {**status, "state": FAILED,
                  "message": "The analysis stopped before it finished (the process was ended); start it again: "
                             "the stages already done are kept."}
    return status


def start_analysis(store: Store, session_id: str) -> dict:
    """Start analysing ``session_id`` in a new process; returns its first status. A run already
    going for this session is left alone (its status is returned)."""
    current = job_status(store.root, session_id)
    if current and current["state"] == RUNNING:
        return current
    key = store.keys.data_key(session_id)          # readable only while the store is unlocked
    path = job_path(store.root, session_id)
    worker = subprocess.Popen([sys.executable, "-m", "analysis.jobs", str(store.root)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, "PLAYBACK_PASSPHRASE": ""})
    status = {"state": RUNNING, "pid": worker.pid, "stage": "starting", "fraction": 0.0, "message": ""}
    _write(path, status)
    worker.stdin.write(json.dumps({"session_id": session_id, "key": key.hex() if key else None}).encode())
    worker.stdin.close()
    store.audit("analyse", session_id, detail="started")
    return status


def run_job(root: Path, session_id: str, key: bytes | None) -> int:
    """The worker: analyse ``session_id`` with its data key only, writing progress as it goes."""
    path = job_path(root, session_id)
    order = [stage.name for stage in STAGES]
    status = {"state": RUNNING, "pid": os.getpid(), "stage": "starting", "fraction": 0.0, "message": ""}
    last = [0.0]

    def hook(step: str, *, completed: int, total: int) -> None:
        done = order.index(step) if step in order else 0
        status.update(stage=step, fraction=(done + min(completed / max(total, 1), 1.0)) / len(order))
        if time.monotonic() - last[0] > 0.5:        # a few writes a second at most
            last[0] = time.monotonic()
            _write(path, status)

    store = Store.for_one_session(root, session_id, key)
    store.remove_temporary(session_id)           # leftovers of a worker killed mid-write
    try:
        analyze(store, session_id, hook=hook)
    except PlaybackError as exc:
        _write(path, {**status, "state": FAILED, "message": str(exc)})
        return 2
    except Exception as exc:  # noqa: BLE001  (the page shows one sentence, never a traceback)
        _write(path, {**status, "state": FAILED, "message": f"The analysis failed: {one_line(exc)}"})
        return 2
    _write(path, {**status, "state": DONE, "stage": "done", "fraction": 1.0})
    return 0


def main() -> int:
    root = Path(sys.argv[1])
    order = json.loads(sys.stdin.read())
    key = bytes.fromhex(order["key"]) if order.get("key") else None
    return run_job(root, order["session_id"], key)


if __name__ == "__main__":
    sys.exit(main())
