"""A batched sweep's group: runs that differ only in seed and per-group optimizer options,
trained as one run of the pipeline over a run dimension.

Each run's data and weights are drawn exactly as its own run would draw them (one generator
seeded with its seed); they are stacked along a leading run dimension (the models' restart
dimension), so one Lightning step is one update of every run. The module holds each run's
stop rule, validation and test (``module.run_group``), the Trainer is ``build_trainer``'s,
each run's checkpoints are cut from the group's (``callbacks.group_checkpoints``). Per-run
options go through ``optim.per_run``: ``RunByRun`` (exact: each run's slice stepped as its
own run steps it) or ``PerRunLearningRates``. Each run's results come back separately.
"""

import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from gradlab.callbacks import FigureLogger, RunCheckpoint
from gradlab.callbacks.group_checkpoints import GroupCheckpoints
from gradlab.callbacks.per_run import INSTRUMENTS, PerRunCallbacks
from gradlab.data.base import FullBatchDataModule
from gradlab.errors import DivergenceError
from gradlab.module.run_checkpoint import stack_run_checkpoints
from gradlab.module.run_group import RunGroup
from gradlab.optim.per_run import (
    PerRunLearningRates,
    RunByRun,
    first_runs,
    group_options,
    param_group_of_run,
    rates_step_run_by_run,
    stacked_state,
)
from gradlab.pipeline.build import (
    build_module,
    build_optimizer,
    build_trainer,
    built_callbacks,
    has_callback,
    keeps_best,
    target_class,
)
from gradlab.pipeline.checkpoint_io import load_checkpoint
from gradlab.pipeline.library_output import HELD_CHECKPOINT
from gradlab.pipeline.process_state import torch_settings
from gradlab.pipeline.results import end_of_run, interrupted, run_metrics
from gradlab.pipeline.run import check_same_run, draw_stacked
from gradlab.pipeline.signals import fit_until_stopped
from gradlab.pipeline.validate import (
    check_model_fits_data,
    check_optimizer,
    check_run_values,
    validate,
)


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

        self.grid = getattr(first, "grid", None)  # (a 2-D grid's shape: the same for all)
        self.train = stack([d.train for d in datas])
        self.val = stack([d.val for d in datas])
        self.test = stack([d.test for d in datas])

    def of_run(self, r: int) -> FullBatchDataModule:
        """Run ``r``'s data set (in tensors of its own, as its solo run's)."""
        data = FullBatchDataModule()
        data.task, data.num_classes, data.grid = self.task, self.num_classes, self.grid
        for split in ("train", "val", "test"):
            stacked = getattr(self, split)
            setattr(data, split, None if stacked is None else tuple(t[r].clone() for t in stacked))
        return data


@dataclass
class RunOutcome:
    """One run of a batched training: its loss per update and its final metrics."""

    history: torch.Tensor
    metrics: dict = field(default_factory=dict)
    validations: list[tuple[int, dict]] = field(default_factory=list)  # (updates, val/*)
    checkpoint: dict | None = None  # its last.ckpt, as its solo run would write it
    best_checkpoint: dict | None = None  # its best.ckpt (its lowest validation loss)
    resumed_at: int = 0  # the update it resumed at (its logger runs have what came before)
    error: BaseException | None = None  # how it failed (its solo run's error), if it did
    trace: list[str] | None = None  # callbacks.trace: what its solo run prints
    rates: dict[int, float] | None = None  # a scheduled run's rate where it is logged
    recorder: object = None  # what its instruments logged (callbacks.per_run.Recorder)


