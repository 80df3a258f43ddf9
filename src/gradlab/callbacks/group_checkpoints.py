"""A batched group's per-run checkpoints, cut from the group's checkpoint as Lightning assembles
it (``trainer.save_checkpoint`` into the pipeline's ``HeldCheckpointIO``, no file) by
``module.run_checkpoint.checkpoint_of_run``: each run's ``best.ckpt`` by its own validation
loss (as its ModelCheckpoint keeps it), the state where it stopped, the state at the start."""

import copy
import math
from functools import partial

import lightning as L
import torch
from omegaconf import OmegaConf

from gradlab.module.run_checkpoint import checkpoint_of_run
from gradlab.optim.per_run import (
    optimizer_snapshot,
    param_group_of_run,
    run_optimizer_state,
)


def group_checkpoint(trainer: L.Trainer) -> dict:
    """The group's checkpoint as Lightning assembles it (its loop counters are every run's),
    held in memory by the trainer's checkpoint IO (``pipeline.checkpoint_io.HeldCheckpointIO``)."""
    trainer.save_checkpoint("group.ckpt", weights_only=False)  # held, not written
    return trainer.strategy.checkpoint_io.held


def optimizer_state(trainer: L.Trainer, cfg, r: int, packed: dict | None = None) -> dict:
    """Run ``r``'s optimizer state (now, or in ``packed``: ``optimizer_snapshot``), as its own
    optimizer's ``state_dict()``."""
    runs = trainer.lightning_module.group.runs
    return run_optimizer_state(trainer.optimizers[0], r, runs, float(cfg.optim.lr), packed)


def run_checkpoint(trainer, group: dict, cfgs, r: int, opt=None, **state) -> dict:
    """Run ``r``'s checkpoint from the group's ``group`` (its optimizer state: ``opt`` or now)."""
    opt = opt if opt is not None else optimizer_state(trainer, cfgs[r], r)
    optim = OmegaConf.to_container(cfgs[r].optim, resolve=True)
    param_group = param_group_of_run(trainer.optimizers[0], r)  # (its scheduler's state)
    return checkpoint_of_run(group, opt, optim, r, param_group=param_group, **state)


def counted_to_stop(group: dict, validated: bool) -> dict:
    """The group's checkpoint taken at the end of the update where a run stopped
    (``on_train_batch_end``) with the loop counters its solo run's checkpoints have there:
    that update's batch completed (Lightning counts it after the hook) and, ``validated``,
    the validation a run gets at its stop (one batch: the data sets are full batches)."""
    loops = copy.deepcopy(group["loops"])
    fit = loops["fit_loop"]
    for counts in fit["epoch_loop.batch_progress"].values():
        if isinstance(counts, dict):
            counts["completed"] += 1
    if validated:
        val = fit["epoch_loop.val_loop.batch_progress"]
        val["total"] = {k: n + 1 for k, n in val["total"].items()}
        val["current"] = dict.fromkeys(val["current"], 1)
        val["is_last_batch"] = True
    return {**group, "loops": loops}


