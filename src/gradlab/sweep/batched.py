"""Train many runs that differ only in seed and learning rate as one vectorized run.

Each run's data and weights are drawn exactly as its own run would draw them (one generator
seeded with its seed); they are stacked along a leading run dimension (the models' restart
dimension), so one Lightning step is one update of every run. Per-run learning rates go
through ``gradlab.sweep.per_run``: ``RunByRun`` (exact: each run's slice stepped as its own
run steps it) or ``PerRunLearningRates``. Each run's results come back separately.
"""

import math
import time
from dataclasses import dataclass, field
from functools import partial

import lightning as L
import torch
from omegaconf import DictConfig

from gradlab.callbacks import DeadUnitCheck
from gradlab.callbacks.dead_units import dead_units, of_run
from gradlab.data.base import FullBatchDataModule
from gradlab.errors import DivergenceError
from gradlab.models.mlp import matmul_per_run
from gradlab.module.evaluation import test_metrics
from gradlab.pipeline.build import (
    build_module,
    build_optimizer,
    updates_between_validations,
)
from gradlab.pipeline.process_state import torch_settings
from gradlab.pipeline.results import per_point
from gradlab.pipeline.run import draw_stacked
from gradlab.pipeline.signals import fit_until_stopped
from gradlab.pipeline.validate import check_optimizer, check_values, validate
from gradlab.sweep.batchable import group_options, has_callback, keeps_best
from gradlab.sweep.job_checkpoint import (
    BestCheckpoints,
    HeldCheckpointIO,
    StartCheckpoints,
    group_checkpoint,
    optimizer_state,
    run_checkpoint,
)
from gradlab.sweep.per_run import PerRunLearningRates, RunByRun
from gradlab.sweep.per_run_callbacks import PerRunStop, PerRunValidation


class StackedData(FullBatchDataModule):
    """The runs' data sets stacked along a leading run dimension."""

    def __init__(self, datas: list[FullBatchDataModule]):
        super().__init__()
        first = datas[0]
        self.task, self.num_classes = first.task, first.num_classes

        def stack(pairs):
            if any(p is None for p in pairs):
                return None
            return tuple(torch.stack(ts) for ts in zip(*pairs, strict=True))

        self.train = stack([d.train for d in datas])
        self.val = stack([d.val for d in datas])
        self.test = stack([d.test for d in datas])


@dataclass
class RunOutcome:
    """One run of a batched training: its loss per update and its final metrics."""

    history: torch.Tensor
    metrics: dict = field(default_factory=dict)
    validations: list[tuple[int, dict]] = field(default_factory=list)  # (updates, val/*)
    checkpoint: dict | None = None  # its last.ckpt, as its solo run would write it
    best_checkpoint: dict | None = None  # its best.ckpt (its lowest validation loss)
    dead_units: list | None = None  # callbacks.dead_units: (layer, dead, units) at its end


def train_batched(cfgs: list[DictConfig], exact: bool = True) -> list[RunOutcome]:
    """Train ``cfgs`` (equal but for the keys in BATCHABLE) as one vectorized run; ``exact``:
    each run's matmuls and optimizer step as its own run computes them (bit-identical to it),
    else torch's batched matmul and one optimizer step for all runs (faster for many runs;
    then only seed and optim.lr may differ: BATCHABLE_INEXACT). No outcome when a signal
    came before the first update."""
    cfg = cfgs[0]
    validate(cfg)  # the pipeline's checks; the others differ only in batchable values:
    checked = {str(group_options(cfg))}
    for c in cfgs[1:]:
        check_values(c)
        options = str(group_options(c))
        if options not in checked:  # torch's own checks of momentum, betas, ...
            checked.add(options)
            check_optimizer(c)
    with torch_settings(cfg):
        return _train(cfgs, cfg, exact)