def train_group(cfgs: list[DictConfig], exact: bool = True, resume=None) -> list[RunOutcome]:
    """Train ``cfgs`` (equal but for the keys in BATCHABLE) as one vectorized run; ``exact``:
    each run's matmuls and optimizer step as its own run computes them (bit-identical to it),
    else torch's batched matmul and one optimizer step for all runs (faster for many runs;
    then only seed and optim.lr may differ: BATCHABLE_INEXACT); ``resume``: each run's
    ``last.ckpt`` to continue from (runs stopped at other updates: one group each). No
    outcome when a signal came before the first update (resuming: None for each run left as
    it was)."""
    cfg = cfgs[0]
    validate(cfg)  # the pipeline's checks; the others differ only in batchable values:
    checked = {str(group_options(cfg))}
    for c in cfgs[1:]:
        check_run_values(c)
        options = str(group_options(c))
        if options not in checked:  # torch's own checks of momentum, betas, ...
            checked.add(options)
            check_optimizer(c)
    with torch_settings(cfg):
        if not resume:
            return _train(cfgs, cfg, exact)
        ckpts = [load_checkpoint(path) for path in resume]
        for c, ckpt in zip(cfgs, ckpts, strict=True):
            check_same_run(ckpt["gradlab"].get("config") or {}, c)
        parts: dict[tuple, list[int]] = {}  # runs at the same update, validated alike
        for r, ckpt in enumerate(ckpts):
            state = ckpt["gradlab"]
            key = (state["updates"], *(n for n, _ in state["val_history"]))
            parts.setdefault(key, []).append(r)
        outcomes = {}
        for runs in parts.values():
            mine = _train([cfgs[r] for r in runs], cfg, exact, [ckpts[r] for r in runs])
            if not mine:  # a signal: the others are left as they are
                break
            outcomes.update(zip(runs, mine, strict=True))
        return [outcomes.get(r) for r in range(len(cfgs))] if outcomes else []


def _train(cfgs: list[DictConfig], cfg: DictConfig, exact: bool, ckpts=None) -> list[RunOutcome]:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datas, model = draw_stacked(cfgs)  # each run as its own run draws it
    lrs = [float(c.optim.lr) for c in cfgs]
    scheduled = bool(cfg.get("scheduler"))
    exact = exact or rates_step_run_by_run(scheduled, lrs)  # (the launcher says so: mode_of)
    if exact:
        model.round_as_solo_runs()
    data = StackedData(datas)
    module = build_module(cfg, model, data)
    check_model_fits_data(cfg, datas[0], model, module.loss_fn)  # as a solo run checks it
    del datas  # (stacked: each run's own copy is not needed)
    module.group = runs = RunGroup(len(cfgs), module.stop_tol, bool(cfg.get("logger")))
    if exact:
        options = [group_options(c) for c in cfgs]
        module.optimizer_factory = partial(
            RunByRun, optimizer=build_optimizer(cfg), options=options
        )
    elif len(set(lrs)) > 1:
        module.optimizer_factory = partial(
            PerRunLearningRates, optimizer=build_optimizer(cfg), lrs=lrs
        )
    checkpoints = GroupCheckpoints(cfgs, keep_best=data.val is not None and keeps_best(cfg))
    saves = has_callback(cfg, RunCheckpoint)  # (callbacks.model_checkpoint=null: no files)
    rates = ScheduledRates() if scheduled else None  # each run's rate where it is logged
    instruments = built_callbacks(cfg, INSTRUMENTS, where=runs_per_run)
    dirs = [str(c.paths.output_dir) for c in cfgs]
    each = PerRunCallbacks(instruments, data.of_run, dirs, runs.logged) if instruments else None
    own = [checkpoints] * saves + [rates] * scheduled + [each] * bool(each)
    trainer = build_trainer(cfg, data, group_callbacks=own)
    data.set_steps(cfg.trainer.max_steps)
    ckpt_path = None
    if ckpts:  # each run continues where its last.ckpt left it, as its solo run would
        states = [c["optimizer_states"][0] for c in ckpts]
        opt = stacked_state(states, options if exact else None, lrs)
        keep = {c.state_key for c in trainer.callbacks}  # (a max_time's Timer)
        firsts = first_runs(options if exact else None)  # (their schedulers' states)
        trainer.strategy.checkpoint_io.to_load = stack_run_checkpoints(ckpts, opt, keep, firsts)
        runs.resume([c["gradlab"] for c in ckpts])
        checkpoints.resume(ckpts)
        ckpt_path = HELD_CHECKPOINT  # (stacked in memory: HeldCheckpointIO)
    began = time.perf_counter()
    # Ctrl-C and SIGTERM stop every run between two updates, as they stop a solo run
    stopped_by, error = fit_until_stopped(trainer, module, data, ckpt_path)
    if error is not None and not isinstance(error, DivergenceError):
        raise error  # (every run diverged: each is recorded below)
    if stopped_by and module.updates == runs.resumed_at:
        return []  # a signal before the first update: the jobs are as they were
    wall = (time.perf_counter() - began) / len(cfgs)
    if data.test is not None and cfg.get("test", True) and not stopped_by and error is None:
        trainer.test(module, datamodule=data, verbose=False)  # each run's: runs.tests
    history, outcomes = module.history().cpu(), []
    rate = learning_rate(cfg)
    for r in range(len(cfgs)):
        column = runs.history_of_run(history, r)
        last = checkpoints.last(trainer, r, history, column) if saves else None
        diverged = runs.divergence(column, cfgs[r].optim.lr)  # (as set: 3, not 3.0)
        scheduled_rates = rates.of_run(trainer.optimizers[0], r) if rates else None
        lr = rate(cfgs[r].optim.lr, runs.resumed_at, len(column), scheduled_rates)
        logged, error = lr, diverged
        if runs.seen[r]:  # its last validation (a diverged run's: the last one before)
            logged.update({"val/loss": runs.last[r], "val/loss_best": runs.best[r]})
            logged.update(runs.metrics(r))
        if diverged is None:
            logged.update({f"test/{k}": v for k, v in runs.tests.get(r, {}).items()})
            if stopped_by:
                kept = Path(cfgs[r].paths.output_dir) / "checkpoints" / "last.ckpt"
                error = interrupted(stopped_by, len(column), kept if last is not None else None)
        end = {"train/loss": math.inf if diverged else float(column[-1]),
               **(each.summaries[r] if each else {}),  # (its instruments' final values)
               **end_of_run(len(column), wall, error)}  # fmt: skip
        m = run_metrics(logged, end, module.loss_fn, data.train[1][r], cfgs[r])
        validations = runs.validations_of_run(r, len(column) - bool(diverged), not diverged)
        outcomes.append(RunOutcome(
            column.unsqueeze(1), m, validations, last,
            checkpoints.best(trainer, r, history) if saves else None, runs.resumed_at,
            error, each.printers[r].lines if each else None,
            scheduled_rates, each.recorders[r] if each else None,
        ))  # fmt: skip
    return outcomes


