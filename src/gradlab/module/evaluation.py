"""Validation and test of a GradLabModule: the loss, MSE and R^2 (regression) or accuracy
(classification) of the best restart, through torchmetrics; the best validation loss so far."""

import math

import torch
import torchmetrics
from lightning.pytorch.callbacks import Timer


def test_metrics(task: str, loss_fn, pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """One run's ``loss``, ``mse`` and ``r2`` (or ``acc``) on a full batch, as the module's
    torchmetrics compute them (for runs evaluated outside a Trainer: batched sweeps)."""
    from torchmetrics.functional import accuracy, mean_squared_error, r2_score

    out = {"loss": float(loss_fn(pred, y))}
    if task == "regression":
        out["mse"] = float(mean_squared_error(pred.flatten(), y.flatten()))
        out["r2"] = float(r2_score(pred.flatten(), y.flatten()))
    elif task == "classification":
        n = pred.shape[-1]
        out["acc"] = float(accuracy(pred.argmax(-1), y, task="multiclass", num_classes=n))
    return out


class Evaluation:
    """Mixed into the LightningModule: its validation, test and restart summary."""

    def setup_metrics(self, task: str, num_classes: int | None) -> None:
        self.task = task
        self.val_history: list[tuple[int, float]] = []  # (updates done, validation loss)
        self.val_best = torchmetrics.MinMetric()
        self.val_best.persistent(True)  # the best-so-far goes into checkpoints: resume keeps it
        if task == "classification":
            self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        elif task == "regression":
            self.val_mse = torchmetrics.MeanSquaredError()
            self.test_mse = torchmetrics.MeanSquaredError()
            self.val_r2, self.test_r2 = torchmetrics.R2Score(), torchmetrics.R2Score()

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
        if self.group is not None:  # a group's runs: each its own (module.run_group)
            self._evaluate_runs(x, y, stage)
            return
        if stage == "val" and not (self.trainer.sanity_checking or self.validates_now()):
            return  # (a signal stopped the run off its schedule)
        pred = self.predict_best(x)
        # every DDP process evaluates the whole set: the same value, synced as such; one batch,
        # weighted 1 (Lightning's mean over batches of n points, v * n / n, is off by an ulp)
        sync = self.trainer.world_size > 1
        self.log(f"{stage}/loss", self.loss_fn(pred, y), sync_dist=sync, batch_size=1)
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

    def _evaluate_runs(self, x, y, stage: str) -> None:
        if stage == "test":
            self.group.tested(self.loss_fn, self.task, self.model(x), y)
        elif self.validates_now():
            alive = torch.isfinite(self.history()).all(dim=0)  # not diverged (yet)
            self.group.validated(self.loss_fn, self.task, self.model(x), y, self.updates, alive)

    def validates_now(self) -> bool:
        """Lightning validates on its schedule and wherever training stops. A run (a group)
        does too where it stopped itself (``stop_tol``, a minimizer converged; in a group:
        every run stopped) or its time is up (``max_time``), not where a signal stopped it off
        the schedule: it resumes, and validates where its uninterrupted run validates (an
        extra validation would stay in its history, curves and best.ckpt). Not in Lightning's
        sanity check before training (``trainer.num_sanity_val_steps``)."""
        n, trainer = self.updates, self.trainer
        if trainer.sanity_checking:
            return False
        if n % trainer.val_check_batch == 0 or n == trainer.max_steps:
            return True
        left = [c.time_remaining() for c in trainer.callbacks if isinstance(c, Timer)]
        time_up = any(s is not None and s <= 0 for s in left)  # (None: no limit)
        if self.group is not None:
            return time_up or len(self.group.stopped) == self.group.runs
        return time_up or self.progress.stopped

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("val/loss")  # (the last one where not now)
        if loss is not None and not self.trainer.sanity_checking and self.validates_now():
            self.val_best(loss)
            self.val_history.append((self.progress.updates, float(loss)))  # for loss.png
            sync = self.trainer.world_size > 1
            self.log("val/loss_best", self.val_best.compute(), sync_dist=sync)
            # logged at the number of updates done (Lightning would use the last batch index
            # and add an "epoch" scalar)
            self.log("step", float(self.progress.updates), sync_dist=sync)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        # at the number of updates done; a logged "step" also keeps Lightning from adding an
        # "epoch" scalar (epochs mean nothing here: one full batch is one update)
        self.log("step", float(self.progress.updates), sync_dist=self.trainer.world_size > 1)

    def restart_summary(self) -> dict[str, float]:
        """Best, median and worst final loss over restarts, and how many diverged."""
        if self.restarts == 1:
            return {}
        last = self.progress.last_losses.cpu()
        finite = torch.isfinite(last)
        return {
            "restarts/best_loss": float(last.nan_to_num(nan=math.inf, posinf=math.inf).min()),
            "restarts/median_loss": float(last.median()),
            "restarts/worst_loss": float(last.max()),
            "restarts/best_index": self.best_restart,
            "restarts/n_diverged": int((~finite).sum()),
        }
