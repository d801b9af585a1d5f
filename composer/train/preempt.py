"""Preemption on clusters: the scheduler's warning signal stops a run cleanly, and the job can be requeued.

SLURM sends SIGTERM some seconds before it kills a preempted or timed-out job, and SIGUSR1 (or another
signal) when the job asks for a warning (`#SBATCH --signal=USR1@120`). While a run trains, both only raise a
flag, so nothing is interrupted half-way: the loop sees the flag after the current optimiser step (every
process agrees on the step, one all-reduce per step when there are several), saves the run's verified
resume state as `--save-every` does, and stops with exit status 75 (EX_TEMPFAIL: "try again"). A second
signal during that save only raises the flag again. `composer run --resume RUN_DIR` then continues to the
weights an uninterrupted run would have. With `--requeue`, under SLURM, the main process also asks SLURM to
put the job back in the queue (`scontrol requeue $SLURM_JOB_ID`); docs/data.md gives a batch script that
resumes the same run directory when it starts again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
EXIT_PREEMPTED = 75


class Preempted(Exception):
    """The run stopped on a signal after an optimiser step; its state to resume from is saved."""


@contextmanager
def signals_caught() -> Iterator[Callable[[], bool]]:
    """While inside: SIGUSR1 and SIGTERM only raise a flag; yields what reads it. The previous handlers come
    back on leaving. Outside the main thread (where Python cannot install handlers) the flag never rises."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in SIGNALS}
    try:
        yield lambda: bool(received)
    finally:
        for s, handler in previous.items():  # None: a handler installed from C, which Python cannot restore
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


def any_process(accelerator, flag: bool) -> bool:
    """Whether any process raised its flag (a collective when there are several: every process calls it)."""
    if accelerator.num_processes == 1:
        return flag
    if flag:
        accelerator.set_trigger()
    return accelerator.check_trigger()


def requeue() -> str:
    """Ask SLURM to queue this job again; what happened, in one line. SLURM answers a requeue by signalling the
    running job: from here on this process ignores the signals, and it is about to exit anyway."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return "--requeue: not under SLURM (no SLURM_JOB_ID), so the job was not requeued"
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"--requeue: scontrol requeue {job} failed ({e}); resubmit the job to continue"
    if done.returncode != 0:
        return f"--requeue: scontrol requeue {job} failed ({(done.stderr or done.stdout).strip()[:200]})"
    return f"requeued SLURM job {job}: it resumes this run directory when it starts again"
