"""Draw the run's figures (chosen by the data set's shape) into TensorBoard and plots/*.png."""

from pathlib import Path

import lightning as L
import torch

from gradlab.callbacks.publish import publish_to
from gradlab.models.restarts import single_restart


class FigureLogger(L.Callback):
    """Figures at the end of fit, and every ``plot_every_n_steps`` updates when set."""

    def __init__(
        self,
        plot_every_n_steps: int | None = None,
        dense_points: int = 500,
        in_sweeps: bool = False,
    ):
        self.in_sweeps = in_sweeps  # a sweep's jobs draw no figures unless asked: the sweep
        self.every = plot_every_n_steps  # draws its own (summary.png, curves.png)
        self.dense_points = dense_points
        self._last = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.every and pl_module.updates - self._last >= self.every:
            self._last = pl_module.updates
            self.draw(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        from gradlab.sweep_plan import in_sweep

        wanted = self.in_sweeps or not in_sweep()
        if wanted and not trainer.fast_dev_run and trainer.is_global_zero:
            self.draw(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception):
        self.on_fit_end(trainer, pl_module)  # a diverged or interrupted run keeps its figures

    def draw(self, trainer, pl_module) -> dict:
        step = pl_module.updates
        figures = model_figures(pl_module, trainer.datamodule, self.dense_points)
        publish_figures(Path(trainer.default_root_dir), trainer.loggers, figures, step)
        if pl_module.gradients.worst:
            from gradlab.module.grad_compare import format_table

            table = format_table(list(pl_module.gradients.worst.values()), pl_module.check_tol)
            for logger in trainer.loggers:
                if hasattr(logger.experiment, "add_text"):  # TensorBoard
                    logger.experiment.add_text(
                        "gradcheck/table", "    " + table.replace("\n", "\n    "), step
                    )
        return figures


def publish_figures(run_dir: Path, loggers, figures: dict, step: int) -> None:
    """A run's figures into ``run_dir``/plots and its TensorBoard, as ``figures/<name>``."""
    for key, fig in figures.items():
        publish_to(run_dir, loggers, fig, key, f"figures/{key}", step)


def model_figures(pl_module, data, dense_points: int = 500) -> dict:
    """The figures of a trained module on its data, chosen by the data set's shape: the fit
    (surface or curve), hidden units, decision regions, the gradient check."""
    from gradlab.analysis import plots

    step = pl_module.updates
    # a CPU copy in eval mode: the live model stays where and how it was
    model = single_restart(pl_module.model, pl_module.best_restart if pl_module.restarts > 1 else 0)
    model = model.to("cpu").eval()
    figures = fit_figures(model, data, step, dense_points)
    x, y = (t.cpu() for t in data.train)
    path = pl_module.trajectory(with_start=True)
    if path is not None and sum(p.numel() for p in model.parameters()) in (1, 2):
        from gradlab.callbacks.landscape import exact_loss_surface

        with torch.no_grad():  # the loss over the parameters, the optimizer's path on it
            figures["loss_surface"] = exact_loss_surface(model, pl_module.loss_fn, x, y, path.cpu())
    if pl_module.gradients.worst:
        figures["gradcheck"] = plots.plot_gradcheck(
            list(pl_module.gradients.worst.values()), pl_module.check_tol
        )
    return figures


def fit_figures(model, data, step: int, dense_points: int = 500, title=None, compact=False):
    """One run's model (no restart dimension, on the CPU) on its data: the fit (a surface or
    a curve, with its hidden units) or the decision regions, chosen by the data's shape
    (``title``: instead of the model's name and step; ``compact``: the fit alone, one panel:
    a sweep's fits.png)."""
    from gradlab.analysis import plots

    name = type(model).__name__
    figures = {}
    x, y = (t.cpu() for t in data.train)
    with torch.no_grad():
        if (
            data.task == "regression"
            and x.dim() == 2
            and x.shape[1] == 2
            and getattr(data, "grid", None)
        ):
            xg, yg = (t.cpu() for t in data.test)
            if compact:
                vrange = (float(yg.min()), float(yg.max()))
                title = title or f"{name} at step {step}"
                fit = plots.plot_prediction_2d(xg, model(xg), data.grid, x, title, vrange)
                return {"fit": fit}
            figures["fit"] = plots.plot_surface_2d(xg, yg, model(xg), data.grid, x, name, step)
            if title:
                figures["fit"].suptitle(title, fontsize=10)
            hidden = model.hidden(xg) if hasattr(model, "hidden") else []
            if hidden:
                figures["hidden_units"] = plots.plot_hidden_maps(xg, hidden, data.grid, step)
        elif data.task == "regression" and x.dim() == 2 and x.shape[1] == 1:
            xt, yt = (t.cpu() for t in data.test) if data.test is not None else (None, None)
            lo, hi = float(x.min()), float(x.max())
            pad = 0.05 * (hi - lo)
            dense = torch.linspace(lo - pad, hi + pad, dense_points).unsqueeze(1).to(x.dtype)
            pred = model(dense)
            title = title or f"{name} at step {step}"
            figures["fit"] = plots.plot_fit_1d(x, y, xt, yt, dense, pred, title)
            if compact:
                return figures
            if hasattr(model, "hidden") and model.num_layers == 2:
                h = model.hidden(dense)[0]
                w_out = model.weight_of(1)[:, 0]
                for scale in (False, True):
                    key = "hidden_units_scaled" if scale else "hidden_units"
                    figures[key] = plots.plot_fit_1d(
                        x,
                        y,
                        xt,
                        yt,
                        dense,
                        pred,
                        title + (" (units x output weight)" if scale else " (hidden units)"),
                        hidden=h,
                        out_weight=w_out,
                        scale=scale,
                    )
        elif data.task == "classification" and x.shape[-1] == 2:
            figures["decision_regions"] = plots.plot_decision_regions(
                x, y, lambda g: model(g).argmax(-1),
                title or f"{name} decision regions at step {step}",
            )  # fmt: skip
    return figures
