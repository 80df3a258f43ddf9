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
