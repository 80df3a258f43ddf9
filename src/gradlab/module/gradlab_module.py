"""The LightningModule: any model from ``gradlab.models`` with a loss and an optimizer.

One Lightning training step is one optimizer update (for BFGS / L-BFGS: one iteration), so
``global_step``, ``max_steps``, logging, validation and checkpoint intervals and every
callback hook count updates. Gradients come from ``gradlab.module.gradients`` (autograd, the
model's hand-derived backward, or both compared); the configured optimizer applies them
through Lightning's manual optimization (``self.optimizers()``, ``opt.step()``).

Instantiated from its own config node (``module:`` in config.yaml: the run's groups and its
options; ``pipeline.build.build_module`` adds the drawn model): its hyperparameters are that
node (plain data), so ``load_from_checkpoint(path)`` rebuilds it from gradlab's classes.
"""

import math
from types import SimpleNamespace

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import nn

from gradlab.errors import DivergenceError
from gradlab.models.losses import get_loss
from gradlab.models.restarts import copy_into_restart, num_restarts, single_restart
from gradlab.module.evaluation import Evaluation
from gradlab.module.grad_compare import log_check, report_check
from gradlab.module.gradients import GradientSource, clip_per_restart
from gradlab.module.loss_history import LossHistory, first_nonfinite, is_log_step
from gradlab.module.run_checkpoint import gradlab_state
from gradlab.module.run_group import settled
from gradlab.optim import is_minimizer


