"""Write the loss of every update (and tracked parameters) to history.csv, plot loss.png, and
keep the parameter trajectory on disk as the run goes (it is not a checkpoint's state).

Tracked parameters are columns of history.csv for small models (at most PARAM_COLUMNS values,
every update kept); larger ones go to trajectory.pt and plots/params.png shows their path in
the plane of its top two principal directions and each layer's distance from the start.
Snapshots are written to ``<run>/trajectory/chunk_<n>.pt`` at every checkpoint and read back
when a run resumes from one."""

import math
from pathlib import Path

import lightning as L
import torch

from gradlab.callbacks.publish import log_scalars
from gradlab.module.loss_history import best_of, load_snapshots, sync_snapshots
from gradlab.safe_files import write_text

PARAM_COLUMNS = 64  # a history.csv column per value up to this many values
TRAJECTORY_DIR = "trajectory"  # <run dir>/trajectory/chunk_<n>.pt: parameter snapshots


def run_dir(trainer: L.Trainer) -> Path:
    return Path(trainer.default_root_dir)


def write_history(path: Path, history: torch.Tensor, trajectory=None, names=()) -> None:
    """history.csv: per update, the best restart's loss, each restart's loss (restarts > 1)
    and the tracked parameters' values (``trajectory`` rows, ``names`` columns)."""
    header = ["step", "loss"]
    if history.shape[1] > 1:
        header += [f"loss_r{r}" for r in range(history.shape[1])]
    header += list(names)
    rows = [",".join(header)]
    best = history.nan_to_num(nan=math.inf, posinf=math.inf).min(dim=1).values.tolist()
    each = history.tolist() if history.shape[1] > 1 else None  # python floats: fast to print
    path_rows = trajectory.tolist() if trajectory is not None else None
    for i, loss in enumerate(best):
        cells = [str(i), repr(float(loss))]
        if each is not None:
            cells += [repr(float(v)) for v in each[i]]
        if path_rows is not None:
            cells += [repr(float(v)) for v in path_rows[i]]
        rows.append(",".join(cells))
    write_text(path, "\n".join(rows) + "\n")


def first_unlogged(updates: int, every: int) -> int:
    """The first of a failed run's updates whose train/loss was not logged yet (logged every
    ``every`` updates): from there its history callback logs each one."""
    return max(0, (updates // every) * every - 1) + 1


class TrainingHistory(L.Callback):
    def __init__(self, plot: bool = True):
        self.plot = plot

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        history = pl_module.loss_history
        if history.params is not None:
            steps = sync_snapshots(history, run_dir(trainer) / TRAJECTORY_DIR)
            checkpoint["gradlab_trajectory"] = {"dir": TRAJECTORY_DIR, "steps": steps}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        saved = checkpoint.get("gradlab_trajectory")
        if saved is None or not trainer.ckpt_path:
            return
        run = Path(trainer.ckpt_path).resolve().parent.parent  # run/checkpoints/x.ckpt
        state = checkpoint["gradlab"]["history"]
        params = load_snapshots(run / saved["dir"], saved["steps"])
        pl_module.loss_history.load_state_dict({**state, "params": params})

    def on_exception(self, trainer, pl_module, exception) -> None:
        """A failed or interrupted run keeps its history, and TensorBoard gets the losses of
        the updates since the last logged one (a diverging run's last steps are the story)."""
        self.on_fit_end(trainer, pl_module)
        if not trainer.loggers or not trainer.is_global_zero:
            return
        history = pl_module.history()
        best = best_of(history)  # as the module logs train/loss
        for i in range(first_unlogged(len(history), pl_module.log_every_n_steps), len(history)):
            log_scalars(trainer, {"train/loss": float(best[i])}, i)

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        history = pl_module.history()
        if not len(history):
            return
        out = run_dir(trainer)
        losses = pl_module.loss_history
        trajectory = pl_module.trajectory(with_start=True)  # row i: the point loss i was at
        names = []
        if trajectory is not None:
            for n, p in pl_module.model.named_parameters():
                names += [n] if p.numel() == 1 else [f"{n}[{i}]" for i in range(p.numel())]
        path = None
        if trajectory is not None and (not losses.every_update or len(names) > PARAM_COLUMNS):
            # a large model: the path goes to trajectory.pt and params.png, not to columns
            steps = torch.cat([torch.zeros(1, dtype=torch.long), losses.snapshot_steps()])
            path = (trajectory, steps)
            torch.save({"params": path[0], "steps": path[1], "names": names}, out / "trajectory.pt")
            trajectory, names = None, []
        if trajectory is not None:
            trajectory = trajectory[: len(history)]
        write_history(out / "history.csv", history, trajectory, names)
        from gradlab.sweep_plan import in_sweep

        if self.plot and not in_sweep():  # a sweep draws every job's curve in curves.png
            self._plot(pl_module, history, trajectory, names, path, out)
        if trajectory is not None and len(names) <= 8 and trainer.loggers:
            every = pl_module.log_every_n_steps
            for i in range(0, len(trajectory), every):
                values = {
                    f"params/{n}": float(v) for n, v in zip(names, trajectory[i], strict=True)
                }
                log_scalars(trainer, values, i)

    @staticmethod
    def _plot(pl_module, history, trajectory, names, path, out: Path) -> None:
        from gradlab.analysis.plots import plot_loss
        from gradlab.analysis.trajectory_plots import plot_param_path, plot_params

        (out / "plots").mkdir(exist_ok=True)
        plot_loss(history, out / "plots" / "loss.png", validation=pl_module.val_history)
        if trajectory is not None and len(names) <= 8:
            plot_params(trajectory, names, out / "plots" / "params.png")
        elif path is not None or trajectory is not None:
            params, steps = path or (trajectory, torch.arange(len(trajectory)))
            sizes = [(n, p.numel()) for n, p in pl_module.model.named_parameters()]
            plot_param_path(params, steps, sizes, out / "plots" / "params.png")
