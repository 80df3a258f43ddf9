"""The LightningModule: wraps any model from ``gradlab.models`` with a loss and an optimizer.

Gradients come from autograd (``grads="autograd"``), from the model's own hand-derived
``manual_backward`` (``grads="manual"``), or from both, compared (``grads="check"``).
Either way the configured optimizer applies them, so the modes differ only in where
the gradients come from. Optimization is always Lightning's manual optimization: it
is the cheaper path for thousands of tiny full-batch steps.
"""

import inspect
import math
from functools import partial
from types import SimpleNamespace

import lightning as L
import torch
import torchmetrics
from torch import nn

from .gradcheck import GradDiff, compare_gradients, format_table
from .models.losses import Loss, get_loss
from .models.restarts import num_restarts, solo, write_back
from .optim import BFGS

MODES = ("autograd", "manual", "check")
MINIMIZERS = (torch.optim.LBFGS, BFGS)  # optimizers whose step(closure) runs to convergence


def is_minimizer(optimizer_class) -> bool:
    """Whether one ``step(closure)`` of this optimizer class is a whole minimization."""
    return isinstance(optimizer_class, type) and issubclass(optimizer_class, MINIMIZERS)


class DivergenceError(RuntimeError):
    """The training loss became non-finite."""


class GradCheckError(RuntimeError):
    """Hand-derived and autograd gradients disagree beyond tolerance."""


