"""Callbacks the tests inject into subprocess runs (PYTHONPATH=tests)."""

import os
import signal
import signal as signal_module

import lightning as L


class CrashAtStep(L.Callback):
    """SIGKILL this process once ``step`` optimizer updates are done: a crash, not a clean exit."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.updates >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAtStep(L.Callback):
    """Send ``signal`` (a name, e.g. SIGINT) to this process once ``step`` updates are done,
    as Ctrl-C or a scheduler's SIGTERM would."""

    def __init__(self, step: int, signal: str = "SIGINT"):
        self.step, self.signal = step, getattr(signal_module, signal)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.updates == self.step:
            os.kill(os.getpid(), self.signal)


class RaiseAtStep(L.Callback):
    """Fail with an exception once ``step`` updates are done: an in-process crash."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.updates == self.step:
            raise RuntimeError(f"crash at step {self.step}")


class CrashAtFitEnd(L.Callback):
    """SIGKILL this process when training is over: after the final checkpoint, before the
    test metrics and metrics.json are written."""

    def on_fit_end(self, trainer, pl_module):
        os.kill(os.getpid(), signal.SIGKILL)
