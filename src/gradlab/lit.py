"""The LightningModule: wraps any model from ``gradlab.models`` with a loss and an optimizer.

One Lightning training step is one optimizer update (for BFGS / L-BFGS: one iteration), so
``global_step``, ``max_steps``, logging, validation and checkpoint intervals and every
callback hook count updates. Gradients come from ``gradlab.gradients`` (autograd, the model's
hand-derived backward, or both compared); the configured optimizer applies them through
Lightning's manual optimization (``self.optimizers()``, ``opt.step()``).
"""

import math
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
import torchmetrics
from torch import nn

from .errors import DivergenceError, GradCheckError
from .gradcheck import GradDiff, format_table
from .gradients import GradientSource
from .loss_history import LossHistory, load_snapshots, sync_snapshots
from .models.losses import Loss, get_loss
from .models.restarts import num_restarts, solo, write_back
from .optim import is_minimizer

__all__ = ["DivergenceError", "GradCheckError", "GradLabModule"]

TRAJECTORY_DIR = "trajectory"  # <run dir>/trajectory/chunk_<n>.pt: parameter snapshots


def clip_per_restart(params: list[torch.Tensor], max_norm: float, restarts: int) -> None:
    """Scale each restart's gradient to norm <= max_norm (restarts stay independent)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if restarts > 1:  # leading restart dimension: one norm per restart
        norms = torch.stack([g.reshape(restarts, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    else:
        norms = torch.stack([g.pow(2).sum() for g in grads]).sum().sqrt().reshape(1)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.reshape(-1, *[1] * (g.dim() - 1)) if restarts > 1 else scale[0])


class GradLabModule(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        optimizer: partial,
        loss: str | Loss = "mse",
        scheduler: partial | None = None,
        grads: str = "autograd",
        log_every_n_steps: int = 50,
        grad_clip: float | None = None,
        check_every_n_steps: int = 100,
        check_tol: float = 1e-4,
        track_params: bool = False,
        trajectory_budget_mb: float = 64.0,
        stop_tol: float | None = None,
        task: str = "regression",
        num_classes: int | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.loss_fn = get_loss(loss) if isinstance(loss, str) else loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.gradients = GradientSource(grads, self.loss_fn, model, check_every_n_steps, check_tol)
        self.log_every_n_steps = max(int(log_every_n_steps), 1)
        self.grad_clip = grad_clip
        self.stop_tol = stop_tol
        self.task = task
        self.restarts = num_restarts(model)
        # BFGS / L-BFGS couple parameters through their line search: restarts run one after
        # another on single-restart copies, one iteration per step
        self.is_minimizer = is_minimizer(getattr(optimizer, "func", None))
        if self.is_minimizer and grad_clip:
            raise ValueError("module.grad_clip: BFGS / L-BFGS take no gradient clipping")
        self.solos = (
            nn.ModuleList([solo(model, r) for r in range(self.restarts)])
            if self.is_minimizer and self.restarts > 1
            else None
        )
        self.run_config: dict | None = None  # the composed Hydra config, stored in checkpoints
        # per-update bookkeeping in a plain namespace: nn.Module's attribute hooks would cost
        # more than a tiny model's whole update
        self.progress = SimpleNamespace(
            updates=0,  # optimizer updates (minimizer iterations) done; = global_step
            restart=0,  # the restart a minimizer is working on
            last_losses=torch.full((self.restarts,), math.inf),  # latest loss per restart
            previous_loss=math.inf,
            checked=0,  # updates whose loss is known to be finite
        )
        self.loss_history = LossHistory(
            self.restarts,
            track_params=track_params,
            budget_values=int(trajectory_budget_mb * 2**20 / 4),
        )
        self.summary_lines: list[str] = []  # instruments add lines to the end-of-run summary
        self.final_metrics: dict[str, float] = {}  # ... and final values to metrics.json

        self.val_best = torchmetrics.MinMetric()
        self.val_best.persistent(True)  # the best-so-far goes into checkpoints: resume keeps it
        if task == "classification":
            self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        elif task == "regression":
            self.val_mse, self.test_mse = (
                torchmetrics.MeanSquaredError(),
                torchmetrics.MeanSquaredError(),
            )
            self.val_r2, self.test_r2 = torchmetrics.R2Score(), torchmetrics.R2Score()

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

    @property
    def gradcheck_rows(self) -> dict[str, GradDiff]:
        return self.gradients.worst

    def add_summary(self, line: str, **metrics: float) -> None:
        """A line for the end-of-run summary and final values for metrics.json (instruments)."""
        if line:
            self.summary_lines.append(line)
        self.final_metrics.update(metrics)

    def history(self) -> torch.Tensor:
        """Loss of every restart at every update so far, shape (updates, restarts)."""
        return self.loss_history.table()

    def history_tail(self) -> torch.Tensor | None:
        """The best restart's loss at the latest update (a device tensor, no sync)."""
        n = self.loss_history.length
        return None if n == 0 else self.loss_history.best(n - 1)

    def trajectory_steps(self) -> torch.Tensor:
        """Updates done at each snapshot of ``trajectory()`` (thinned for large models)."""
        return self.loss_history.snapshot_steps()

    @property
    def trajectory_every_update(self) -> bool:
        return self.loss_history.every_update

    def trajectory(self, with_start: bool = False) -> torch.Tensor | None:
        """Every parameter after every update (``track_params``); optionally the start first."""
        return self.loss_history.trajectory(with_start)

    # ----------------------------------------------------------------- optimizers
    def configure_optimizers(self):
        if self.solos is not None:
            return [self.optimizer_factory(s.parameters()) for s in self.solos]
        opt = self.optimizer_factory(self.model.parameters())
        if self.scheduler_factory is None:
            return opt
        sched = self.scheduler_factory(optimizer=opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_fit_start(self) -> None:
        self.gradients.world_size = self.trainer.world_size
        self.gradients.backward = self.manual_backward  # Lightning's hooks and precision
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
            self._log_check(self.gradients.last_check)
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
        model = self.solos[r] if self.solos is not None else self.model

        def closure():
            return self.gradients.fill(model, x, y, self.progress.updates).sum()

        opt = self.opts[r]
        loss = torch.as_tensor(opt.step(closure=closure), device=self.device)
        losses = torch.full((self.restarts,), math.nan, device=self.device)
        losses[r] = loss
        self.progress.last_losses[r] = loss
        if self.solos is not None:
            write_back(self.model, r, model)
        if opt.optimizer.converged:
            self.progress.restart += 1
            if self.progress.restart >= self.restarts:
                self.trainer.should_stop = True
        self._record(losses)
        return None

    def _record(self, losses: torch.Tensor) -> None:
        i = self.loss_history.append(losses, self.model)
        self.progress.updates = i + 1
        log = (i + 1) % self.log_every_n_steps == 0 or i == 0 or i + 1 == self.max_steps
        if log:  # Lightning's cadence (updates n - 1, 2n - 1, ...), the first and the last
            best = self.loss_history.best(i)
            self.log("train/loss", best, prog_bar=True, logger=False)
            if self.loggers:
                value = best.item()
                for logger in self.loggers:
                    logger.log_metrics({"train/loss": value}, step=i)
        if not self.check_at_log_steps:  # CPU: this update's loss, one host read
            row = self.loss_history.best(i).item()
            if not math.isfinite(row):
                self._check_finite(i)
        elif log:  # GPU: at log steps only, so training does not wait for the device every step
            self._check_finite(self.progress.checked)
            self.progress.checked = self.progress.updates
        if self.stop_tol is not None:  # stop when the loss changes by less than stop_tol
            value = self.loss_history.best(i).item()
            if abs(self.progress.previous_loss - value) < self.stop_tol:
                self.trainer.should_stop = True
            self.progress.previous_loss = value

    def _check_finite(self, first: int) -> None:
        """Fail at the first update since ``first`` whose best loss is not finite."""
        # the best restart: NaN entries (diverged restarts, restarts a minimizer has not
        # reached) count as +inf, so the run fails only when no restart has a finite loss
        rows = (
            self.loss_history.rows(first)
            .nan_to_num(nan=math.inf, posinf=math.inf)
            .min(dim=1)
            .values
        )
        bad = ~torch.isfinite(rows)
        if bad.any():
            i = first + int(bad.nonzero()[0])
            raise DivergenceError(
                f"optim.lr: training diverged at step {i} (loss = {rows[i - first].item()}, "
                f"lr = {self.lr}); lower optim.lr"
            )

    def _log_check(self, rows: list[GradDiff]) -> None:
        if self.loggers:
            values = {f"gradcheck/{r.name}/max_abs": r.max_abs for r in rows}
            values.update({f"gradcheck/{r.name}/max_rel": r.max_rel for r in rows})
            for logger in self.loggers:
                logger.log_metrics(values, step=self.progress.updates)

    def on_train_end(self) -> None:
        rows = list(self.gradients.worst.values())
        if self.gradients.mode == "check" and rows:
            print("\nGradient check (worst over checked steps, manual vs autograd):")
            print(format_table(rows, self.check_tol))
            bad = self.gradients.failures()
            if bad:
                raise GradCheckError(
                    f"grads.tol: gradient check failed for {', '.join(bad)}: relative difference > "
                    f"grads.tol={self.check_tol}"
                )

    @property
    def minimizer_iterations(self) -> int:
        return sum(opt.optimizer.iterations for opt in self.opts) if self.is_minimizer else 0

    # ----------------------------------------------------------------- evaluation
    @property
    def best_restart(self) -> int:
        if self.restarts == 1:
            return 0
        last = self.progress.last_losses.nan_to_num(nan=math.inf, posinf=math.inf)
        return int(torch.argmin(last))

    def predict_best(self, x: torch.Tensor) -> torch.Tensor:
        pred = self.model(x)
        if self.restarts > 1:
            pred = pred[self.best_restart]
        return pred

    def _evaluate(self, batch, stage: str) -> None:
        x, y = batch
        pred = self.predict_best(x)
        self.log(f"{stage}/loss", self.loss_fn(pred, y))
        if self.task == "regression":
            mse, r2 = getattr(self, f"{stage}_mse"), getattr(self, f"{stage}_r2")
            mse(pred.flatten(), y.flatten())
            r2(pred.flatten(), y.flatten())
            self.log(f"{stage}/mse", mse)
            self.log(f"{stage}/r2", r2)
        elif self.task == "classification":
            acc = getattr(self, f"{stage}_acc")
            acc(pred.argmax(-1), y)
            self.log(f"{stage}/acc", acc)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("val/loss")
        if loss is not None and not self.trainer.sanity_checking:
            self.val_best(loss)
            self.log("val/loss_best", self.val_best.compute())
            # logged at the number of updates done (Lightning would use the last batch index)
            self.log("step", float(self.progress.updates))

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    # ---------------------------------------------------------------- results
    def restart_summary(self) -> dict[str, float]:
        if self.restarts == 1:
            return {}
        last = self.progress.last_losses.cpu()
        return {
            "restarts/best_loss": float(last.nan_to_num(nan=math.inf, posinf=math.inf).min()),
            "restarts/median_loss": float(last.median()),
            "restarts/worst_loss": float(last.max()),
            "restarts/best_index": self.best_restart,
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # a checkpoint holds state, not logs: a large trajectory lives in the run directory,
        # one file per snapshot written as the run goes, which resuming reads back
        history = self.loss_history.state_dict(with_params=False)
        if self.loss_history.params is not None:
            run = Path(self.trainer.default_root_dir)
            history["snapshot_steps"] = sync_snapshots(self.loss_history, run / TRAJECTORY_DIR)
            history["trajectory_dir"] = TRAJECTORY_DIR
        checkpoint["gradlab"] = {
            "updates": self.progress.updates,
            "restart": self.progress.restart,
            "history": history,
            "last_losses": self.progress.last_losses.cpu(),
            "previous_loss": self.progress.previous_loss,
            "config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gradlab", {})
        self.progress.updates = state.get("updates", 0)
        self.progress.restart = state.get("restart", 0)
        self.progress.previous_loss = state.get("previous_loss", math.inf)
        history = state.get("history")
        if history is not None and history.get("trajectory_dir") and self.trainer.ckpt_path:
            run = Path(self.trainer.ckpt_path).resolve().parent.parent  # run/checkpoints/x.ckpt
            steps = history["snapshot_steps"]
            history = {**history, "params": load_snapshots(run / history["trajectory_dir"], steps)}
        if history is not None:
            self.loss_history.load_state_dict(history)
        if state.get("last_losses") is not None:
            self.progress.last_losses = state["last_losses"]