class GradLabModule(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        optimizer: partial,
        loss: str | Loss = "mse",
        scheduler: partial | None = None,
        grads: str = "autograd",
        log_every_n_steps: int = 50,
        updates_per_step: int = 1,
        grad_clip: float | None = None,
        check_every_n_steps: int = 100,
        check_tol: float = 1e-4,
        track_params: bool = False,
        stop_tol: float | None = None,
        max_updates: int = 1000,
        task: str = "regression",
        num_classes: int | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.loss_fn = get_loss(loss) if isinstance(loss, str) else loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        if grads not in MODES:
            raise ValueError(f"grads.mode: unknown mode {grads!r}; choose one of {list(MODES)}")
        if grads != "autograd" and not callable(getattr(model, "manual_backward", None)):
            raise ValueError(
                f"grads={grads}: model {type(model).__name__} has no hand-written backward "
                "(manual_backward); use grads=autograd"
            )
        self.mode = grads
        # training never needs dL/dx: skip it where the model offers that (input_grad=False);
        # a model written against the plain contract manual_backward(dL/dy) works unchanged
        self._backward_kwargs = (
            {"input_grad": False}
            if grads != "autograd"
            and "input_grad" in inspect.signature(model.manual_backward).parameters
            else {}
        )
        self.log_every_n_steps = max(int(log_every_n_steps), 1)
        self.updates_per_step = int(updates_per_step)
        if self.updates_per_step < 1:
            raise ValueError(f"module.updates_per_step: must be >= 1, got {updates_per_step}")
        self.grad_clip = grad_clip
        self.check_every_n_steps = max(int(check_every_n_steps), 1)
        self.check_tol = check_tol
        self.track_params = track_params
        self.stop_tol = stop_tol
        self.task = task
        self.restarts = num_restarts(model)
        # (L-)BFGS minimizes to convergence in one step and couples parameters through its
        # line search: restarts run one after another
        self.is_minimizer = is_minimizer(getattr(optimizer, "func", None))
        self.solos = (
            nn.ModuleList([solo(model, r) for r in range(self.restarts)])
            if self.is_minimizer and self.restarts > 1
            else None
        )
        self.run_config: dict | None = None  # the composed Hydra config, stored in checkpoints

        # per-update bookkeeping in a plain namespace: cheap to write thousands of times
        self.state = SimpleNamespace(
            updates=0, last_losses=torch.full((self.restarts,), math.inf), previous_loss=math.inf
        )
        self.max_updates = max(int(max_updates), 1)
        self._history = torch.full((self.max_updates, self.restarts), math.nan)
        self._trajectory = None
        self.gradcheck_rows: dict[str, GradDiff] = {}
        self.summary_lines: list[str] = []  # instruments add lines to the end-of-run summary
        self.extra_metrics: dict[str, float] = {}  # ... and final values to metrics.json

        self.val_best = torchmetrics.MinMetric()
        if task == "classification":
            self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        elif task == "regression":
            self.val_mse, self.test_mse = (
                torchmetrics.MeanSquaredError(),
                torchmetrics.MeanSquaredError(),
            )
            self.val_r2, self.test_r2 = torchmetrics.R2Score(), torchmetrics.R2Score()

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
        self._history = self._history.to(self.device)
        self.state.last_losses = self.state.last_losses.to(self.device)
        if self.track_params:
            n = sum(p.numel() for p in self.model.parameters())
            self._trajectory = torch.full((len(self._history), n), math.nan, device=self.device)
            self.initial_params = torch.cat(
                [p.detach().reshape(-1) for p in self.model.parameters()]
            )
            done = getattr(self, "_pending_trajectory", None)
            if done is not None and len(done):
                self._trajectory[: len(done)] = done.to(self.device)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _gradients(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, hooks: bool = True
    ) -> torch.Tensor:
        """Fill ``.grad`` of every parameter; return the loss of each restart."""
        if self.mode == "check" and self.state.updates % self.check_every_n_steps == 0:
            rows, losses = compare_gradients(model, self.loss_fn, x, y)  # leaves manual grads
            self._record_check(rows)
            return self._sync(model, losses)
        if self.mode in ("manual", "check"):
            with torch.no_grad():
                pred = model(x)
                losses = self.loss_fn(pred, y)
                model.manual_backward(self.loss_fn.grad(pred, y), **self._backward_kwargs)
            return self._sync(model, losses)
        for p in model.parameters():
            p.grad = None
        losses = self.loss_fn(model(x), y)
        if not hooks:
            losses.sum().backward()
            return losses
        world = self.trainer.world_size if self._trainer is not None else 1
        # DDP averages gradients over processes: right for mean-type losses; a sum-type
        # loss is scaled by the world size first so the average becomes the sum
        scale = world if world > 1 and self.loss_fn.reduction == "sum" else 1
        self.manual_backward(losses.sum() * scale)
        return self._reduce_losses(losses)

    def _sync(self, model: nn.Module, losses: torch.Tensor) -> torch.Tensor:
        """All-reduce hand-computed gradients across processes as the loss reduces its terms."""
        if self._trainer is None or self.trainer.world_size == 1:
            return losses
        import torch.distributed as dist

        world = self.trainer.world_size
        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                if self.loss_fn.reduction == "mean":
                    p.grad /= world
        return self._reduce_losses(losses)

    def _reduce_losses(self, losses: torch.Tensor) -> torch.Tensor:
        """The loss of the whole data set from each process's shard (mean or sum of shards)."""
        if self._trainer is None or self.trainer.world_size == 1:
            return losses
        import torch.distributed as dist

        total = losses.detach().clone()
        dist.all_reduce(total)
        return total / self.trainer.world_size if self.loss_fn.reduction == "mean" else total

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.is_minimizer:
            return self._minimize_step(x, y)
        trainer, opt = self.trainer, self._opt
        first = self.state.updates
        todo = min(self.updates_per_step, self.max_updates - first)
        if todo <= 0:
            trainer.should_stop = True
        for k in range(todo):
            if trainer.should_stop:
                break
            # Lightning's backward and optimizer-step hooks run on a step's first update; the
            # other K - 1 take torch's plain path (same math, none of the per-call overhead)
            hooks = k == 0 or not self._plain_inner_updates
            losses = self._gradients(self.model, x, y, hooks=hooks)
            if self.grad_clip:
                self.clip_gradients(opt, gradient_clip_val=self.grad_clip)
            if hooks:
                opt.step()
            else:
                opt.optimizer.step()
                self._step_progress.increment_ready()  # global_step keeps counting updates
                self._step_progress.increment_completed()
            if self._sched is not None:
                self._sched.step()
            self._record(losses)
        self._check_finite(first)
        return None

    def _minimize_step(self, x, y):
        """One Lightning step = one (L-)BFGS minimization (of restart r, restarts in turn)."""
        r = self.global_step if self.solos is not None else 0
        if self.solos is not None and r >= self.restarts:
            self.trainer.should_stop = True
            return None
        model = self.solos[r] if self.solos is not None else self.model
        opts = self.optimizers()
        opt = opts[r] if isinstance(opts, list) else opts

        def closure():
            return self._gradients(model, x, y).sum()

        opt.step(closure=closure)
        with torch.no_grad():
            final = self.loss_fn(model(x), y)
        if self.solos is not None:
            write_back(self.model, r, model)
            losses = self.state.last_losses.clone()
            losses[r] = final
            self.state.last_losses = losses
            self._record(losses, keep_last=True)
        else:
            self._record(final)
        self._check_finite(self.state.updates - 1)
        return None

    def _record(self, losses: torch.Tensor, keep_last: bool = False) -> None:
        i = self.state.updates
        if i >= len(self._history):  # resumed with a larger max_steps: grow the buffers
            self._history = torch.cat([self._history, torch.full_like(self._history, math.nan)])
            if self._trajectory is not None:
                self._trajectory = torch.cat(
                    [self._trajectory, torch.full_like(self._trajectory, math.nan)]
                )
        losses = losses.detach()
        self._history[i] = losses
        if self._trajectory is not None:
            self._trajectory[i] = torch.cat(
                [p.detach().reshape(-1) for p in self.model.parameters()]
            )
        if not keep_last:
            self.state.last_losses = losses.reshape(-1)
        best = losses.min() if losses.dim() and self.restarts > 1 else losses.reshape(())
        if i % self.log_every_n_steps == 0:
            self._log_train_loss(best, i)
        self.state.updates = i + 1
        if self.stop_tol is not None:  # stop when the loss changes by less than stop_tol
            value = best.item()
            if abs(self.state.previous_loss - value) < self.stop_tol:
                self.trainer.should_stop = True
            self.state.previous_loss = value

    def _check_finite(self, first: int) -> None:
        """Fail at the first update since ``first`` whose best loss is not finite.

        On CPU this runs after every Lightning step (one check per K updates); on a GPU only
        at log steps, so that training does not wait for the device every step.
        """
        last = self.state.updates
        if last <= first or (self.device.type != "cpu" and not self._logs_between(first, last)):
            return
        best = self._history[first:last].min(dim=1).values
        bad = ~torch.isfinite(best)
        if bad.any():
            i = first + int(bad.nonzero()[0])
            raise DivergenceError(
                f"training diverged at step {i}: loss = {best[i - first].item()} with "
                f"lr = {self._lr()} (lower optim.lr)"
            )

    def _logs_between(self, first: int, last: int) -> bool:
        n = self.log_every_n_steps
        return (first + n - 1) // n * n < last

    def _log_train_loss(self, loss: torch.Tensor, update: int) -> None:
        """Write train/loss at its own update index (Lightning's step cadence would misalign it)."""
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        if self.logger is not None:
            self.logger.log_metrics({"train/loss": loss.item()}, step=update)

    @property
    def updates(self) -> int:
        """Optimizer updates done so far."""
        return self.state.updates

    @property
    def minimizer_iterations(self) -> int:
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        total = 0
        for opt in opts:
            for p in opt.optimizer.param_groups[0]["params"][:1]:
                total += int(opt.optimizer.state.get(p, {}).get("n_iter", 0))
        return total

    def _lr(self) -> float:
        opt = self.optimizers()
        opt = opt[0] if isinstance(opt, list) else opt
        return opt.param_groups[0]["lr"]

    def _record_check(self, rows: list[GradDiff]) -> None:
        if self.logger is not None:
            values = {f"gradcheck/{r.name}/max_abs": r.max_abs for r in rows}
            values.update({f"gradcheck/{r.name}/max_rel": r.max_rel for r in rows})
            self.logger.log_metrics(values, step=self.state.updates)
        for r in rows:
            old = self.gradcheck_rows.get(r.name)
            if old is None or r.max_rel > old.max_rel:
                self.gradcheck_rows[r.name] = r

    def on_train_start(self) -> None:
        trainer = self.trainer
        self._plain_inner_updates = trainer.world_size == 1 and str(trainer.precision) in (
            "32-true",
            "64-true",
        )
        self._step_progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        opt = self.optimizers()
        self._opt = opt[0] if isinstance(opt, list) else opt
        scheds = self.lr_schedulers()
        self._sched = scheds[0] if isinstance(scheds, list) else scheds
        if self.state.updates and self.state.updates != self.global_step and not self.is_minimizer:
            self.state.updates = self.global_step

    def on_train_end(self) -> None:
        if self.mode == "check" and self.gradcheck_rows:
            rows = list(self.gradcheck_rows.values())
            print("\nGradient check (worst over checked steps, manual vs autograd):")
            print(format_table(rows, self.check_tol))
            bad = [r.name for r in rows if r.max_rel > self.check_tol]
            if bad:
                raise GradCheckError(
                    f"gradient check failed for {', '.join(bad)}: relative difference > "
                    f"grads.tol={self.check_tol}"
                )

    # ----------------------------------------------------------------- evaluation
    @property
    def best_restart(self) -> int:
        if self.restarts == 1:
            return 0
        last = self.state.last_losses.nan_to_num(nan=math.inf, posinf=math.inf)
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

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    # ---------------------------------------------------------------- results
    def history(self) -> torch.Tensor:
        """Loss of every restart at every update so far, shape (updates, restarts)."""
        return self._history[: self.state.updates].cpu()

    def history_tail(self) -> torch.Tensor | None:
        """The best restart's loss at the latest update (a device tensor, no sync)."""
        if self.state.updates == 0:
            return None
        return self._history[self.state.updates - 1].min()

    def trajectory(self, with_start: bool = False) -> torch.Tensor | None:
        """Every parameter after every update (``track_params``); optionally the start first."""
        if self._trajectory is None:
            return None
        path = self._trajectory[: self.state.updates].cpu()
        start = getattr(self, "initial_params", None)
        if with_start and start is not None:
            path = torch.cat([start.cpu().unsqueeze(0), path])
        return path

    def restart_summary(self) -> dict[str, float]:
        if self.restarts == 1:
            return {}
        last = self.state.last_losses.cpu()
        return {
            "restarts/best_loss": float(last.nan_to_num(nan=math.inf).min()),
            "restarts/median_loss": float(last.median()),
            "restarts/worst_loss": float(last.max()),
            "restarts/best_index": self.best_restart,
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gradlab"] = {
            "updates": self.state.updates,
            "history": self.history(),
            "trajectory": self.trajectory(),
            "last_losses": self.state.last_losses.cpu(),
            "config": self.run_config,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gradlab", {})
        n = state.get("updates", 0)
        self.state.updates = n
        hist = state.get("history")
        if hist is not None and n:
            if len(self._history) < n:
                self._history = torch.full((n, self.restarts), math.nan)
            self._history[:n] = hist
        if state.get("last_losses") is not None:
            self.state.last_losses = state["last_losses"]
        self._pending_trajectory = state.get("trajectory")
