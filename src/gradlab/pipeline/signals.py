"""Ctrl-C and SIGTERM end a command between two updates, after what it computed is written.

Every SIGINT and SIGTERM, the first and any number after it at any spacing, is noted: the
trainer at work stops after its current update, a run or sweep job not yet started does not
start, and nothing is cut short while it is written (history, checkpoints, metrics, job
directories). The command then ends with one ``error:`` line and exit code 130. SIGKILL
ends it at once; a run resumes from its ``last.ckpt``."""

import signal
import threading
from contextlib import contextmanager
from types import SimpleNamespace

# the command's one signal state: the first signal's name, the trainer to stop, and how many
# nested spans hold the handler (signal handlers are per process)
STOP = SimpleNamespace(signal=None, trainer=None, held=0)


def _note(signum, frame) -> None:
    if STOP.signal is None:
        STOP.signal = signal.Signals(signum).name
    if STOP.trainer is not None:
        STOP.trainer.should_stop = True


# submitit's signal of a SLURM job's coming time limit (and, where the cluster sends it, of its
# preemption): ``--signal=USR2@<delay>``; submitit's own handler would exit at once
PREEMPTION = signal.SIGUSR2


@contextmanager
def signals_noted(preemption: bool = False):
    """SIGINT and SIGTERM (and ``preemption``: SIGUSR2, PREEMPTION) are noted
    (``requested()``), not raised, for this span (a command, a sweep, a run); spans nest.
    Outside the main thread nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield STOP
        return
    if STOP.held:
        STOP.held += 1
        try:
            yield STOP
        finally:
            STOP.held -= 1
        return
    STOP.signal, STOP.held = None, 1
    noted = (signal.SIGINT, signal.SIGTERM, *((PREEMPTION,) if preemption else ()))
    previous = {s: signal.signal(s, _note) for s in noted}
    try:
        yield STOP
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        STOP.held, STOP.trainer = 0, None


def requested() -> str | None:
    """The name of the signal that asked the command to stop (None: none came)."""
    return STOP.signal


def ignore_after_stop() -> None:
    """A command that a signal stopped is ending with its results written: later signals
    would only cut its exit short (Python's and the libraries' clean-up), so they are
    ignored from here on."""
    if STOP.signal is not None and threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)


@contextmanager
def stop_between_updates(trainer):
    """While ``trainer`` fits, a signal asks it to stop after the current update."""
    with signals_noted() as stop:
        stop.trainer = trainer
        try:
            yield stop
        finally:
            stop.trainer = None


def fit_until_stopped(trainer, module, data, ckpt_path=None):
    """``trainer.fit`` that Ctrl-C and SIGTERM stop between two updates (one that came before
    it starts: no update). Returns (the name of the signal that stopped it or None, the
    exception training raised or None): the caller writes what the run computed before it
    reports either."""
    error = None
    with stop_between_updates(trainer) as stop:
        if stop.signal is not None:
            return stop.signal, None
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        except SystemExit:  # Lightning ends SIGTERM with a SystemExit (SIGTERMException)
            if not trainer.interrupted:
                raise
            stop.signal = stop.signal or ("SIGTERM" if trainer.received_sigterm else "SIGINT")
        except Exception as e:  # noqa: BLE001 - reported after the results are written
            error = e
        return stop.signal, error
