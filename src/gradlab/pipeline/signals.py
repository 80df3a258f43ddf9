"""Ctrl-C and SIGTERM stop a run between two updates, so what it computed can be written."""

import signal
import threading
from contextlib import contextmanager
from types import SimpleNamespace


@contextmanager
def stop_between_updates(trainer):
    """The first SIGINT or SIGTERM asks the trainer to stop after the current update
    (``state.signal`` names it); a second one stops at once."""
    state = SimpleNamespace(signal=None)
    if threading.current_thread() is not threading.main_thread():
        yield state  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if state.signal is not None:
            raise KeyboardInterrupt
        state.signal = signal.Signals(signum).name
        trainer.should_stop = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def fit_until_stopped(trainer, module, data, ckpt_path=None):
    """``trainer.fit`` that Ctrl-C and SIGTERM stop between two updates. Returns (the name of
    the signal that stopped it or None, the exception training raised or None): the caller
    writes what the run computed before it reports either."""
    error = None
    with stop_between_updates(trainer) as stop:
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        except SystemExit:  # Lightning ends Ctrl-C with sys.exit(1), SIGTERM with a SystemExit
            if not trainer.interrupted:
                raise
            stop.signal = "SIGTERM" if trainer.received_sigterm else stop.signal or "SIGINT"
        except Exception as e:  # noqa: BLE001 - reported after the results are written
            error = e
    return stop.signal, error
