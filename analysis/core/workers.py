"""Worker processes that start from a clean interpreter, one background thread, and work mapped
over threads.

``spawn`` re-imports the parent's ``__main__`` in every new process. When the parent is a
Streamlit page or a test harness, ``__main__`` is that script (``app.py``), which must never run
in a worker; :func:`clean_main` hides it while workers are being started.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
import types
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@contextlib.contextmanager
def clean_main():
    """Inside the ``with``, new processes do not re-run the caller's ``__main__``."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def process_pool(workers: int, *, tasks_per_process: int | None = None):
    """A pool of ``workers`` fresh (spawned) processes for the ``with`` (a pool starts its
    processes as tasks arrive, so the caller's ``__main__`` stays hidden throughout); with
    ``tasks_per_process``, a process ends after that many tasks and a fresh one takes its place
    (memory a task leaves behind then never adds up over many tasks)."""
    with clean_main(), ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                           max_tasks_per_child=tasks_per_process) as pool:
        yield pool


@contextlib.contextmanager
def background_thread(name: str):
    """One thread (an executor) for work started now and collected later in the ``with``. On
    leaving (an error included), work not yet begun is cancelled and the piece running is
    waited for, so no thread outlives the ``with``."""
    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def map_in_threads(work: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """``[work(item) for item in items]``, in order, computed on ``threads`` threads: for work
    that spends its time outside the GIL (torch, numpy), which then keeps that many cores busy.
    Thread-local state (torch's ``no_grad``) must be set inside ``work``."""
    if threads <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="playback-map") as pool:
        return list(pool.map(work, items))


def release_free_memory() -> None:
    """Hand the memory this process has freed back to the system: glibc's (``malloc_trim``;
    nothing elsewhere) and Arrow's pool's (the tables read and written; about 30 MB kept after
    a 50-minute session). Freed small objects (a long session's tens of thousands of face rows,
    unpickled in the process pool's result thread) otherwise stay resident in the allocators'
    heaps, and a later stage's peak stands on them."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


# allocations of this size (bytes) and more get pages of their own, unmapped when freed
LARGE_ALLOCATION_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3          # mallopt's parameter number in glibc's malloc.h


def return_large_blocks_when_freed() -> None:
    """Fix glibc's mmap threshold at :data:`LARGE_ALLOCATION_BYTES` for this process (nothing
    elsewhere), so that every array of 1 MiB or more (numpy's, torch's) goes back to the system
    when it is freed. Left alone, glibc raises the threshold each time it frees such a block
    (up to 32 MiB); arrays under it then come from its heaps (one per thread), where freed
    blocks stay resident between live ones: a later peak stands on them, and the more threads
    and the longer the session, the more of them (tests/test_workers.py)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES)


def _glibc():
    """The C library when it is glibc (``malloc_trim`` and ``mallopt`` exist), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None
