"""Write the loss of every update (and tracked parameters) to history.csv, and plot loss.png."""

from pathlib import Path

import lightning as L

from .publish import log_scalars


def run_dir(trainer: L.Trainer) -> Path:
    return Path(trainer.default_root_dir)


class TrainingHistory(L.Callback):
    def __init__(self, plot: bool = True):
        self.plot = plot

    def on_exception(self, trainer, pl_module, exception) -> None:
        """A failed or interrupted run keeps its history, and TensorBoard gets the losses of
        the updates since the last logged one (a diverging run's last steps are the story)."""
        self.on_fit_end(trainer, pl_module)
        if not trainer.loggers or not trainer.is_global_zero:
            return
        history = pl_module.history()
        n = pl_module.log_every_n_steps
        last_logged = max(0, (len(history) // n) * n - 1)
        best = history.nan_to_num(nan=float("inf")).min(dim=1).values
        for i in range(last_logged + 1, len(history)):
            log_scalars(trainer, {"train/loss": float(best[i])}, i)

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        history = pl_module.history()
        if not len(history):
            return
        out = run_dir(trainer)
        trajectory = pl_module.trajectory(with_start=True)  # row i: the point loss i was at
        if trajectory is not None:
            trajectory = trajectory[: len(history)]
        names = []
        if trajectory is not None:
            for n, p in pl_module.model.named_parameters():
                names += [n] if p.numel() == 1 else [f"{n}[{i}]" for i in range(p.numel())]
        header = ["step", "loss"]
        if history.shape[1] > 1:
            header += [f"loss_r{r}" for r in range(history.shape[1])]
        header += names
        rows = [",".join(header)]
        best = history.nan_to_num(nan=float("inf"), posinf=float("inf")).min(dim=1).values
        for i in range(len(history)):
            cells = [str(i), repr(float(best[i]))]
            if history.shape[1] > 1:
                cells += [repr(float(v)) for v in history[i]]
            if trajectory is not None:
                cells += [repr(float(v)) for v in trajectory[i]]
            rows.append(",".join(cells))
        (out / "history.csv").write_text("\n".join(rows) + "\n")
        from ..summarize import in_sweep

        if self.plot and not in_sweep():  # a sweep draws every job's curve in curves.png
            from ..plots import plot_loss, plot_params

            (out / "plots").mkdir(exist_ok=True)
            plot_loss(history, out / "plots" / "loss.png")
            if trajectory is not None and len(names) <= 8:
                plot_params(trajectory, names, out / "plots" / "params.png")
        if trajectory is not None and len(names) <= 8 and trainer.loggers:
            every = pl_module.log_every_n_steps
            for i in range(0, len(trajectory), every):
                values = {
                    f"params/{n}": float(v) for n, v in zip(names, trajectory[i], strict=True)
                }
                log_scalars(trainer, values, i)
