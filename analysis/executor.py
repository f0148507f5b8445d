"""Analysing many sessions at once, through one interface: a local process pool by default, a
Dask distributed cluster when ``PLAYBACK_DASK_SCHEDULER`` names one.

Trust model (which worker sees what):

- The process that unlocked the vault (the therapist's ``playback`` or dashboard) keeps the
  passphrase and the master key; they never leave it.
- Each task carries one session's id, the store folder and that session's **data key**. A local
  worker receives it over the process pool's pipe; a Dask worker over the cluster's TLS
  connections (``tls://`` is required unless the scheduler is on this computer), so the key is
  never sent in the clear. The worker reads that session's encrypted files from the store folder
  (a shared disk on a practice server), decrypts them in its memory, and writes its artifacts
  back encrypted with the same key; it can read no other session.
- A worker therefore sees one session's media and results in plaintext, in memory, while it
  analyses it: run workers only on machines the practice controls.

Writes are atomic (temporary file, then rename) and a stage's run record is written after its
artifacts, so a worker killed mid-stage leaves nothing half-written that a later run would
trust: the task is run again (Dask reschedules the tasks of a lost worker) and carries on from
the stages already done.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from analysis.core.workers import process_pool
from analysis.pipeline import analyze
from capture.errors import PlaybackError, one_line
from capture.store import Store

SCHEDULER_ENV = "PLAYBACK_DASK_SCHEDULER"
# TLS files for the Dask client (a practice server's own certificate authority).
TLS_ENV = {"tls_ca_file": "PLAYBACK_DASK_TLS_CA", "tls_client_cert": "PLAYBACK_DASK_TLS_CERT",
           "tls_client_key": "PLAYBACK_DASK_TLS_KEY"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Outcome:
    """How one session's analysis ended: ``ok``, a one-sentence ``message`` if not, ``seconds``
    of wall time in the worker, the stages run and skipped."""

    session_id: str
    ok: bool
    message: str = ""
    seconds: float = 0.0
    ran: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


def analyse_one(root: str, session_id: str, data_key: bytes | None) -> Outcome:
    """The task a worker runs: analyse ``session_id`` with its data key only."""
    started = time.perf_counter()
    store = Store.for_one_session(root, session_id, data_key)
    store.remove_temporary(session_id)       # leftovers of a worker killed mid-write
    try:
        records = analyze(store, session_id)
    except PlaybackError as exc:
        return Outcome(session_id, False, str(exc), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001  (one sentence back to the caller, never a traceback)
        return Outcome(session_id, False, f"The analysis failed: {one_line(exc)}", time.perf_counter() - started)
    return Outcome(session_id, True, "", time.perf_counter() - started,
                   tuple(r["stage"] for r in records if r.get("this_run") != "skipped"),
                   tuple(r["stage"] for r in records if r.get("this_run") == "skipped"))


class LocalExecutor:
    """A pool of ``workers`` local processes (started fresh: no state shared with the caller)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))

    def analyse(self, store: Store, session_ids: list[str]) -> list[Outcome]:
        """Analyse ``session_ids`` in parallel; outcomes in the same order."""
        keys = {sid: store.keys.data_key(sid) for sid in session_ids}     # needs the store unlocked
        with process_pool(self.workers) as pool:
            futures = [pool.submit(analyse_one, str(store.root), sid, keys[sid]) for sid in session_ids]
            return [f.result() for f in futures]


class DaskExecutor:
    """Sessions as tasks on a Dask distributed cluster (``client``: a ``distributed.Client``)."""

    def __init__(self, client):
        self.client = client

    @classmethod
    def connect(cls, address: str, security=None) -> "DaskExecutor":
        """A client of the scheduler at ``address``; refuses to send keys to another machine
        without TLS."""
        from distributed import Client

        host = urlparse(address if "://" in address else f"tcp://{address}")
        if host.scheme != "tls" and host.hostname not in LOCAL_HOSTS:
            raise PlaybackError(f"The Dask scheduler {address} is on another machine: use a tls:// address and "
                                f"give the TLS files ({', '.join(TLS_ENV.values())}); session keys are never "
                                "sent in the clear.")
        try:
            return cls(Client(address, security=security, timeout=30))
        except OSError as exc:
            raise PlaybackError(f"Could not reach the Dask scheduler at {address}: {one_line(exc)}") from None

    def analyse(self, store: Store, session_ids: list[str]) -> list[Outcome]:
        keys = {sid: store.keys.data_key(sid) for sid in session_ids}
        futures = [self.client.submit(analyse_one, str(store.root), sid, keys[sid], key=f"analyse-{sid}-{time.time_ns()}",
                                      pure=False, retries=1) for sid in session_ids]
        return self.client.gather(futures)


def executor_from_environment(workers: int | None = None) -> LocalExecutor | DaskExecutor:
    """A Dask executor when ``PLAYBACK_DASK_SCHEDULER`` is set (TLS files from
    ``PLAYBACK_DASK_TLS_*``), else a local process pool."""
    address = os.environ.get(SCHEDULER_ENV)
    if not address:
        return LocalExecutor(workers)
    files = {name: os.environ[env] for name, env in TLS_ENV.items() if os.environ.get(env)}
    security = None
    if files:
        from distributed.security import Security

        security = Security(require_encryption=True, **files)
    return DaskExecutor.connect(address, security)
