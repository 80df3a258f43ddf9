"""What a batched group does per run between its updates: each run's validation
(``PerRunValidation``) and each run's ``stop_tol`` (``PerRunStop``), as a solo run does them."""

import math

import lightning as L
import torch

from gradlab.module.evaluation import test_metrics
from gradlab.pipeline.signals import requested
from gradlab.sweep.job_checkpoint import group_checkpoint, optimizer_state


class PerRunValidation(L.Callback):
    """Each run's validation loss every ``every`` updates and at the end; the best so far."""

    def __init__(self, every: int, val, loss_fn, task: str, logged: bool):
        self.every, self.val, self.loss_fn, self.task = every, val, loss_fn, task
        self.last = self.best = self.last_pred = self.evaluated_at = None
        self.last_metrics: dict[int, dict] = {}
        self.logged = logged  # the jobs have loggers: keep every validation's metrics
        self.history: list[tuple[int, list[dict]]] = []  # (updates done, each run's metrics)
        self.losses: list[tuple[int, torch.Tensor]] = []  # (updates done, each run's loss)

    def evaluate(self, pl_module) -> None:
        x, y = (t.to(pl_module.device) for t in self.val)
        with torch.no_grad():
            pred = pl_module.model(x)
            loss = self.loss_fn(pred, y).nan_to_num(nan=math.inf)
        self.last, self.last_pred, self.last_metrics = loss, pred, {}
        self.evaluated_at = pl_module.updates
        self.losses.append((pl_module.updates, loss.cpu()))
        self.best = loss if self.best is None else torch.minimum(self.best, loss)
        if self.logged:  # what a solo run logs at each validation
            runs = [
                {"val/loss": float(loss[r]), **self.metrics(r),
                 "val/loss_best": float(self.best[r])}
                for r in range(len(loss))
            ]  # fmt: skip
            self.history.append((pl_module.updates, runs))

    def metrics(self, run: int) -> dict[str, float]:
        """Run ``run``'s metrics at the last validation (val/mse, val/r2 or val/acc), as its
        own run's module computes them (once per validation)."""
        if run not in self.last_metrics:
            y = self.val[1][run].to(self.last_pred.device)
            out = test_metrics(self.task, self.loss_fn, self.last_pred[run], y)
            self.last_metrics[run] = {f"val/{k}": v for k, v in out.items() if k != "loss"}
        return self.last_metrics[run]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = pl_module.updates
        if n % self.every == 0 or n == trainer.max_steps:
            self.evaluate(pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        # the group stopped early (every run met stop_tol, or trainer.max_time): validate
        # where it stopped, as a solo run validates where it stops; a group a signal stopped
        # is resumed later, and validates where its uninterrupted runs validate
        if self.evaluated_at != pl_module.updates and not requested():
            self.evaluate(pl_module)

    def of_run(self, run: int, stop: int) -> list[tuple[int, dict]]:
        """Run ``run``'s logged validations up to its last update ``stop``."""
        return up_to(stop, [(n, runs[run]) for n, runs in self.history])

    def losses_of_run(self, run: int, stop: int) -> list[tuple[int, float]]:
        """Run ``run``'s (updates done, validation loss) up to ``stop`` (its val_history)."""
        return up_to(stop, [(n, float(loss[run])) for n, loss in self.losses])


def up_to(stop: int, series: list[tuple[int, object]]) -> list[tuple[int, object]]:
    """A run's validations up to its last update ``stop``: a run that stopped early (its
    parameters frozen since) is validated at ``stop`` as its solo run is, with the values of
    the first validation after it."""
    mine = [(n, v) for n, v in series if n <= stop]
    later = [v for n, v in series if n > stop]
    if later and (not mine or mine[-1][0] != stop):
        mine.append((stop, later[0]))
    return mine


class PerRunStop(L.Callback):
    """``module.stop_tol`` per run: a run whose loss changes by less than the tolerance in
    one update stops there, as its solo run does: its parameters are frozen from then on
    (put back after every later update of the group) and its history ends; the group stops
    when every run has."""

    def __init__(self, tol: float, runs: int, cfgs):
        self.tol, self.cfgs = tol, cfgs
        self.previous = [math.inf] * runs
        self.stopped: dict[int, int] = {}  # run -> updates done when it stopped
        self.frozen: dict[int, list[torch.Tensor]] = {}
        self.at_stop: dict[int, tuple[dict, dict]] = {}  # run -> (group's ckpt, its optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        params = list(pl_module.model.parameters())
        with torch.no_grad():
            for r, values in self.frozen.items():  # the update just made moved them
                for p, v in zip(params, values, strict=True):
                    p[r].copy_(v)
        losses, group = pl_module.progress.last_losses.tolist(), None
        for r, value in enumerate(losses):
            if r in self.stopped:
                continue
            if abs(self.previous[r] - value) < self.tol:  # the solo run's rule
                self.stopped[r] = pl_module.updates
                self.frozen[r] = [p[r].detach().clone() for p in params]
                if group is None:  # its checkpoint's loop counters and optimizer: of now
                    group = group_checkpoint(trainer)
                self.at_stop[r] = (group, optimizer_state(trainer, self.cfgs[r], r))
            self.previous[r] = value
        if len(self.stopped) == len(losses):
            trainer.should_stop = True
