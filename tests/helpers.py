"""Callbacks the tests inject into subprocess runs (PYTHONPATH=tests)."""

import os
import signal

import lightning as L


class CrashAtStep(L.Callback):
    """SIGKILL this process once ``step`` optimizer updates are done: a crash, not a clean exit."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.updates >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