class GroupCheckpoints(L.Callback):
    """Each run's checkpoints: ``best`` (run -> its best.ckpt: at every validation where its
    loss is below its best so far, the first one always, as its ModelCheckpoint of
    ``val/loss``, ``mode: min`` keeps it; ``keep_best``), ``at_stop`` (run -> its state where
    ``stop_tol`` stopped it) and the state before the first update (``at_start``: the
    ``last.ckpt`` of a run that diverges before any validation improved; its solo run's
    ``last.ckpt`` is written at the start and then only with a new ``best.ckpt``)."""

    def __init__(self, cfgs, keep_best: bool):
        self.cfgs, self.keep_best = cfgs, keep_best
        self.best_loss: list[float] = [math.inf] * len(cfgs)
        self.best_at: dict[int, tuple] = {}  # run -> what its new best.ckpt is cut from
        self.kept: set[int] = set()  # runs with a best.ckpt (new, or from before a resume)
        self.resumed = False
        self.at_stop: dict[int, tuple[dict, dict]] = {}  # run -> (group's ckpt, its optimizer)
        self.stop_validated: set[int] = set()  # stopped runs validated since their stop
        self.now: dict | None = None  # the group's checkpoint at its train end

    def resume(self, ckpts: list[dict]) -> None:
        """Continue from each run's ``last.ckpt``: the best score its ModelCheckpoint kept."""
        self.resumed = True
        for r, ckpt in enumerate(ckpts):
            for state in (ckpt.get("callbacks") or {}).values():
                if state.get("best_model_score") is not None:
                    self.best_loss[r] = float(state["best_model_score"])
                    self.kept.add(r)

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = group_checkpoint(trainer)
        self.start_optimizer = optimizer_snapshot(trainer.optimizers[0])
        self.start_losses = pl_module.progress.last_losses.detach().cpu().clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stopped = pl_module.group.newly_stopped
        if stopped:  # their checkpoints' loop counters and optimizer: of now
            group = group_checkpoint(trainer)
            for r in stopped:
                self.at_stop[r] = (group, optimizer_state(trainer, self.cfgs[r], r))

    def on_validation_end(self, trainer, pl_module) -> None:
        runs, n = pl_module.group, pl_module.updates
        if not self.keep_best or runs.evaluated_at != n:
            return
        history = pl_module.history().cpu()
        finite = torch.isfinite(history).all(dim=0).tolist()  # a diverged run stopped before
        # a run that stop_tol stopped is validated once more, as its solo run is at its stop:
        # at the first validation since (its parameters frozen: the same loss)
        due = [r for r in runs.stopped if r not in self.stop_validated]
        self.stop_validated.update(due)
        better = [
            r for r, loss in enumerate(runs.last.tolist())
            if (loss < self.best_loss[r] or r not in self.kept) and finite[r]
            and (r not in runs.stopped or r in due)
        ]  # fmt: skip
        if not better:
            return
        group, packed = group_checkpoint(trainer), optimizer_snapshot(trainer.optimizers[0])
        for r in better:  # (cut at the end: most are replaced by a later best)
            self.best_loss[r] = float(runs.last[r])
            self.kept.add(r)
            if r in runs.stopped:  # its state at its stop, validated there
                (at, opt), done = self.at_stop[r], runs.stopped[r]
                at = counted_to_stop(at, validated=True)
            else:  # its optimizer's state: cut from the group's copy when its best.ckpt is
                at, done = group, n
                opt = partial(optimizer_state, trainer, self.cfgs[r], r, packed)
            self.best_at[r] = (at, opt, done, runs.best[r].clone(), runs.previous[r])

    def on_train_end(self, trainer, pl_module) -> None:
        # where a solo run's RunCheckpoint saves last.ckpt unless it saved one at this update
        # (before the test: its loop counters are the solo run's)
        self.now = group_checkpoint(trainer)

    def best(self, trainer, r: int, history) -> dict | None:
        """Run ``r``'s new ``best.ckpt`` (None: no validation improved on its best;
        ``history``: the group's loss history)."""
        if r not in self.best_at:
            return None
        group, opt, n, best, previous = self.best_at[r]
        opt = opt() if callable(opt) else opt
        column = history[:n, r]
        val_history = trainer.lightning_module.group.losses_of_run(r, n)
        return run_checkpoint(trainer, group, self.cfgs, r, opt, column=column,
                              val_history=val_history, best=best, previous=previous)  # fmt: skip

    def last(self, trainer, r: int, history, column) -> dict | None:
        """Run ``r``'s ``last.ckpt`` (``column``: its losses): where it stopped or now;
        of a diverged run, its best or its start (None: a resumed run's stays as it was)."""
        runs = trainer.lightning_module.group
        if not torch.isfinite(column).all():
            if r in self.best_at or self.resumed:
                return self.best(trainer, r, history)
            opt = optimizer_state(trainer, self.cfgs[r], r, self.start_optimizer)
            ckpt = run_checkpoint(trainer, self.start, self.cfgs, r, opt,
                                  column=torch.empty(0), val_history=[])  # fmt: skip
            ckpt["gradlab"]["last_losses"] = self.start_losses[r : r + 1].clone()
            return ckpt
        n = len(column)
        if r not in self.at_stop and r in self.best_at and self.best_at[r][2] == n:
            return self.best(trainer, r, history)  # saved with its best.ckpt, as solo
        if r not in self.at_stop and self.now is None:
            self.now = group_checkpoint(trainer)
        group, opt = self.at_stop.get(r) or (self.now, None)
        best = None if runs.best is None else runs.best[r]
        val_history = runs.losses_of_run(r, n)
        if r in self.at_stop:  # validated at its stop where the group validates at all
            group = counted_to_stop(group, bool(val_history) and val_history[-1][0] == n)
        return run_checkpoint(trainer, group, self.cfgs, r, opt, column=column,
                              val_history=val_history, best=best,
                              previous=runs.previous[r])  # fmt: skip
