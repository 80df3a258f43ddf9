"""A batched job's ``checkpoints/last.ckpt`` and ``best.ckpt``, written as its solo run would
write them."""

import copy
import math

import lightning as L
import torch
from lightning.pytorch.plugins import CheckpointIO
from omegaconf import OmegaConf

from gradlab.sweep.per_run import optimizer_snapshot, run_optimizer_state


class HeldCheckpointIO(CheckpointIO):
    """The batched trainer's checkpoint IO: ``trainer.save_checkpoint`` hands it the group's
    checkpoint as Lightning assembles it, and it keeps a copy in memory (``held``) instead
    of writing a file; each run's checkpoint is cut from it (``run_checkpoint``)."""

    held: dict | None = None

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        self.held = detached(checkpoint)  # its tensors are the live ones: copied now

    def load_checkpoint(self, path, map_location=None):
        raise NotImplementedError("a batched group resumes each run from its own last.ckpt")

    def remove_checkpoint(self, path) -> None:
        pass


def detached(obj):
    """A copy of a checkpoint: tensors cloned to the CPU, containers rebuilt, the rest as is
    (plain values)."""
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: detached(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(detached(v) for v in obj)
    return copy.deepcopy(obj)


def group_checkpoint(trainer: L.Trainer) -> dict:
    """The group's checkpoint as Lightning assembles it (its loop counters are every run's),
    through the trainer's ``HeldCheckpointIO``."""
    trainer.save_checkpoint("group.ckpt", weights_only=False)  # held, not written
    return trainer.strategy.checkpoint_io.held


def optimizer_state(trainer: L.Trainer, cfg, r: int, packed: dict | None = None) -> dict:
    """Run ``r``'s optimizer state (now, or in ``packed``: ``optimizer_snapshot``), as its own
    optimizer's ``state_dict()``."""
    runs = next(iter(trainer.lightning_module.model.parameters())).shape[0]
    return run_optimizer_state(trainer.optimizers[0], r, runs, float(cfg.optim.lr), packed)


def run_checkpoint(group, opt_state, cfg, r, column, val_history, best, previous) -> dict:  # noqa: PLR0913
    """Run ``r``'s checkpoint as its solo run writes it, from the group's (``group``: its
    slice of the weights, the loop counters) and the run's optimizer state (``opt_state``):
    with its loss history and config; ``eval.py`` evaluates it and ``ckpt_path=`` resumes
    it as a solo run."""
    ckpt = {k: v for k, v in group.items() if k not in ("state_dict", "optimizer_states")}
    state = {}
    for key, value in group["state_dict"].items():
        if key.startswith("model."):  # the stacked weights
            state[key] = value[r].clone()
        else:  # the module's own (val_best)
            state[key] = value if best is None else best.to(value.dtype).reshape(value.shape)
    ckpt["state_dict"] = state
    ckpt["optimizer_states"] = [opt_state]
    ckpt["callbacks"] = {}
    hparams = dict(group.get("hyper_parameters") or {})
    if "optim" in hparams:  # the run's own optimizer options (lr, ...)
        hparams["optim"] = OmegaConf.to_container(cfg.optim, resolve=True)
    ckpt["hyper_parameters"] = hparams
    n = len(column)
    history = {"length": n, "losses": column.unsqueeze(1).clone(), "params": None, "kept": 0,
               "stride": 1, "initial_params": None}  # fmt: skip
    ckpt["gradlab"] = {
        "updates": n,
        "restart": 0,
        "history": history,
        "last_losses": column[-1:].clone(),
        "previous_loss": previous,
        "val_history": val_history,
        "config": None,  # the job's, resolved where its files are written (job_files)
    }
    return ckpt


class BestCheckpoints(L.Callback):
    """Each run's ``best.ckpt`` as its solo run's ModelCheckpoint keeps it (``monitor:
    val/loss``, ``mode: min``): at every validation where a run's loss is below its best so
    far (the first one always), that run's checkpoint of this update replaces its last best.
    After ``validation`` in the trainer's callbacks (it reads the losses just computed)."""

    def __init__(self, validation, cfgs, stopping=None):
        self.validation, self.cfgs, self.stopping = validation, cfgs, stopping
        self.best: list[float] = [math.inf] * len(cfgs)
        self.checkpoints: dict[int, dict] = {}  # run -> its best.ckpt

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n, v = pl_module.updates, self.validation
        if v.evaluated_at != n:
            return
        stopped = self.stopping.stopped if self.stopping is not None else {}
        history = pl_module.history().cpu()
        finite = torch.isfinite(history).all(dim=0).tolist()  # a diverged run stopped before
        better = [
            r for r, loss in enumerate(v.last.tolist())
            if (loss < self.best[r] or r not in self.checkpoints) and r not in stopped
            and finite[r]
        ]  # fmt: skip
        if not better:
            return
        group = group_checkpoint(trainer)
        for r in better:
            self.best[r] = float(v.last[r])
            previous = self.stopping.previous[r] if self.stopping is not None else math.inf
            opt = optimizer_state(trainer, self.cfgs[r], r)
            self.checkpoints[r] = run_checkpoint(
                group, opt, self.cfgs[r], r, history[:n, r], v.losses_of_run(r, n),
                v.best[r], previous,
            )  # fmt: skip


class StartCheckpoints(L.Callback):
    """The group's state before its first update, for the ``last.ckpt`` of a run that diverges
    before any validation improved: its solo run's ``last.ckpt`` is written at the start and
    then only with a new ``best.ckpt`` (Lightning's ModelCheckpoint, ``save_last: true``), so a
    diverged run keeps its ``best.ckpt`` state, or this one."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.group = group_checkpoint(trainer)
        self.optimizer = optimizer_snapshot(trainer.optimizers[0])
        self.last_losses = pl_module.progress.last_losses.detach().cpu().clone()

    def checkpoint(self, trainer, cfg, r: int) -> dict:
        opt = optimizer_state(trainer, cfg, r, self.optimizer)
        ckpt = run_checkpoint(self.group, opt, cfg, r, torch.empty(0), [], None, math.inf)
        ckpt["gradlab"]["last_losses"] = self.last_losses[r : r + 1].clone()
        return ckpt
