"""Many sessions at once: a local process pool and a Dask distributed cluster (LocalCluster over
TLS here) give the same artifacts as the serial run, and a worker killed mid-stage is replaced,
its task run again, nothing half-written kept."""
from __future__ import annotations

import os
import signal
import time

import pandas as pd
import pytest

from analysis.core.workers import clean_main
from analysis.executor import DaskExecutor, LocalExecutor, analyse_one
from capture.errors import PlaybackError
from capture.ingest import import_media
from capture.store import Store
from conftest import SAMPLE, TEST_PASSPHRASE
from test_golden import TABLES, TOLERANCE, _comparable
from tests.media_factory import make_media

pytestmark = pytest.mark.slow


def assert_same_artifacts(store, session_id, serial_store, serial_id):
    for table in TABLES:
        actual = _comparable(store.read_table(session_id, f"derived/{table}.parquet")[0])
        expected = _comparable(serial_store.read_table(serial_id, f"derived/{table}.parquet")[0])
        rtol, atol = TOLERANCE.get(table, (1e-6, 1e-9))
        pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=rtol, atol=atol, check_dtype=False,
                                      obj=f"{table}")


@pytest.fixture
def cluster():
    from distributed import Client, LocalCluster
    from distributed.security import Security

    with clean_main(), LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0,
                                    dashboard_address=None, security=Security.temporary(),
                                    silence_logs=50) as cluster, Client(cluster) as client:
        assert cluster.scheduler_address.startswith("tls://")
        yield client


def test_two_sessions_on_dask_equal_the_serial_run_and_survive_a_killed_worker(sample_session, cluster, tmp_path):
    serial_store, serial_id, _ = sample_session
    store = Store(tmp_path / "store", TEST_PASSPHRASE).unlock()
    first, second = (import_media(store, SAMPLE / "session.mp4", "Alex,Sam") for _ in range(2))
    executor = DaskExecutor(cluster)
    # kill the worker analysing the first session once its faces stage is done
    futures = [cluster.submit(analyse_one, str(store.root), sid, store.keys.data_key(sid), pure=False)
               for sid in (first, second)]
    deadline = time.time() + 600
    while not store.exists(first, "derived/faces.run.json") and time.time() < deadline:
        time.sleep(0.2)
    (worker,) = [w for w, keys in cluster.processing().items() if futures[0].key in keys]
    os.kill(cluster.run(os.getpid)[worker], signal.SIGKILL)
    outcomes = cluster.gather(futures)
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    assert "faces" in outcomes[0].skipped and "faces" in outcomes[1].ran   # run again on a new worker, from speakers on
    for sid in (first, second):
        assert_same_artifacts(store, sid, serial_store, serial_id)
        assert not list(store.files.session_dir(sid).rglob(".tmp-*"))           # nothing half-written kept
    # the executor's own interface: nothing left to do, every stage skipped
    again = executor.analyse(store, [first, second])
    assert all(o.ok and not o.ran for o in again)


def test_local_pool_analyses_sessions_in_parallel(store, tmp_path):
    media = make_media(tmp_path / "a.mp4", seconds=4.0)
    ids = [import_media(store, media, "Alex,Sam") for _ in range(2)]
    outcomes = LocalExecutor(2).analyse(store, ids)
    assert [o.session_id for o in outcomes] == ids and all(o.ok for o in outcomes), outcomes
    assert all(store.exists(sid, "derived/events.parquet") for sid in ids)


def test_a_remote_scheduler_without_tls_is_refused():
    with pytest.raises(PlaybackError, match="tls://"):
        DaskExecutor.connect("tcp://10.1.2.3:8786")
