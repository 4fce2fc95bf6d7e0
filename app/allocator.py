"""glibc malloc tuning for the processes that train: keep freed memory for reuse.

A frame's summaries allocate and free a few MB of temporaries (the stacked rows to sort, their
positions), and a training step frees and reallocates its activations. By default glibc serves
blocks above a (dynamic) mmap threshold with fresh mappings and returns the top of the heap to
the OS once more than its trim threshold is free, so those pages are faulted in again and again:
a 24 x 128 network took ~150-450 minor page faults per frame, and its training steps ran slower
after each frame. Kept, a frame costs ~0 faults and 20 frames/s cost ~3 points less throughput
(bench/bench_training.py; tests/test_allocator.py). A worker's memory then stays at the peak its
runs needed while it runs; after each job `release_freed_memory` hands the free pages back
(a worker's RSS falls from ~690 MB after a 24 x 512 MLP, or ~1.45 GB after a 12-block transformer,
to ~320 MB), so an idle worker costs what a warm one does.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks below it come from the heap, and are reused
TRIM_THRESHOLD = 512 * 2**20  # free memory at the heap's top kept before any is given back
TOP_PAD = 16 * 2**20  # extra asked of the OS each time the heap grows


def keep_freed_memory() -> bool:
    """Tune this process's malloc as above. True where it applied (glibc); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # absent from musl, say
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all([mallopt(param, value) == 1 for param, value in settings])


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the OS (glibc's malloc_trim). True where it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def resident_bytes() -> int:
    """This process's resident set size now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