def _train(cfgs: list[DictConfig], cfg: DictConfig, exact: bool) -> list[RunOutcome]:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datas, model = draw_stacked(cfgs)  # each run as its own run draws it
    runs = len(cfgs)
    if exact:
        model.matmul = matmul_per_run
    data = StackedData(datas)
    del datas  # (stacked: each run's own copy is not needed)
    lrs = [float(c.optim.lr) for c in cfgs]
    module = build_module(cfg, model, data)
    stop_tol, module.stop_tol = module.stop_tol, None  # per run: PerRunStop
    stopping = PerRunStop(stop_tol, runs, cfgs) if stop_tol is not None else None
    if exact:
        options = [group_options(c) for c in cfgs]
        module.optimizer_factory = partial(
            RunByRun, optimizer=build_optimizer(cfg), options=options
        )
    elif len(set(lrs)) > 1:
        module.optimizer_factory = partial(
            PerRunLearningRates, optimizer=build_optimizer(cfg), lrs=lrs
        )
    steps = cfg.trainer.max_steps
    every = updates_between_validations(cfg)
    logged = bool(cfg.get("logger"))
    validation = PerRunValidation(every, data.val, module.loss_fn, data.task, logged)
    start = StartCheckpoints()  # for a diverged run's last.ckpt
    has_val, keeper = data.val is not None, None  # keeper: each run's best.ckpt
    if has_val and keeps_best(cfg):
        keeper = BestCheckpoints(validation, cfgs, stopping)
    trainer = L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        max_steps=steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        max_time=cfg.trainer.get("max_time"),  # for the group
        callbacks=[c for c in (stopping, validation if has_val else None, start, keeper) if c],
        plugins=[HeldCheckpointIO()],  # the group's checkpoints, in memory: job_checkpoint
        default_root_dir=None,
    )
    data.set_steps(steps)
    began = time.perf_counter()
    # Ctrl-C and SIGTERM stop every run between two updates, as they stop a solo run
    stopped_by, error = fit_until_stopped(trainer, module, data)
    if error is not None and not isinstance(error, DivergenceError):
        raise error  # (every run diverged: each is recorded below)
    if stopped_by and module.updates == 0:
        return []  # a signal before the first update: the jobs did not start
    wall = (time.perf_counter() - began) / runs
    history = module.history().cpu()
    group = group_checkpoint(trainer)
    outcomes = []
    tests = {}
    if data.test is not None and cfg.get("test", True) and not stopped_by:
        x, y = (t.to(module.device) for t in data.test)
        with torch.no_grad():
            pred = module.model(x)
            for r in range(runs):  # each run's test metrics as its own run computes them
                tests[r] = test_metrics(data.task, module.loss_fn, pred[r], y[r])
    dead = None  # callbacks.dead_units: each run's, as its solo run counts them at its end
    if has_callback(cfg, DeadUnitCheck) and not stopped_by:
        dead = dead_units(module.model, data.train[0].to(module.device))
    for r in range(runs):
        column = history[:, r]
        if stopping is not None and r in stopping.stopped:  # its own last update
            column = column[: stopping.stopped[r]]
        bad = (~torch.isfinite(column)).nonzero()
        m = {"step": len(column), "wall_time_s": wall, "status": "ok"}
        if len(bad):
            k = int(bad[0])
            column = column[: k + 1]
            m.update(step=k + 1, status="diverged")
            m["train/loss"] = math.inf
            m["error"] = str(DivergenceError.at(k, column[k].item(), lrs[r]))
        else:
            m["train/loss"] = float(column[-1])
            m.update(per_point(module.loss_fn, m, data.train[1][r]))
            if validation.best is not None:
                m["val/loss"] = float(validation.last[r])
                m["val/loss_best"] = float(validation.best[r])
                m.update(validation.metrics(r))
            m.update({f"test/{k}": v for k, v in tests.get(r, {}).items()})
            if stopped_by:
                m["status"] = "interrupted"
                m["error"] = f"{stopped_by}: run interrupted at step {len(column)}"
        validations = validation.of_run(r, len(column))
        best_ckpt = keeper.checkpoints.get(r) if keeper is not None else None
        if m["status"] == "diverged":  # what its solo run last saved: its best, or its start
            ckpt = best_ckpt or start.checkpoint(trainer, cfgs[r], r)
        else:
            previous = stopping.previous[r] if stopping is not None else math.inf
            val = validation.losses_of_run(r, len(column))
            best = None if validation.best is None else validation.best[r]
            if stopping is not None and r in stopping.at_stop:  # as it was when it stopped
                g, opt = stopping.at_stop[r]
            else:
                g, opt = group, optimizer_state(trainer, cfgs[r], r)
            ckpt = run_checkpoint(g, opt, cfgs[r], r, column, val, best, previous)
        units = of_run(dead, r) if dead and m["status"] != "diverged" else None
        outcomes.append(RunOutcome(column.unsqueeze(1), m, validations, ckpt, best_ckpt, units))
    return outcomes
