"""A module whose leading (restart) dimension holds independent runs: a batched sweep's group.
Each run keeps its own stop rule, validation, test and divergence, as its solo run has them;
the module's hooks drive them (``GradLabModule.group``), Lightning's loops time them."""

import math

import torch

from gradlab.errors import DivergenceError
from gradlab.module.evaluation import test_metrics
from gradlab.module.loss_history import first_nonfinite


def settled(previous: float, value: float, tol: float) -> bool:
    """``module.stop_tol``'s rule: the loss changed by less than ``tol`` in one update."""
    return abs(previous - value) < tol


class RunGroup:
    """The per-run state of a group of ``runs``: ``stop_tol`` (a run that settles stops there:
    its parameters are frozen from then on and its history ends; the group stops when every
    run has), each run's validation losses and best so far, its test metrics."""

    def __init__(self, runs: int, stop_tol: float | None, logged: bool):
        self.runs, self.stop_tol = runs, stop_tol
        self.logged = logged  # the runs have loggers: keep every validation's metrics
        self.previous = [math.inf] * runs  # each run's loss at its previous update
        self.stopped: dict[int, int] = {}  # run -> updates done when it stopped
        self.frozen: dict[int, list[torch.Tensor]] = {}
        self.newly_stopped: list[int] = []  # runs that stopped at this update
        self.last = self.best = self.last_pred = self.val_y = self.evaluated_at = None
        self.seen = torch.zeros(runs, dtype=torch.long)  # validations each run made alive
        self.last_metrics: dict[int, dict] = {}
        self.val_history: list[tuple[int, list[dict]]] = []  # (updates, each run's val/*)
        self.val_losses: list[tuple[int, torch.Tensor]] = []  # (updates, each run's loss)
        self.tests: dict[int, dict] = {}  # run -> its test/* metrics
        self.resumed_at = 0  # the update the runs resumed at (0: a fresh start)

    def resume(self, states: list[dict]) -> None:
        """Continue each run from its checkpoint's state (``checkpoint["gradlab"]``, at one
        update): the loss its stop rule compares with, its validation losses and best."""
        self.previous = [s["previous_loss"] for s in states]
        self.resumed_at = states[0]["updates"]
        steps = [n for n, _ in states[0]["val_history"]]
        for k, n in enumerate(steps):
            losses = [float(s["val_history"][k][1]) for s in states]
            self.val_losses.append((n, torch.tensor(losses)))
        if steps:
            self.last, self.evaluated_at = self.val_losses[-1][1], steps[-1]
            self.best = torch.stack([loss for _, loss in self.val_losses]).min(dim=0).values
            self.seen += len(steps)

    # ------------------------------------------------------------------ stop_tol
    def after_update(self, model, losses: torch.Tensor, updates: int) -> bool:
        """Put the stopped runs' parameters back (the group's update moved them), apply each
        running run's stop rule; whether every run has stopped."""
        params = list(model.parameters())
        with torch.no_grad():
            for r, values in self.frozen.items():
                for p, v in zip(params, values, strict=True):
                    p[r].copy_(v)
        self.newly_stopped = []
        if self.stop_tol is None:
            return False
        for r, value in enumerate(losses.reshape(-1).tolist()):
            if r in self.stopped:
                continue
            if settled(self.previous[r], value, self.stop_tol):
                self.stopped[r] = updates
                self.frozen[r] = [p[r].detach().clone() for p in params]
                self.newly_stopped.append(r)
            self.previous[r] = value
        return len(self.stopped) == self.runs

    def running(self, n: int, latest: list[float] | None) -> list[int]:
        """The runs whose solo runs make update ``n`` (counted from 1): not stopped before it,
        their latest loss finite (``latest``: each run's, None before the first update; a solo
        run fails at a non-finite one). What per-run callbacks are called for."""
        latest = [0.0] * self.runs if latest is None else latest
        return [r for r, loss in enumerate(latest)
                if self.stopped.get(r, n) >= n and math.isfinite(loss)]  # fmt: skip

    # ---------------------------------------------------------- validation, test
    def validated(self, loss_fn, task: str, pred, y, updates: int, alive) -> None:
        """Each run's validation loss on the group's validation sets (``pred``, ``y``: stacked).
        A run that diverged (``alive`` false) keeps its last validation before, as its solo
        run, stopped there, reports it."""
        loss = loss_fn(pred, y).nan_to_num(nan=math.inf, posinf=math.inf)
        self.val_losses.append((updates, loss.cpu()))
        if self.last is None:  # the first validation
            self.last, self.best = loss, loss
        if self.last_pred is None:  # (the first since a resume too)
            self.last_pred = pred.clone()
        last, best = self.last.to(loss.device), self.best.to(loss.device)  # (resumed: CPU)
        self.last, self.last_pred[alive] = torch.where(alive, loss, last), pred[alive]
        self.best = torch.where(alive, torch.minimum(best, loss), best)
        self.seen += alive.cpu()
        self.val_y, self.last_metrics, self.evaluated_at = y, {}, updates
        self.task, self.loss_fn = task, loss_fn
        if self.logged:  # what a solo run logs at each validation
            runs = [
                {"val/loss": float(loss[r]), **self.metrics(r),
                 "val/loss_best": float(self.best[r])}
                for r in range(len(loss))
            ]  # fmt: skip
            self.val_history.append((updates, runs))

    def metrics(self, run: int) -> dict[str, float]:
        """Run ``run``'s val/mse, val/r2 or val/acc at the last validation (computed once;
        none where the last one came before a resume, as a resumed solo run has none)."""
        if self.last_pred is None:
            return {}
        if run not in self.last_metrics:
            out = test_metrics(self.task, self.loss_fn, self.last_pred[run], self.val_y[run])
            self.last_metrics[run] = {f"val/{k}": v for k, v in out.items() if k != "loss"}
        return self.last_metrics[run]

    def tested(self, loss_fn, task: str, pred, y) -> None:
        for r in range(self.runs):  # each run's test metrics as its own run computes them
            self.tests[r] = test_metrics(task, loss_fn, pred[r], y[r])

    def validations_of_run(self, run: int, stop: int, frozen=True) -> list[tuple[int, dict]]:
        """Run ``run``'s logged validations up to its last update ``stop`` (``frozen``: and
        at its stop, as ``up_to`` says; not for a diverged run)."""
        mine = [(n, runs[run]) for n, runs in self.val_history]
        return up_to(stop, mine) if frozen else [(n, v) for n, v in mine if n <= stop]

    def losses_of_run(self, run: int, stop: int) -> list[tuple[int, float]]:
        """Run ``run``'s (updates done, validation loss) up to ``stop`` (its val_history)."""
        return up_to(stop, [(n, float(loss[run])) for n, loss in self.val_losses])

    # ---------------------------------------------------------------- outcomes
    def history_of_run(self, history: torch.Tensor, run: int) -> torch.Tensor:
        """Run ``run``'s losses, one per update it made (to its stop or its divergence)."""
        column = history[:, run]
        if run in self.stopped:
            column = column[: self.stopped[run]]
        bad = first_nonfinite(column)
        return column if bad is None else column[: bad + 1]

    def divergence(self, column: torch.Tensor, lr: float) -> DivergenceError | None:
        """The run's divergence (its solo run's error), or None."""
        bad = first_nonfinite(column)
        return None if bad is None else DivergenceError.at(bad, column[bad].item(), lr)


def up_to(stop: int, series: list[tuple[int, object]]) -> list[tuple[int, object]]:
    """A run's validations up to its last update ``stop``: a run that stopped early (its
    parameters frozen since) is validated at ``stop`` as its solo run is, with the values of
    the first validation after it."""
    mine = [(n, v) for n, v in series if n <= stop]
    later = [v for n, v in series if n > stop]
    if later and (not mine or mine[-1][0] != stop):
        mine.append((stop, later[0]))
    return mine