def runs_per_run(node) -> bool:
    """Whether a configured instrument is one a group runs per run: a FigureLogger only where
    a sweep job's draws (``in_sweeps``, ``plot_every_n_steps``); each run's would else be
    called at every update for nothing."""
    if target_class(node) is not FigureLogger:
        return True
    return bool(node.get("in_sweeps") or node.get("plot_every_n_steps"))


def learning_rate(cfg: DictConfig):
    """(lr, first, updates, scheduled) -> ``{"lr-<Optimizer>": lr}`` as a solo run's
    metrics.json holds it after updates ``first`` to ``updates``: Lightning's
    LearningRateMonitor logs it every ``log_every_n_steps`` updates where the run has a logger
    (a tensor of the run's dtype; ``scheduled``: the run's rates where logged, else ``lr``)."""
    if not cfg.get("logger") or not (cfg.get("callbacks") or {}).get("lr_monitor"):
        return lambda lr, first, updates, scheduled=None: {}
    every, name = cfg.trainer.log_every_n_steps, f"lr-{build_optimizer(cfg).func.__name__}"

    def rate(lr: float, first: int, updates: int, scheduled: dict | None = None) -> dict:
        if updates // every == first // every:  # not logged in this session yet
            return {}
        if scheduled:  # its rate at its last log step
            lr = scheduled[updates // every * every - 1]
        return {name: torch.tensor(lr, dtype=torch.get_default_dtype())}  # (torch_settings)

    return rate


class ScheduledRates(L.Callback):
    """Each param group's learning rate at the start of every update that Lightning's
    LearningRateMonitor logs (``logging_interval: step``): a scheduled group's runs' rates."""

    def __init__(self):
        self.at: dict[int, list] = {}  # update -> each param group's rate

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        i = pl_module.updates
        if (i + 1) % trainer.log_every_n_steps == 0:
            self.at[i] = [g["lr"] for g in trainer.optimizers[0].param_groups]

    def of_run(self, optimizer, r: int) -> dict[int, float]:
        """Run ``r``'s rates (its param group's)."""
        g = param_group_of_run(optimizer, r)[0]
        return {i: rates[g] for i, rates in self.at.items()}