def _plain(node):
    """A config node as plain containers (hyperparameters are data, not OmegaConf objects)."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


class GradLabModule(Evaluation, L.LightningModule):
    def __init__(
        self,
        model: dict,
        optim: dict,
        scheduler: dict | None = None,
        loss: dict | None = None,
        grads: dict | None = None,
        restarts: int = 1,
        grad_clip: float | None = None,
        track_params: bool = False,
        trajectory_budget_mb: float = 64.0,
        stop_tol: float | None = None,
        task: str = "regression",
        num_classes: int | None = None,
        net: nn.Module | None = None,
        optimizer=None,
        lr_scheduler=None,
    ):
        """The run's config groups, ``restarts`` and options (``module:`` in config.yaml), the
        data set's task; ``net``, ``optimizer``, ``lr_scheduler``: built by the pipeline (or,
        from a checkpoint, from the configs)."""
        super().__init__()
        model, optim, scheduler = _plain(model), _plain(optim), _plain(scheduler) or None
        loss, grads = _plain(loss) or {"name": "mse"}, _plain(grads) or {"mode": "autograd"}
        # (logger=False: the loggers get the run's flat hyperparameters at the end instead)
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_scheduler"], logger=False)
        self.automatic_optimization = False
        if net is None or optimizer is None:
            net, optimizer, lr_scheduler = self._build_from_configs(net)
        self.model = net
        self.loss_fn = get_loss(loss["name"])
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        every, tol = grads.get("every_n_steps", 100), grads.get("tol", 1e-4)
        self.gradients = GradientSource(grads["mode"], self.loss_fn, net, every, tol)
        self.log_every_n_steps = 50  # the trainer's, read when fit starts
        self.grad_clip, self.stop_tol = grad_clip, stop_tol
        self.restarts = num_restarts(net)
        # BFGS / L-BFGS couple parameters through their line search: restarts run one after
        # another on single-restart copies, one iteration per step
        self.is_minimizer = is_minimizer(getattr(optimizer, "func", None))
        if self.is_minimizer and grad_clip:
            raise ValueError("module.grad_clip: BFGS / L-BFGS take no gradient clipping")
        self.singles = (
            nn.ModuleList([single_restart(net, r) for r in range(self.restarts)])
            if self.is_minimizer and self.restarts > 1
            else None
        )
        self.run_config: dict | None = None  # the composed Hydra config, stored in checkpoints
        self.group = None  # RunGroup: the restart dimension holds a batched sweep's runs
        # per-update bookkeeping in a plain namespace: nn.Module's attribute hooks would cost
        # more than a tiny model's whole update
        self.progress = SimpleNamespace(
            updates=0,  # optimizer updates (minimizer iterations) done; = global_step
            restart=0,  # the restart a minimizer is working on
            last_losses=torch.full((self.restarts,), math.inf),  # latest loss per restart
            previous_loss=math.inf,
            checked=0,  # updates whose loss is known to be finite
            stopped=False,  # the run stopped itself (stop_tol, its minimizer converged)
        )
        budget = int(trajectory_budget_mb * 2**20 / torch.finfo(torch.get_default_dtype()).bits * 8)
        self.loss_history = LossHistory(
            self.restarts, track_params=track_params, budget_values=budget
        )
        self.summary_lines: list[str] = []  # instruments add lines to the end-of-run summary
        self.final_metrics: dict[str, float] = {}  # ... and final values to metrics.json
        self.setup_metrics(task, num_classes)

    def _build_from_configs(self, net):
        """Model, optimizer and scheduler from the stored configs: gradlab's own classes only."""
        from gradlab.instantiate import build, build_model_shell

        hp = self.hparams
        if net is None:  # its weights come from the checkpoint's state_dict
            net = build_model_shell(OmegaConf.create(hp.model), hp.restarts, False)
        optimizer = build("optim", OmegaConf.create(hp.optim), False)
        scheduler = hp.scheduler or None  # scheduler=none: an empty node
        if scheduler is not None:
            scheduler = build("scheduler", OmegaConf.create(scheduler), False)
        return net, optimizer, scheduler

    # ---------------------------------------------------------- public interface
    @property
    def updates(self) -> int:
        """Optimizer updates (minimizer iterations) done so far."""
        return self.progress.updates

    @property
    def last_losses(self) -> torch.Tensor:
        """The latest training loss of each restart."""
        return self.progress.last_losses

    @property
    def lr(self) -> float:
        """The current learning rate (of the first parameter group)."""
        opts = self.optimizers()
        opt = opts[0] if isinstance(opts, list) else opts
        return opt.param_groups[0]["lr"]

    @property
    def check_tol(self) -> float:
        return self.gradients.check_tol

    def add_summary(self, line: str, **metrics: float) -> None:
        """A line for the end-of-run summary and final values for metrics.json (instruments)."""
        if line:
            self.summary_lines.append(line)
        self.final_metrics.update(metrics)

    def history(self) -> torch.Tensor:
        """Loss of every restart at every update so far, shape (updates, restarts)."""
        return self.loss_history.table()

    def trajectory(self, with_start: bool = False) -> torch.Tensor | None:
        """Every parameter after every update (``track_params``); optionally the start first."""
        return self.loss_history.trajectory(with_start)

    # ----------------------------------------------------------------- optimizers
    def configure_optimizers(self):
        if self.singles is not None:
            return [self.optimizer_factory(s.parameters()) for s in self.singles]
        opt = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return opt
        sched = self.scheduler_factory(optimizer=opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_fit_start(self) -> None:
        self.log_every_n_steps = max(int(self.trainer.log_every_n_steps), 1)
        self.gradients.world_size = self.trainer.world_size
        # autograd's backward: through Lightning's manual_backward where it does something
        # (loss scaling under mixed precision, gradient sync under DDP); in float32/float64
        # on one device it would only add two rounds of on_before/after_backward hooks over
        # every callback (5 hook calls per callback per update instead of 3), hooks no
        # gradlab callback uses and the hand-gradient path skips too
        plain = self.trainer.world_size == 1 and self.trainer.precision in ("32-true", "64-true")
        self.gradients.backward = torch.Tensor.backward if plain else self.manual_backward
        self.loss_history.to(self.device)
        self.progress.last_losses = self.progress.last_losses.to(self.device)
        self.loss_history.start(self.model)

    def on_train_start(self) -> None:
        opts = self.optimizers()
        self.opts = opts if isinstance(opts, list) else [opts]
        scheds = self.lr_schedulers()
        self.scheduler = scheds[0] if isinstance(scheds, list) else scheds
        self.check_at_log_steps = self.device.type != "cpu"
        self.progress.checked = self.progress.updates  # updates whose loss was checked to be finite
        self.max_steps = self.trainer.max_steps

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        """One optimizer update (or one minimizer iteration)."""
        x, y = batch
        if self.is_minimizer:
            return self._minimizer_step(x, y)
        update = self.progress.updates
        losses = self.gradients.fill(self.model, x, y, update)
        if self.gradients.mode == "check" and update % self.gradients.check_every == 0:
            log_check(self.loggers, self.gradients.last_check, update)
        if self.grad_clip:
            clip_per_restart(list(self.model.parameters()), self.grad_clip, self.restarts)
        self.opts[0].step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.progress.last_losses = losses.detach().reshape(-1)
        self._record(losses)
        return None

    def _minimizer_step(self, x, y):
        """One iteration of the current restart; the next starts once this one converges."""
        r = self.progress.restart
        model = self.singles[r] if self.singles is not None else self.model

        def closure():
            return self.gradients.fill(model, x, y, self.progress.updates).sum()

        opt = self.opts[r]
        loss = torch.as_tensor(opt.step(closure=closure), device=self.device)
        losses = torch.full((self.restarts,), math.nan, device=self.device)
        losses[r] = loss
        self.progress.last_losses[r] = loss
        if self.singles is not None:
            copy_into_restart(self.model, r, model)
        if opt.optimizer.converged:
            self.progress.restart += 1
            if self.progress.restart >= self.restarts:
                self.trainer.should_stop = self.progress.stopped = True
        self._record(losses)
        return None

    def _record(self, losses: torch.Tensor) -> None:
        i = self.loss_history.append(losses, self.model)
        self.progress.updates = i + 1
        log = is_log_step(i, self.log_every_n_steps, self.max_steps)
        if log:
            self._log_loss(i)
        if not self.check_at_log_steps:  # CPU: this update's loss, one host read
            row = self.loss_history.best(i).item()
            if not math.isfinite(row):
                self._check_finite(i)
        elif log:  # GPU: at log steps only, so training does not wait for the device every step
            self._check_finite(self.progress.checked)
            self.progress.checked = self.progress.updates
        if self.group is not None:  # a group's runs: each its own stop rule (module.run_group)
            self.trainer.should_stop |= self.group.after_update(self.model, losses, i + 1)
        elif self.stop_tol is not None:  # stop when the loss changes by less than stop_tol
            value = self.loss_history.best(i).item()
            if settled(self.progress.previous_loss, value, self.stop_tol):
                self.trainer.should_stop = self.progress.stopped = True
                if not log:  # the curve ends at the run's last update
                    self._log_loss(i)
            self.progress.previous_loss = value

    def _log_loss(self, i: int) -> None:
        """``train/loss`` of update ``i`` (the best restart's) to the bar and the loggers."""
        best = self.loss_history.best(i)
        self.log("train/loss", best, prog_bar=True, logger=False)
        if self.loggers:
            value = best.item()
            for logger in self.loggers:
                logger.log_metrics({"train/loss": value}, step=i)

    def _check_finite(self, first: int) -> None:
        """Fail at the first update since ``first`` whose best loss is not finite."""
        # the best restart: NaN entries (diverged restarts, restarts a minimizer has not
        # reached) count as +inf, so the run fails only when no restart has a finite loss
        rows = self.loss_history.rows(first).nan_to_num(nan=math.inf, posinf=math.inf)
        rows = rows.min(dim=1).values
        bad = first_nonfinite(rows)
        if bad is not None:
            raise DivergenceError.at(first + bad, rows[bad].item(), self.lr)

    def on_train_end(self) -> None:
        report_check(self.gradients)  # grads=check: the worst differences; fails past grads.tol

    @property
    def minimizer_iterations(self) -> int:
        return sum(opt.optimizer.iterations for opt in self.opts) if self.is_minimizer else 0

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # state, not logs: parameter snapshots are written by the history callback
        p = self.progress
        checkpoint["gradlab"] = gradlab_state(
            p.updates, p.restart, self.loss_history.state_dict(with_params=False),
            p.last_losses.cpu(), p.previous_loss, self.val_history, self.run_config,
        )  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gradlab", {})
        self.progress.updates = state.get("updates", 0)
        self.progress.restart = state.get("restart", 0)
        self.progress.previous_loss = state.get("previous_loss", math.inf)
        if state.get("history") is not None:
            self.loss_history.load_state_dict(state["history"])
        if state.get("last_losses") is not None:
            self.progress.last_losses = state["last_losses"]
        self.val_history = [tuple(v) for v in state.get("val_history", [])]
