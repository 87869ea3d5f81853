"""How torch's CPU threads behave in cnnlab's processes, set before torch is imported (plain
Python: importing this loads nothing heavy)."""

from __future__ import annotations

import os


def yield_idle_threads() -> None:
    """Have torch's OpenMP threads sleep, not spin, between parallel regions (unless
    ``OMP_WAIT_POLICY`` is set already). Read when torch loads, so call it before.

    A spinning thread takes its core from the thread that still has work, whenever anything else
    runs on the machine: measured on a busy 2-core machine, a CPU epoch of the lab's CNN took
    twice as long with spinning threads as with one thread, and the same as one thread without
    spinning. Sleeping costs a wake-up per parallel region, microseconds against a batch's tens
    of milliseconds."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
